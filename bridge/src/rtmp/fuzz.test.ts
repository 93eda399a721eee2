import { Amf0EcmaArray, OnairError, decodeAmf0, encodeAmf0 } from '@onair/shared';
import { describe, expect, it } from 'vitest';
import { ChunkReader, type ChunkReaderLimits } from './chunk-reader.js';
import { ChunkWriter } from './chunk-writer.js';
import { MessageType, setChunkSizeMessage, windowAckSizeMessage, type RtmpMessage } from './messages.js';
import { cat } from '../../../shared/src/testing/bytes.js';
import { Rng, fnv, mutate, pieces, randomCuts, smallCuts } from '../../../shared/src/testing/fuzz.js';
import { FUZZ_TIMEOUT_MS, arrayBufferGrowth, attempt, expectSame, fuzz, fuzzFailure } from '../../../shared/src/testing/fuzz-run.js';

// Seeded fuzzing of the RTMP chunk stream parser: mutations of streams ChunkWriter produced, and
// streams built chunk header by chunk header with hostile formats, lengths, timestamps and chunk
// sizes. Properties: push returns or throws OnairError, finishes quickly, allocates in proportion
// to its input, and gives the same messages (or the same error) however the input is split.
// A failure message carries the input in hex, to paste into a regression test.
// Case counts and time caps: shared/src/testing/fuzz-run.ts; `npm run fuzz` runs 10^6.

interface Run {
  messages: string[];
  error: string | undefined;
  payloadBytes: number;
}

/** Feeds `chunks` to a new reader; an OnairError ends the run, anything else fails the test. */
function run(chunks: readonly Uint8Array[], limits: Partial<ChunkReaderLimits> = {}): Run {
  const reader = new ChunkReader(limits);
  const messages: string[] = [];
  let payloadBytes = 0;
  let error: string | undefined;
  try {
    for (const chunk of chunks) {
      for (const m of reader.push(chunk)) {
        messages.push(`${m.csid}/${m.type}/${m.timestamp}/${m.streamId}/${m.payload.length}/${fnv(m.payload)}`);
        payloadBytes += m.payload.length;
        if (m.type === MessageType.CommandAmf0 || m.type === MessageType.DataAmf0) {
          try {
            decodeAmf0(m.payload);
          } catch (err) {
            if (!(err instanceof OnairError)) throw err;
          }
        }
      }
    }
  } catch (err) {
    if (!(err instanceof OnairError)) throw err;
    error = `${err.code}: ${err.message}`;
  }
  return { messages, error, payloadBytes };
}

const msg = (csid: number, type: number, timestamp: number, streamId: number, payload: Uint8Array): RtmpMessage => ({
  csid, type, timestamp, streamId, payload,
});

function pattern(length: number, salt: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 31 + salt) & 0xff);
}

interface Seed {
  bytes: Uint8Array;
  messages: RtmpMessage[];
  /** Offsets of each header's timestamp and length fields and of Set Chunk Size values. */
  hints: number[];
}

/**
 * Encodes `messages` as a peer would send them; a Set Chunk Size message changes the writer's
 * chunk size after it is written, as the reader applies it after reading it.
 */
function encodeSeed(messages: RtmpMessage[]): Seed {
  const w = new ChunkWriter();
  const parts: Uint8Array[] = [];
  const hints: number[] = [];
  let at = 0;
  for (const m of messages) {
    const b = w.encode(m);
    const fmt = b[0]! >> 6;
    hints.push(at + 1);
    if (fmt <= 1) hints.push(at + 4);
    if (m.type === MessageType.SetChunkSize) {
      hints.push(at + 12);
      w.setChunkSize(new DataView(m.payload.buffer, m.payload.byteOffset).getUint32(0));
    }
    parts.push(b);
    at += b.length;
  }
  return { bytes: cat(...parts), messages, hints };
}

/**
 * Two messages on different chunk streams with their chunks alternating, as servers interleave
 * audio and video (RTMP spec §5.3.2.2). Both must use the default chunk size and no extended
 * timestamp, so each continuation header is one byte.
 */
function interleaved(a: RtmpMessage, b: RtmpMessage): Seed {
  const chunksOf = (m: RtmpMessage): Uint8Array[] => {
    const bytes = new ChunkWriter().encode(m);
    const out = [bytes.subarray(0, 12 + Math.min(128, m.payload.length))];
    for (let p = out[0]!.length; p < bytes.length; p += 129) out.push(bytes.subarray(p, p + 129));
    return out;
  };
  const ca = chunksOf(a);
  const cb = chunksOf(b);
  const parts: Uint8Array[] = [];
  for (let i = 0; i < Math.max(ca.length, cb.length); i++) parts.push(...(ca[i] ? [ca[i]!] : []), ...(cb[i] ? [cb[i]!] : []));
  // The shorter message's last chunk comes first, so it completes first.
  const messages = cb.length < ca.length ? [b, a] : [a, b];
  return { bytes: cat(...parts), messages, hints: [1, 4, ca[0]!.length + 1, ca[0]!.length + 4] };
}

function seeds(): Seed[] {
  const connect = encodeAmf0([
    'connect', 1,
    { app: 'live', type: 'nonprivate', flashVer: 'FMLE/3.0 (compatible; FMSc/1.0)', tcUrl: 'rtmp://127.0.0.1:1935/live', fourCcList: ['avc1', 'mp4a'] },
  ]);
  const meta = encodeAmf0(['@setDataFrame', 'onMetaData', new Amf0EcmaArray({ width: 640, height: 360, videocodecid: 7, audiocodecid: 10 })]);
  const publish = encodeAmf0(['publish', 5, null, 'stream', 'live']);
  return [
    encodeSeed([
      windowAckSizeMessage(2_500_000),
      msg(3, MessageType.CommandAmf0, 0, 0, connect),
      msg(8, MessageType.CommandAmf0, 0, 1, publish),
      msg(5, MessageType.DataAmf0, 0, 1, meta),
      msg(6, MessageType.Video, 0, 1, pattern(300, 1)),
      msg(4, MessageType.Audio, 0, 1, pattern(7, 2)),
      msg(4, MessageType.Audio, 23, 1, pattern(7, 3)),
      msg(4, MessageType.Audio, 46, 1, pattern(9, 4)),
      msg(6, MessageType.Video, 40, 1, new Uint8Array(0)),
      msg(6, MessageType.Video, 33, 1, pattern(140, 5)), // backwards: fmt0 again
    ]),
    encodeSeed([
      setChunkSizeMessage(7),
      msg(3, MessageType.CommandAmf0, 0, 0, connect),
      msg(6, MessageType.Video, 0xfffffe, 1, pattern(20, 6)),
      msg(6, MessageType.Video, 0x1000010, 1, pattern(20, 7)), // extended delta on fmt1/fmt3
      msg(2, MessageType.Abort, 0, 0, Uint8Array.of(0, 0, 0, 6)),
      msg(4, MessageType.Audio, 0xffffffff, 1, pattern(15, 8)),
      setChunkSizeMessage(4096),
      msg(6, MessageType.Video, 0x2000000, 1, pattern(5000, 9)),
    ]),
    interleaved(msg(6, MessageType.Video, 1000, 1, pattern(400, 10)), msg(4, MessageType.Audio, 1010, 1, pattern(300, 11))),
  ];
}

function plain(messages: RtmpMessage[]): string[] {
  return messages.map((m) => `${m.csid}/${m.type}/${m.timestamp >>> 0}/${m.streamId}/${m.payload.length}/${fnv(m.payload)}`);
}

const u24 = (v: number): number[] => [(v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
const u32 = (v: number): number[] => [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
const MESSAGE_HEADER = [11, 7, 3, 0] as const;

/**
 * A chunk stream built header by header (RTMP spec §5.3.1): every basic header form, fmt 0–3 in
 * and out of order, extended timestamps present or not, lengths and chunk sizes from plausible to
 * hostile, Set Chunk Size and Abort among the messages. The generator keeps its own idea of the
 * chunk size, which a hostile Set Chunk Size may make wrong: so would a hostile peer.
 */
function hostileStream(rng: Rng): Uint8Array {
  const out: number[] = [];
  let chunkSize = 128;
  const csids = [2, 3, 4, 5, 6, 8, 63, 64, 65, 319, 320, 65599];
  for (let n = 1 + rng.int(12); n > 0; n--) {
    const csid = rng.int(3) ? 2 + rng.int(7) : rng.pick(csids);
    const fmt = rng.int(3) ? 0 : rng.int(4);
    if (csid < 64 && !rng.oneIn(30)) out.push((fmt << 6) | csid);
    else if (csid < 320 && !rng.oneIn(30)) out.push(fmt << 6, csid - 64);
    else out.push((fmt << 6) | 1, (csid - 64) & 0xff, ((csid - 64) >>> 8) & 0xff);
    const type = rng.int(3) ? rng.pick([1, 2, 3, 4, 5, 6, 8, 9, 18, 20, 22]) : rng.int(256);
    let payload: number[];
    if (type === MessageType.SetChunkSize) {
      const size = rng.int(3) ? 1 + rng.int(5000) : rng.pick([0, 0x7fffffff, 0x80000000, 0xffffffff, 0x1000000]);
      payload = u32(size);
      if (!rng.oneIn(8)) chunkSize = size > 0 && size <= 0xffffff ? size : chunkSize;
    } else if (type === MessageType.Abort) {
      payload = u32(rng.pick(csids));
    } else {
      payload = Array.from(rng.bytes(rng.oneIn(4) ? rng.int(600) : rng.int(40)));
    }
    const length = rng.int(6) ? payload.length : rng.pick([0, 0xffffff, payload.length + 1, 8 * 1024 * 1024 + 1]);
    const extended = rng.oneIn(5);
    const field = extended ? 0xffffff : rng.int(3) ? rng.int(100) : rng.int(0xffffff);
    const header = [...u24(field), ...u24(length), type, ...[rng.oneIn(6) ? rng.int(256) : 1, 0, 0, 0]];
    out.push(...header.slice(0, MESSAGE_HEADER[fmt]));
    if (extended && (fmt < 3 || rng.oneIn(2))) out.push(...u32(rng.oneIn(2) ? rng.next() : 0x1000000 + rng.int(1000)));
    // The payload in chunks of the current size, with fmt 3 headers between them (or not).
    for (let at = 0; at < payload.length; at += chunkSize) {
      if (at > 0 && !rng.oneIn(20)) out.push(0xc0 | (csid < 64 ? csid : 1));
      out.push(...payload.slice(at, at + Math.min(chunkSize, 4096)));
    }
  }
  return Uint8Array.from(out);
}

describe('fuzz: ChunkReader', () => {
  it('reads the unmutated seeds back as the messages written', () => {
    for (const s of seeds()) {
      const whole = run([s.bytes]);
      expect(whole.error).toBeUndefined();
      expect(whole.messages).toEqual(plain(s.messages));
    }
  });

  it('returns or throws OnairError, same result whole, split and byte by byte, bounded memory', { timeout: FUZZ_TIMEOUT_MS }, () => {
    const all = seeds();
    const bytes = all.map((s) => s.bytes);
    let failed = 0;
    const result = fuzz('RTMP ChunkReader', 0xc4c4, (rng, c) => {
      let input: Uint8Array;
      if (rng.oneIn(3)) {
        input = hostileStream(rng);
      } else {
        const seed = rng.pick(all);
        input = mutate(rng, seed.bytes, bytes, seed.hints);
      }
      // A quarter of the cases with tight limits, to reach the limit errors from anywhere.
      const limits: Partial<ChunkReaderLimits> = rng.int(4) ? {} : { maxMessageSize: rng.int(600), maxChunkStreams: 1 + rng.int(4), maxChunkSize: 1 + rng.int(5000) };
      let whole: Run | undefined;
      // Each message grows its own buffer from 16 KiB as chunks arrive, at most 64 chunk streams.
      const grown = arrayBufferGrowth(() => {
        whole = attempt('ChunkReader', input, () => run([input], limits)) as Run;
      });
      if (grown > 4 * input.length + (2 << 20)) throw fuzzFailure(`ChunkReader allocated ${grown} bytes for ${input.length}`, input);
      if (whole!.payloadBytes > input.length) throw fuzzFailure(`${whole!.payloadBytes} payload bytes from ${input.length}`, input);
      const split = attempt('ChunkReader split', input, () => run(pieces(input, randomCuts(rng, input.length)), limits)) as Run;
      // Byte by byte on every fourth case, small random pushes on the others.
      const at = c % 4 === 0 ? Array.from(input.keys()).slice(1) : smallCuts(rng, input.length, 32);
      const small = attempt('ChunkReader small pushes', input, () => run(pieces(input, at), limits)) as Run;
      // A throw from push loses what that push parsed, so a run that failed holds a prefix of
      // the messages before the fault: of the longest run's.
      expectSame('ChunkReader errors whole, split, small', input, [split.error, small.error], [whole!.error, whole!.error]);
      const longest = [whole!, split, small].reduce((x, y) => (y.messages.length > x.messages.length ? y : x));
      for (const r of [whole!, split, small]) expectSame('ChunkReader messages', input, r.messages, longest.messages.slice(0, r.messages.length));
      if (!whole!.error) expectSame('ChunkReader messages whole and split', input, whole!.messages.length, longest.messages.length);
      else failed++;
    });
    // Both outcomes must be common, or the inputs are too weak or too destructive to test much.
    expect(failed).toBeGreaterThan(result.cases / 10);
    expect(failed).toBeLessThan(result.cases * 0.9);
  });

  it('holds memory to its limits when every chunk stream announces a huge message', () => {
    // Chunk size 1 on chunk stream 2, then 63 more chunk streams each starting an 8 MiB − 1
    // message with one byte: the 64 the reader allows.
    const parts = [new ChunkWriter().encode(setChunkSizeMessage(1))];
    for (let csid = 3; csid < 3 + 63; csid++) {
      const header = Uint8Array.of(csid < 64 ? csid : 0, ...(csid < 64 ? [] : [csid - 64]), 0, 0, 0, 0x7f, 0xff, 0xff, 9, 1, 0, 0, 0, 0xaa);
      parts.push(header);
    }
    const input = cat(...parts);
    const reader = new ChunkReader();
    const before = process.memoryUsage().arrayBuffers;
    expect(reader.push(input).map((m) => m.type)).toEqual([MessageType.SetChunkSize]);
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(grown).toBeLessThan(2 << 20);
    // A 65th chunk stream is refused.
    expect(() => reader.push(Uint8Array.of(0, 200, 0, 0, 0, 0, 0, 1, 9, 1, 0, 0, 0))).toThrow(
      expect.objectContaining({ code: 'RTMP_TOO_MANY_CHUNK_STREAMS' }),
    );
  });
});

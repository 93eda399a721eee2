import { Amf0EcmaArray, OnairError, decodeAmf0, encodeAmf0 } from '@onair/shared';
import { describe, expect, it } from 'vitest';
import { ChunkReader, type ChunkReaderLimits } from './chunk-reader.js';
import { ChunkWriter } from './chunk-writer.js';
import { MessageType, setChunkSizeMessage, windowAckSizeMessage, type RtmpMessage } from './messages.js';
import { cat, hexOf } from '../../../shared/src/testing/bytes.js';
import { Rng, mutate } from '../../../shared/src/testing/fuzz.js';

// Seeded mutation fuzzing of the RTMP chunk stream parser, from streams ChunkWriter produced.
// Properties: push returns or throws OnairError, finishes quickly, allocates in proportion to
// its input, and gives the same messages (or the same error) however the input is split.
// A failure message carries the input in hex, to paste into a regression test.

// ONAIR_FUZZ_CASES and ONAIR_FUZZ_SEED widen a run by hand; the defaults keep the file under 15 s.
const CASES = Number(process.env['ONAIR_FUZZ_CASES'] ?? 2500);
const SEED_SALT = Number(process.env['ONAIR_FUZZ_SEED'] ?? 0);

/** FNV-1a: compares payloads without keeping copies of every run. */
function fnv(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

const MAX_CASE_MS = 1000;

interface Run {
  messages: string[];
  error: string | undefined;
  payloadBytes: number;
}

/** Feeds `chunks` to a new reader; an OnairError ends the run, anything else fails the test. */
function run(input: Uint8Array, chunks: readonly Uint8Array[], limits: Partial<ChunkReaderLimits> = {}): Run {
  const reader = new ChunkReader(limits);
  const messages: string[] = [];
  let payloadBytes = 0;
  let error: string | undefined;
  const t0 = performance.now();
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
    if (!(err instanceof OnairError)) {
      throw new Error(`ChunkReader threw ${String(err)} (not OnairError) on: ${hexOf(input)}`, { cause: err });
    }
    error = `${err.code}: ${err.message}`;
  }
  const ms = performance.now() - t0;
  if (ms > MAX_CASE_MS) throw new Error(`ChunkReader took ${ms.toFixed(0)} ms on: ${hexOf(input)}`);
  return { messages, error, payloadBytes };
}

function pieces(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev = 0;
  // Fresh copies: the reader must not depend on pushed chunks sharing one backing buffer.
  for (const cut of [...cuts, bytes.length]) {
    out.push(bytes.slice(prev, cut));
    prev = cut;
  }
  return out;
}

function randomCuts(rng: Rng, length: number): number[] {
  const set = new Set<number>();
  const n = 1 + rng.int(8);
  for (let i = 0; i < n; i++) set.add(rng.int(length + 1));
  return [...set].sort((a, b) => a - b);
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

describe('fuzz: ChunkReader', () => {
  it('reads the unmutated seeds back as the messages written', () => {
    for (const s of seeds()) {
      const whole = run(s.bytes, [s.bytes]);
      expect(whole.error).toBeUndefined();
      expect(whole.messages).toEqual(plain(s.messages));
    }
  });

  it('returns or throws OnairError, same result whole, split and byte by byte, bounded memory', () => {
    const all = seeds();
    const bytes = all.map((s) => s.bytes);
    const rng = new Rng(0xc4c4, SEED_SALT);
    let failed = 0;
    for (let c = 0; c < CASES; c++) {
      const seed = rng.pick(all);
      const input = mutate(rng, seed.bytes, bytes, seed.hints);
      // A quarter of the cases with tight limits, to reach the limit errors from anywhere.
      const limits: Partial<ChunkReaderLimits> = rng.int(4) ? {} : { maxMessageSize: rng.int(600), maxChunkStreams: 1 + rng.int(4), maxChunkSize: 1 + rng.int(5000) };
      const before = process.memoryUsage().arrayBuffers;
      const whole = run(input, [input], limits);
      // Each message grows its own buffer from 16 KiB as chunks arrive, at most 64 chunk streams.
      const grown = process.memoryUsage().arrayBuffers - before;
      if (grown > 4 * input.length + (2 << 20)) throw new Error(`ChunkReader allocated ${grown} bytes for ${input.length}: ${hexOf(input)}`);
      if (whole.payloadBytes > input.length) throw new Error(`${whole.payloadBytes} payload bytes from ${input.length}: ${hexOf(input)}`);
      const split = run(input, pieces(input, randomCuts(rng, input.length)), limits);
      const single = run(input, pieces(input, Array.from(input.keys())), limits);
      // A throw from push loses what that push parsed, so a run that failed holds a prefix.
      expect({ split: split.error, single: single.error }, hexOf(input)).toEqual({ split: whole.error, single: whole.error });
      expect(single.messages.slice(0, split.messages.length), hexOf(input)).toEqual(split.messages);
      expect(single.messages.slice(0, whole.messages.length), hexOf(input)).toEqual(whole.messages);
      if (!whole.error) expect(whole.messages, hexOf(input)).toEqual(single.messages);
      else failed++;
    }
    // Both outcomes must be common, or the mutations are too weak or too destructive to test much.
    expect(failed).toBeGreaterThan(CASES / 10);
    expect(failed).toBeLessThan(CASES * 0.9);
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

import { describe, expect, it } from 'vitest';
import { ChunkReader } from './chunk-reader.js';
import { ChunkWriter } from './chunk-writer.js';
import { setChunkSizeMessage, type RtmpMessage } from './messages.js';
import { cat as concat } from '../../../shared/src/testing/bytes.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.trim().split(/\s+/).filter(Boolean), (b) => parseInt(b, 16));
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const msg = (csid: number, type: number, timestamp: number, streamId: number, payload: Uint8Array): RtmpMessage => ({
  csid, type, timestamp, streamId, payload,
});
/** Comparable form: payloads as hex so failures print readably and equality is byte-exact. */
const plain = (ms: RtmpMessage[]): object[] => ms.map((m) => ({ ...m, payload: Buffer.from(m.payload).toString('hex') }));

// Hand-assembled from RTMP spec §5.3.1: basic header (fmt<<6 | csid), message header per fmt,
// extended timestamp, payload.
const FMT0_CSID3 = hex('03 00 03 e8 00 00 05 14 01 00 00 00 68 65 6c 6c 6f'); // ts 1000, len 5, type 20, msid 1
const AUDIO_RUN = concat(
  hex('04 00 03 e8 00 00 03 08 01 00 00 00 aa bb cc'), // fmt0 ts 1000 len 3 audio msid 1
  hex('84 00 00 14 dd ee ff'), // fmt2 delta 20
  hex('44 00 00 14 00 00 04 08 01 02 03 04'), // fmt1 delta 20, len 4
  hex('c4 05 06 07 08'), // fmt3 starting a new message: same delta, len, type
);
const AUDIO_RUN_MESSAGES = [
  msg(4, 8, 1000, 1, hex('aa bb cc')),
  msg(4, 8, 1020, 1, hex('dd ee ff')),
  msg(4, 8, 1040, 1, hex('01 02 03 04')),
  msg(4, 8, 1060, 1, hex('05 06 07 08')),
];
const SET_CHUNK_4 = hex('02 00 00 00 00 00 04 01 00 00 00 00 00 00 00 04');
// ts 0x01000000 needs the extended field; chunk size 4 splits the 6-byte body; the fmt3
// continuation repeats the extended timestamp.
const EXT_TS_VIDEO = hex('06 ff ff ff 00 00 06 09 01 00 00 00 01 00 00 00 17 01 02 03 c6 01 00 00 00 04 05');
const EXT_TS_VIDEO_NO_REPEAT = hex('06 ff ff ff 00 00 06 09 01 00 00 00 01 00 00 00 17 01 02 03 c6 04 05');
const EXT_TS_MESSAGE = msg(6, 9, 0x01000000, 1, hex('17 01 02 03 04 05'));
/** Fits one chunk of 4 bytes. */
const HELL = hex('03 00 03 e8 00 00 04 14 01 00 00 00 68 65 6c 6c');

function readAll(bytes: Uint8Array, reader = new ChunkReader()): RtmpMessage[] {
  return reader.push(bytes);
}

function readSplit(bytes: Uint8Array, cuts: number[]): RtmpMessage[] {
  const reader = new ChunkReader();
  const out: RtmpMessage[] = [];
  let prev = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(...reader.push(bytes.subarray(prev, cut)));
    prev = cut;
  }
  return out;
}

describe('ChunkReader on hand-assembled chunks', () => {
  it('reads a fmt0 header with a little-endian message stream id', () => {
    expect(plain(readAll(FMT0_CSID3))).toEqual(plain([msg(3, 20, 1000, 1, text('hello'))]));
    const sid = readAll(hex('03 00 00 00 00 00 01 12 04 03 02 01 00'));
    expect(sid[0]!.streamId).toBe(0x01020304);
  });

  it('applies timestamp deltas for fmt1, fmt2 and a fmt3 new message', () => {
    expect(plain(readAll(AUDIO_RUN))).toEqual(plain(AUDIO_RUN_MESSAGES));
  });

  it('reads the 2- and 3-byte basic header forms (csid 64, 319, 320, 65599)', () => {
    const stream = concat(
      hex('00 00 00 00 0a 00 00 01 09 00 00 00 00 01'), // csid 64: byte 0 = 0, then csid - 64
      hex('00 ff 00 00 0b 00 00 01 09 00 00 00 00 02'), // csid 319
      hex('01 00 01 00 00 0c 00 00 01 09 00 00 00 00 03'), // csid 320: 3-byte form, (csid - 64) little-endian
      hex('01 ff ff 00 00 0d 00 00 01 09 00 00 00 00 04'), // csid 65599
      hex('40 00 00 00 05 00 00 01 09 05'), // csid 64 again, fmt1 in the 2-byte form
      hex('41 ff ff 00 00 05 00 00 01 09 06'), // csid 65599 again, fmt1
    );
    expect(readAll(stream).map((m) => [m.csid, m.timestamp, m.payload[0]])).toEqual([
      [64, 10, 1],
      [319, 11, 2],
      [320, 12, 3],
      [65599, 13, 4],
      [64, 15, 5],
      [65599, 18, 6],
    ]);
  });

  it('reads an extended timestamp repeated on a fmt3 continuation chunk, and one that is not', () => {
    const a = readAll(concat(SET_CHUNK_4, EXT_TS_VIDEO, HELL));
    const b = readAll(concat(SET_CHUNK_4, EXT_TS_VIDEO_NO_REPEAT, HELL));
    expect(plain(a.slice(1))).toEqual(plain([EXT_TS_MESSAGE, msg(3, 20, 1000, 1, text('hell'))]));
    expect(plain(b)).toEqual(plain(a));
  });

  it('gives the same messages for every split of the input, and for single bytes', () => {
    const stream = concat(
      FMT0_CSID3, AUDIO_RUN, hex('00 00 00 00 0a 00 00 01 09 00 00 00 00 01'),
      SET_CHUNK_4, EXT_TS_VIDEO, HELL, EXT_TS_VIDEO_NO_REPEAT, HELL, EXT_TS_VIDEO_NO_REPEAT, HELL,
    );
    const whole = plain(readAll(stream));
    expect(whole.length).toBe(13);
    expect(whole[11]).toEqual(plain([EXT_TS_MESSAGE])[0]);
    for (let cut = 0; cut <= stream.length; cut++) expect(plain(readSplit(stream, [cut]))).toEqual(whole);
    for (let cut = 1; cut < stream.length - 1; cut++) expect(plain(readSplit(stream, [cut - 1, cut + 1]))).toEqual(whole);
    expect(plain(readSplit(stream, Array.from({ length: stream.length }, (_, i) => i)))).toEqual(whole);
  });
});

describe('ChunkWriter on hand-assembled chunks', () => {
  it('writes fmt0, then fmt2 and fmt1 for later messages on the same chunk stream', () => {
    const w = new ChunkWriter();
    expect(w.encode(msg(3, 20, 1000, 1, text('hello')))).toEqual(FMT0_CSID3);
    const a = new ChunkWriter();
    const out = concat(...AUDIO_RUN_MESSAGES.slice(0, 3).map((m) => a.encode(m)));
    expect(out).toEqual(AUDIO_RUN.subarray(0, AUDIO_RUN.length - 5));
    // A new message never starts with fmt3, even with equal delta, length and type.
    expect(a.encode(AUDIO_RUN_MESSAGES[3]!)).toEqual(hex('84 00 00 14 05 06 07 08'));
  });

  it('goes back to fmt0 when the message stream id changes or time goes backwards', () => {
    const w = new ChunkWriter();
    w.encode(msg(4, 8, 1000, 1, hex('aa')));
    expect(w.encode(msg(4, 8, 1000, 2, hex('bb')))).toEqual(hex('04 00 03 e8 00 00 01 08 02 00 00 00 bb'));
    expect(w.encode(msg(4, 8, 999, 2, hex('cc')))).toEqual(hex('04 00 03 e7 00 00 01 08 02 00 00 00 cc'));
  });

  it('repeats the extended timestamp on every continuation chunk', () => {
    const w = new ChunkWriter();
    w.setChunkSize(4);
    expect(w.encode(EXT_TS_MESSAGE)).toEqual(EXT_TS_VIDEO);
  });

  it('writes the message stream id little-endian', () => {
    expect(new ChunkWriter().encode(msg(5, 18, 0, 0x01020304, hex('00')))).toEqual(hex('05 00 00 00 00 00 01 12 04 03 02 01 00'));
  });

  it('refuses chunk stream ids outside 2..8 and chunk sizes outside 1..16 MiB', () => {
    const w = new ChunkWriter();
    expect(() => w.encode(msg(9, 8, 0, 1, hex('00')))).toThrow(/chunk stream id 9/);
    expect(() => w.setChunkSize(0)).toThrow(expect.objectContaining({ code: 'RTMP_BAD_CHUNK_SIZE' }));
    expect(() => w.setChunkSize(16 * 1024 * 1024 + 1)).toThrow(expect.objectContaining({ code: 'RTMP_BAD_CHUNK_SIZE' }));
  });

  it('encodeInto writes the same bytes as encode', () => {
    const a = new ChunkWriter();
    const b = new ChunkWriter();
    const m = msg(6, 9, 40, 1, new Uint8Array(10000).map((_, i) => i));
    const out = new Uint8Array(a.encodedSize(m) + 3);
    expect(a.encodeInto(m, out, 3)).toBe(out.length - 3);
    expect(out.subarray(3)).toEqual(b.encode(m));
  });
});

describe('ChunkWriter → ChunkReader round trips', () => {
  function pattern(n: number, seed: number): Uint8Array {
    const b = new Uint8Array(n);
    let x = seed * 2654435761;
    for (let i = 0; i < n; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      b[i] = x >>> 24;
    }
    return b;
  }

  for (const chunkSize of [1, 128, 4096, 60000]) {
    it(`chunk size ${chunkSize}: sizes up to 1 MB, timestamps across 0xFFFFFF and 2^32`, () => {
      const sizes = chunkSize === 1 ? [0, 1, 2, 300, 70000] : [0, 1, 127, 128, 129, 4095, 4096, 4097, 60001, 1024 * 1024];
      const stamps = [0, 33, 0xfffffe, 0xffffff, 0x1000000, 0x1000021, 0xffffffff, 5, 5, 0x7fffffff];
      const messages: RtmpMessage[] = [];
      let i = 0;
      for (const ts of stamps) {
        for (const size of sizes) {
          const csid = [4, 6, 5][i % 3]!;
          messages.push(msg(csid, [8, 9, 18][i % 3]!, ts, i % 7 === 0 ? 2 : 1, pattern(size, i)));
          i++;
        }
      }
      const w = new ChunkWriter();
      const parts = [w.encode(setChunkSizeMessage(chunkSize))];
      w.setChunkSize(chunkSize);
      for (const m of messages) parts.push(w.encode(m));
      const stream = concat(...parts);
      const reader = new ChunkReader();
      const got: RtmpMessage[] = [];
      // Uneven pushes so headers and payloads straddle push boundaries.
      for (let at = 0, step = 1; at < stream.length; at += step, step = (step * 7 + 3) % 9973) {
        got.push(...reader.push(stream.subarray(at, at + step)));
      }
      expect(got.length).toBe(messages.length + 1);
      expect(reader.chunkSize).toBe(chunkSize);
      const received = got.slice(1);
      for (const [k, m] of messages.entries()) {
        const r = received[k]!;
        expect([r.csid, r.type, r.timestamp, r.streamId, r.payload.length]).toEqual([m.csid, m.type, m.timestamp >>> 0, m.streamId, m.payload.length]);
        expect(Buffer.compare(r.payload, m.payload)).toBe(0);
      }
    });
  }
});

describe('ChunkWriter output lifetime', () => {
  it('copies each payload and never rewrites bytes it handed out, across blocks and for large messages', () => {
    // Small messages share blocks, large ones do not: enough of both to fill several blocks.
    const sizes = Array.from({ length: 600 }, (_, i) => (i % 50 === 49 ? 100_000 : i % 7 === 0 ? 9_000 : 300 + i));
    const scratch = new Uint8Array(100_000);
    const w = new ChunkWriter();
    const parts = [w.encode(setChunkSizeMessage(4096))];
    w.setChunkSize(4096);
    for (const [i, size] of sizes.entries()) {
      scratch.fill(i & 0xff, 0, size);
      parts.push(w.encode(msg(i % 2 ? 4 : 6, i % 2 ? 8 : 9, i * 20, 1, scratch.subarray(0, size))));
      scratch.fill(0xee); // the caller reuses its buffer at once
    }
    const got = new ChunkReader().push(concat(...parts)).slice(1);
    expect(got.map((m) => m.payload.length)).toEqual(sizes);
    for (const [i, m] of got.entries()) expect(m.payload.every((b) => b === (i & 0xff)), `message ${i}`).toBe(true);
  });
});

describe('ChunkReader output lifetime', () => {
  it('copies each payload out of the input, which the caller may reuse at once', () => {
    const sizes = Array.from({ length: 900 }, (_, i) => (i % 60 === 59 ? 70_000 : i % 9 === 0 ? 16_384 : 200 + i));
    const w = new ChunkWriter();
    const parts = [w.encode(setChunkSizeMessage(65_536))];
    w.setChunkSize(65_536);
    for (const [i, size] of sizes.entries()) parts.push(w.encode(msg(i % 2 ? 4 : 6, i % 2 ? 8 : 9, i * 20, 1, new Uint8Array(size).fill(i & 0xff))));
    const stream = concat(...parts);
    const reader = new ChunkReader();
    // One input buffer for every push, overwritten after each, as a socket's read buffer is.
    const input = new Uint8Array(64 * 1024);
    const got: RtmpMessage[] = [];
    for (let at = 0; at < stream.length; at += input.length) {
      const n = Math.min(input.length, stream.length - at);
      input.set(stream.subarray(at, at + n));
      reader.push(input.subarray(0, n), (m) => got.push(m));
      input.fill(0xee);
    }
    expect(got.slice(1).map((m) => m.payload.length)).toEqual(sizes);
    for (const [i, m] of got.slice(1).entries()) expect(m.payload.every((b) => b === (i & 0xff)), `message ${i}`).toBe(true);
  });
});

describe('ChunkReader limits', () => {
  const code = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (err) {
      return (err as { code?: string }).code;
    }
    return undefined;
  };

  it('refuses a message longer than maxMessageSize from its header, before any payload', () => {
    const r = new ChunkReader({ maxMessageSize: 1000 });
    expect(code(() => r.push(hex('06 00 00 00 00 03 e9 09 01 00 00 00')))).toBe('RTMP_MESSAGE_TOO_LARGE');
    expect(code(() => new ChunkReader().push(hex('06 00 00 00 ff ff ff 09 01 00 00 00')))).toBe('RTMP_MESSAGE_TOO_LARGE');
    expect(new ChunkReader({ maxMessageSize: 1000 }).push(concat(hex('06 00 00 00 00 00 00 09 01 00 00 00')))).toHaveLength(1);
  });

  it('refuses more chunk streams than maxChunkStreams', () => {
    const r = new ChunkReader({ maxChunkStreams: 2 });
    const one = (csid: number): Uint8Array => hex(`${csid.toString(16).padStart(2, '0')} 00 00 00 00 00 01 09 01 00 00 00 00`);
    expect(r.push(concat(one(3), one(4), one(3)))).toHaveLength(3);
    expect(code(() => r.push(one(5)))).toBe('RTMP_TOO_MANY_CHUNK_STREAMS');
    // A failed reader stays failed.
    expect(code(() => r.push(one(3)))).toBe('RTMP_TOO_MANY_CHUNK_STREAMS');
  });

  it('refuses Set Chunk Size 0 and above 16 MiB, naming the value', () => {
    expect(() => new ChunkReader().push(hex('02 00 00 00 00 00 04 01 00 00 00 00 00 00 00 00'))).toThrow(
      expect.objectContaining({ code: 'RTMP_BAD_CHUNK_SIZE', message: expect.stringContaining('chunk size 0 ') }),
    );
    expect(() => new ChunkReader().push(hex('02 00 00 00 00 00 04 01 00 00 00 00 01 00 00 01'))).toThrow(
      expect.objectContaining({ code: 'RTMP_BAD_CHUNK_SIZE', message: expect.stringContaining('16777217') }),
    );
    expect(new ChunkReader().push(hex('02 00 00 00 00 00 04 01 00 00 00 00 01 00 00 00'))).toHaveLength(1);
  });

  it('bounds the bytes of incomplete messages on all chunk streams together (maxPartialBytes)', () => {
    // Chunk size 128 (the default): fmt0 header announcing 30,080 bytes (235 chunks) of video, one chunk.
    const start = (csid: number): Uint8Array => concat(hex(`${csid.toString(16).padStart(2, '0')} 00 00 00 00 75 80 09 01 00 00 00`), new Uint8Array(128).fill(csid));
    const more = (csid: number): Uint8Array => concat(hex((0xc0 | csid).toString(16)), new Uint8Array(128).fill(csid));
    const r = new ChunkReader({ maxPartialBytes: 50_000 });
    // A message's buffer starts at 16 KiB and grows to its length; finishing it gives it back.
    expect(r.push(concat(start(4), start(6)))).toEqual([]);
    expect(r.partialBytes).toBe(2 * 16384);
    const rest = Array.from({ length: 234 }, () => more(4));
    expect(r.push(concat(...rest))).toHaveLength(1);
    expect(r.partialBytes).toBe(16384);
    expect(r.push(concat(start(4), start(8)))).toEqual([]);
    expect(r.partialBytes).toBe(3 * 16384);
    // Growing one of the three to its 30,080 bytes would hold 62,848 in all.
    let err: { code?: string; message?: string } = {};
    try {
      for (let i = 0; i < 200; i++) r.push(more(6));
    } catch (e) {
      err = e as typeof err;
    }
    expect(err).toMatchObject({
      code: 'RTMP_MESSAGE_TOO_LARGE',
      message: 'incomplete messages on 3 chunk streams would hold 62848 bytes, more than maxPartialBytes 50000',
    });
  });

  it('refuses a chunk stream that starts without a fmt0 header', () => {
    expect(code(() => new ChunkReader().push(hex('44 00 00 14 00 00 01 08 00')))).toBe('RTMP_PROTOCOL');
  });
});

import { beforeAll, describe, expect, it } from 'vitest';
import { Amf0EcmaArray, amf0Props, decodeAmf0, encodeAmf0, type Amf0Object, type Amf0Value } from './amf/amf0.js';
import { OnairError } from './errors.js';
import { AvcPacketType, ExVideoPacketType, VideoCodecId, parseAudioBody, parseScriptBody, parseVideoBody } from './flv/flv-media.js';
import { FlvReader, parseFlvTag, type FlvReaderOptions } from './flv/flv-reader.js';
import { FLV_HEADER_SIZE, FLV_PREVIOUS_TAG_SIZE, FLV_TAG_HEADER_SIZE, FlvTagType, type FlvTag } from './flv/flv-tag.js';
import { flvHeader, flvTag } from './flv/flv-writer.js';
import { sanitizeMetadata } from './flv/metadata.js';
import { TagKind, tagKind } from './flv/tag-kind.js';
import { cat } from './testing/bytes.js';
import { Rng, fnv, mutate, pieces, randomCuts, smallCuts } from './testing/fuzz.js';
import { FUZZ_TIMEOUT_MS, arrayBufferGrowth, attempt, expectSame, fuzz, fuzzFailure } from './testing/fuzz-run.js';
import { mediaSeeds } from './testing/media-seeds.js';

// Seeded fuzzing of the AMF0 and FLV parsers, which read untrusted bytes on both sides: mutations
// of what ffmpeg wrote, and inputs built field by field with hostile lengths. Properties: a parser
// returns or throws OnairError (never TypeError, RangeError…), finishes quickly, allocates in
// proportion to its input, and incremental parsers give the same result however input is split.
// A failure message carries the input in hex: paste it into a regression test next to the code.
// Case counts and time caps: shared/src/testing/fuzz-run.ts; `npm run fuzz` runs 10^6 per target.

let files: Uint8Array[] = [];
let tags: FlvTag[] = [];

beforeAll(() => {
  const seeds = mediaSeeds();
  files = Object.values(seeds.files);
  tags = Object.values(seeds.tags).flat();
});

// ---- AMF0 ---------------------------------------------------------------------------------

const KEYS = ['', 'a', 'app', 'code', 'level', '__proto__', 'constructor', 'toString', 'é', '😀', 'x'.repeat(70)];
const NUMBERS = [0, -0, 1, -1, 0.5, 2 ** 31, 2 ** 53 + 1, Number.MAX_VALUE, Number.MIN_VALUE, Infinity, -Infinity, NaN];

function randomString(rng: Rng): string {
  const alphabet = ['a', 'Z', '0', ' ', '\0', '\n', 'é', '€', '😀', '\u2028', 'NetStream.Publish.Start'];
  let s = '';
  for (let n = rng.int(12); n > 0; n--) s += rng.pick(alphabet);
  return rng.oneIn(30) ? s.repeat(6000) : s; // past 65535 bytes: a long string
}

/** A random AMF0 value tree, at most `depth` deep. */
function randomAmf(rng: Rng, depth: number): Amf0Value {
  switch (rng.int(depth > 0 ? 10 : 7)) {
    case 0:
      return rng.pick(NUMBERS);
    case 1:
      return (rng.next() | 0) / (1 + rng.int(1000));
    case 2:
      return rng.oneIn(2);
    case 3:
      return randomString(rng);
    case 4:
      return rng.oneIn(2) ? null : undefined;
    case 5:
      return new Date(rng.oneIn(4) ? NaN : rng.next() * 1000);
    case 6:
      return rng.pick(KEYS);
    case 7:
      return Array.from({ length: rng.int(5) }, () => randomAmf(rng, depth - 1));
    default: {
      const obj: Amf0Object = {};
      for (let n = rng.int(5); n > 0; n--) {
        Object.defineProperty(obj, rng.pick(KEYS), { value: randomAmf(rng, depth - 1), enumerable: true, writable: true, configurable: true });
      }
      return rng.oneIn(2) ? new Amf0EcmaArray(obj) : obj;
    }
  }
}

/** AMF0 values as real peers send them, and a few written to reach every marker. */
function amfSeeds(): Uint8Array[] {
  const meta = tags.filter((t) => t.type === FlvTagType.Script).map((t) => t.data);
  return [
    ...meta,
    encodeAmf0([
      'connect', 1,
      { app: 'live', type: 'nonprivate', flashVer: 'FMLE/3.0', tcUrl: 'rtmp://127.0.0.1/live', fpad: false, capabilities: 15, fourCcList: ['avc1', 'mp4a'] },
    ]),
    encodeAmf0(['_result', 1, { fmsVer: 'FMS/3,0,1,123' }, { level: 'status', code: 'NetConnection.Connect.Success', objectEncoding: 0 }]),
    encodeAmf0(['onStatus', 0, null, { level: 'status', code: 'NetStream.Publish.Start', description: 'x'.repeat(300) }]),
    encodeAmf0(['@setDataFrame', 'onMetaData', new Amf0EcmaArray({ width: 1280, height: 720, encoder: 'onair', stereo: true })]),
    encodeAmf0([new Date(1_700_000_000_000), [1, [2, [3, { deep: [undefined, null] }]]], 'é€😀', -0, Number.NaN]),
    // Typed object, XML document, long string, unsupported: markers encodeAmf0 never writes.
    Uint8Array.of(0x10, 0, 1, 0x43, 0, 1, 0x61, 0x05, 0, 0, 9, 0x0f, 0, 0, 0, 2, 0x3c, 0x3e, 0x0c, 0, 0, 0, 1, 0x7a, 0x0d),
  ];
}

/** Values plus decoded string length: every unit of it costs at least one input byte. */
function weight(v: Amf0Value): number {
  if (typeof v === 'string') return 1 + v.length;
  if (Array.isArray(v)) return 1 + v.reduce<number>((n, x) => n + weight(x), 0);
  const props = v instanceof Date ? undefined : amf0Props(v ?? null);
  if (props) return 1 + Object.entries(props).reduce((n, [k, x]) => n + k.length + weight(x), 0);
  return 1;
}

/** A comparable form: Dates by their time value, so an invalid Date equals itself. */
function comparable(v: Amf0Value): unknown {
  if (v instanceof Date) return { date: String(v.getTime()) };
  if (Array.isArray(v)) return v.map(comparable);
  if (v instanceof Amf0EcmaArray) return { ecma: comparable(v.entries) };
  if (v !== null && typeof v === 'object') return Object.entries(v).map(([k, x]) => [k, comparable(x)]);
  return typeof v === 'number' ? String(v) + (Object.is(v, -0) ? '-' : '') : v;
}

describe('fuzz: AMF0', () => {
  it('decodeAmf0 returns or throws OnairError, bounded by its input, and re-encodes stably', { timeout: FUZZ_TIMEOUT_MS }, () => {
    const inputs = amfSeeds();
    for (const s of inputs) expect(decodeAmf0(s).length).toBeGreaterThan(0);
    let decoded = 0;
    const run = fuzz('AMF0 decodeAmf0', 0xa3f0, (rng) => {
      // A third of the inputs are generated value trees (mutated or not), the rest mutated seeds.
      const generated = rng.oneIn(3) ? encodeAmf0(Array.from({ length: 1 + rng.int(4) }, () => randomAmf(rng, 1 + rng.int(18)))) : undefined;
      const input = generated && rng.oneIn(2) ? generated : mutate(rng, generated ?? rng.pick(inputs), inputs);
      const values = attempt('decodeAmf0', input, () => decodeAmf0(input, { maxDepth: 16 }));
      if (values instanceof OnairError) return;
      decoded++;
      const w = values.reduce<number>((n, v) => n + weight(v), 0);
      if (w > input.length) throw fuzzFailure(`decodeAmf0 output weight ${w} > ${input.length} input bytes`, input);
      const again = attempt('decodeAmf0 of re-encoded', input, () => decodeAmf0(encodeAmf0(values)));
      if (again instanceof OnairError) throw fuzzFailure(`re-encoded values do not decode (${again.message})`, input);
      expectSame('decodeAmf0 of re-encoded values', input, comparable(again), comparable(values));
    });
    // The fuzzer must reach past the first byte: a decoder that threw on everything would pass.
    expect(decoded).toBeGreaterThan(run.cases / 10);
  });

  it('parseScriptBody names a handler; sanitizeMetadata refuses with FLV_SCRIPT_REFUSED or writes known fields only', { timeout: FUZZ_TIMEOUT_MS }, () => {
    const inputs = amfSeeds();
    const types: Record<string, string> = { width: 'number', duration: 'number', encoder: 'string', stereo: 'boolean', hasVideo: 'boolean' };
    let kept = 0;
    const run = fuzz('FLV script body, sanitizeMetadata', 0x5c12, (rng) => {
      const input = mutate(rng, rng.pick(inputs), inputs);
      const out = attempt('parseScriptBody', input, () => parseScriptBody(input));
      if (!(out instanceof OnairError)) expect(typeof out.name).toBe('string');
      const clean = attempt('sanitizeMetadata', input, () => sanitizeMetadata(input));
      if (clean instanceof OnairError) {
        if (clean.code !== 'FLV_SCRIPT_REFUSED') throw fuzzFailure(`sanitizeMetadata threw ${clean.code}`, input);
        return;
      }
      kept++;
      // What reaches a server decodes with our reader as onMetaData + ECMA array of known, finite fields.
      const script = parseScriptBody(clean);
      const props = script.value instanceof Amf0EcmaArray ? script.value.entries : undefined;
      if (script.name !== 'onMetaData' || props === undefined) throw fuzzFailure('sanitizeMetadata wrote something else than onMetaData', input);
      for (const [k, v] of Object.entries(props)) {
        const ok = (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean' || (typeof v === 'string' && v.length <= 256);
        if (!ok || (types[k] !== undefined && typeof v !== types[k])) throw fuzzFailure(`sanitizeMetadata kept ${k}=${String(v)}`, input);
      }
      expectSame('sanitizeMetadata of its own output', input, sanitizeMetadata(clean), clean);
    });
    expect(kept).toBeGreaterThan(run.cases / 20);
  });
});

// ---- FLV ----------------------------------------------------------------------------------

interface Run {
  tags: string[];
  error: string | undefined;
  maxBuffered: number;
}

function read(chunks: readonly Uint8Array[], options: FlvReaderOptions): Run {
  const reader = new FlvReader(options);
  const out: string[] = [];
  let maxBuffered = 0;
  let error: string | undefined;
  try {
    for (const chunk of chunks) {
      for (const t of reader.push(chunk)) out.push(`${t.type}/${t.timestamp}/${t.data.length}/${fnv(t.data)}`);
      maxBuffered = Math.max(maxBuffered, reader.buffered);
    }
    reader.end();
  } catch (err) {
    if (!(err instanceof OnairError)) throw err;
    error = `${err.code}: ${err.message}`;
  }
  reader.close();
  return { tags: out, error, maxBuffered };
}

/** Offsets of every DataSize and PreviousTagSize in a well-formed stream of tags from `start`. */
function lengthFields(bytes: Uint8Array, start: number): number[] {
  const at: number[] = [];
  for (let p = start; p + FLV_TAG_HEADER_SIZE <= bytes.length; ) {
    const size = (bytes[p + 1]! << 16) | (bytes[p + 2]! << 8) | bytes[p + 3]!;
    at.push(p + 1, p + FLV_TAG_HEADER_SIZE + size);
    p += FLV_TAG_HEADER_SIZE + size + FLV_PREVIOUS_TAG_SIZE;
  }
  return at;
}

const u32 = (v: number): number[] => [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];

/**
 * An FLV built field by field: a header with a plausible or hostile DataOffset, then tags of real
 * bodies whose DataSize, PreviousTagSize, type and timestamp are right or hostile.
 */
function hostileFlv(rng: Rng, headerless: boolean): Uint8Array {
  const parts: Uint8Array[] = [];
  if (!headerless) {
    const offset = rng.int(3) ? 9 : rng.pick([0, 8, 10, 13, 1024, 1025, 0xffffffff, rng.int(2048)]);
    const sig = rng.oneIn(20) ? [0x46, 0x4c, 0x57] : [0x46, 0x4c, 0x56];
    parts.push(Uint8Array.of(...sig, 1, rng.int(256), ...u32(offset)));
    parts.push(rng.bytes(Math.max(0, Math.min(offset, 1100) - 9)), Uint8Array.from(u32(rng.int(10) ? 0 : rng.next())));
  }
  for (let n = 1 + rng.int(6); n > 0; n--) {
    const body = rng.oneIn(4) ? rng.bytes(rng.int(40)) : rng.pick(tags).data.subarray(0, rng.oneIn(3) ? rng.int(64) : undefined);
    const type = rng.int(4) ? rng.pick([8, 9, 18]) : rng.pick([0, 0x28, 0x29, 0x1f, rng.int(256)]);
    const size = rng.int(4) ? body.length : rng.pick([0xffffff, body.length + 1, body.length - 1, 0x800000, rng.int(0x1000000)]) & 0xffffff;
    const ts = rng.int(3) ? rng.int(100_000) : rng.next();
    const prev = rng.int(4) ? FLV_TAG_HEADER_SIZE + body.length : rng.pick([0, FLV_TAG_HEADER_SIZE + size, body.length, rng.next()]);
    parts.push(
      Uint8Array.of(type, size >>> 16, (size >>> 8) & 0xff, size & 0xff, (ts >>> 16) & 0xff, (ts >>> 8) & 0xff, ts & 0xff, ts >>> 24, 0, 0, rng.oneIn(8) ? rng.int(256) : 0),
      body,
      Uint8Array.from(u32(prev >>> 0)),
    );
  }
  return cat(...parts);
}

/** A run of consecutive tags from a seed file, in file form, with or without the file header. */
function window(rng: Rng, headerless: boolean): Uint8Array {
  const from = rng.int(tags.length);
  const run = tags.slice(from, from + 1 + rng.int(8)).map((t) => flvTag(t));
  return headerless ? cat(...run) : cat(flvHeader({ audio: true, video: true }), ...run);
}

describe('fuzz: FLV', () => {
  for (const headerless of [false, true]) {
    it(`FlvReader${headerless ? ' (headerless)' : ''}: OnairError only, same result whole, split and byte by byte`, { timeout: FUZZ_TIMEOUT_MS }, () => {
      const start = FLV_HEADER_SIZE + FLV_PREVIOUS_TAG_SIZE;
      const seeds = files.map((f) => (headerless ? f.slice(start) : f));
      for (const seed of seeds) {
        const clean = read([seed], { headerless });
        expect(clean.error).toBeUndefined();
        expect(clean.tags.length).toBeGreaterThan(3);
      }
      let failed = 0;
      const run = fuzz(`FLV FlvReader${headerless ? ' headerless' : ''}`, headerless ? 0xf1b2 : 0xf1b1, (rng, c) => {
        let input: Uint8Array;
        if (rng.oneIn(3)) {
          input = hostileFlv(rng, headerless);
        } else {
          const seed = rng.oneIn(8) ? rng.pick(seeds) : window(rng, headerless);
          const hints = lengthFields(seed, headerless ? 0 : start);
          if (!headerless) hints.push(5, 9); // DataOffset, PreviousTagSize0
          input = mutate(rng, seed, seeds, hints);
        }
        // A quarter of the cases with a small tag size limit, to reach FLV_TOO_LARGE.
        const options: FlvReaderOptions = rng.int(4) ? { headerless } : { headerless, maxTagSize: rng.int(4096) };
        let whole: Run | undefined;
        const grown = arrayBufferGrowth(() => {
          whole = attempt('FlvReader', input, () => read([input], options)) as Run;
        });
        // The reader keeps views or one copy of each split unit: a few times the input at most.
        if (grown > 4 * input.length + (1 << 20)) throw fuzzFailure(`FlvReader allocated ${grown} bytes for ${input.length}`, input);
        const split = attempt('FlvReader split', input, () => read(pieces(input, randomCuts(rng, input.length)), options)) as Run;
        // Byte by byte on every fourth case (up to 8 KiB), small random pushes on the others.
        const at = c % 4 === 0 && input.length <= 8192 ? Array.from(input.keys()).slice(1) : smallCuts(rng, input.length, 64);
        const small = attempt('FlvReader small pushes', input, () => read(pieces(input, at), options)) as Run;
        for (const r of [whole!, split, small]) {
          if (r.maxBuffered > input.length) throw fuzzFailure(`FlvReader buffered ${r.maxBuffered} of ${input.length} bytes`, input);
        }
        // A throw from push loses what that push parsed, so a run that failed holds a prefix of
        // the tags before the fault: of the longest run's.
        expectSame('FlvReader errors whole, split, small', input, [split.error, small.error], [whole!.error, whole!.error]);
        const longest = [whole!, split, small].reduce((a, b) => (b.tags.length > a.tags.length ? b : a));
        for (const r of [whole!, split, small]) expectSame('FlvReader tags', input, r.tags, longest.tags.slice(0, r.tags.length));
        if (!whole!.error) expectSame('FlvReader tags whole and split', input, whole!.tags.length, longest.tags.length);
        else failed++;
      });
      expect(failed).toBeGreaterThan(run.cases / 10);
      expect(failed).toBeLessThan(run.cases * 0.95);
    });
  }

  it('parseFlvTag: OnairError only, and agrees with FlvReader on the same bytes', { timeout: FUZZ_TIMEOUT_MS }, () => {
    const seeds = tags.map((t) => flvTag(t));
    for (const s of seeds) expect(parseFlvTag(s).data.length).toBe(s.length - 15);
    let parsed = 0;
    const run = fuzz('FLV parseFlvTag', 0x7a90, (rng) => {
      const seed = rng.pick(seeds);
      const input = rng.oneIn(4) ? hostileFlv(rng, true) : mutate(rng, seed, seeds, [1, seed.length - 4]);
      const maxTagSize = rng.oneIn(4) ? rng.int(256) : undefined;
      const tag = attempt('parseFlvTag', input, () => parseFlvTag(input, maxTagSize));
      const viaReader = attempt('FlvReader', input, () => {
        const r = new FlvReader(maxTagSize === undefined ? { headerless: true } : { headerless: true, maxTagSize });
        const got = r.push(input);
        r.end();
        return got;
      });
      if (tag instanceof OnairError) return;
      parsed++;
      expectSame('parseFlvTag body length', input, tag.data.length, input.length - FLV_TAG_HEADER_SIZE - FLV_PREVIOUS_TAG_SIZE);
      expectSame('FlvReader tags where parseFlvTag read one', input, viaReader instanceof OnairError ? viaReader.message : viaReader.length, 1);
    });
    expect(parsed).toBeGreaterThan(run.cases / 20);
  });

  it('parseVideoBody and parseAudioBody: OnairError only, data a view inside the body, tagKind agrees', { timeout: FUZZ_TIMEOUT_MS }, () => {
    const video = tags.filter((t) => t.type === FlvTagType.Video).map((t) => t.data);
    const audio = tags.filter((t) => t.type === FlvTagType.Audio).map((t) => t.data);
    // Enhanced RTMP headers: hvc1 coded frames (with cts), av01 sequence start, a ModEx
    // TimestampOffsetNano before hvc1 coded frames, a command frame, multitrack; Opus audio.
    video.push(
      Uint8Array.of(0x91, 0x68, 0x76, 0x63, 0x31, 0xff, 0xff, 0xfe, 0, 0, 0, 1, 0x26),
      Uint8Array.of(0x90, 0x61, 0x76, 0x30, 0x31, 0x81, 0x08),
      Uint8Array.of(0x97, 0x02, 0x00, 0x01, 0xf4, 0x01, 0x68, 0x76, 0x63, 0x31, 0, 0, 0x21, 0x26, 0x01),
      Uint8Array.of(0xd0, 0x01),
      Uint8Array.of(0x96, 0x00, 0x61, 0x76, 0x30, 0x31, 0x00, 0x81),
    );
    audio.push(Uint8Array.of(0x90, 0x4f, 0x70, 0x75, 0x73, 0x4f, 0x70, 0x75, 0x73));
    const all = [...video, ...audio];
    fuzz('FLV parseVideoBody, parseAudioBody, tagKind', 0xb0d1, (rng) => {
      const input = rng.oneIn(8) ? rng.bytes(rng.int(10)) : mutate(rng, rng.pick(all).subarray(0, 64), all);
      for (const [what, parse, type] of [['parseVideoBody', parseVideoBody, FlvTagType.Video], ['parseAudioBody', parseAudioBody, FlvTagType.Audio]] as const) {
        const body = attempt(what, input, () => parse(input));
        const kind = attempt('tagKind', input, () => tagKind({ type, timestamp: 0, data: input }));
        if (kind instanceof OnairError) throw fuzzFailure(`tagKind threw ${kind.code}`, input);
        if (body instanceof OnairError) continue;
        const { data } = body;
        const inside = data.buffer === input.buffer && data.byteOffset >= input.byteOffset && data.byteOffset + data.length <= input.byteOffset + input.length;
        if (!inside) throw fuzzFailure(`${what} data is not a view inside its body`, input);
        expectSame(`${what} packet type and fourcc`, input, Number.isInteger(body.packetType ?? 0) && (body.fourcc ?? 'abcd').length === 4, true);
        // The one classifier (relays) and the parser (remuxer) must agree on what an AVC or an
        // Enhanced RTMP tag is.
        if (type === FlvTagType.Video && 'codecId' in body && (body.codecId === VideoCodecId.Avc || body.fourcc !== undefined)) {
          const v = body;
          const config = v.codecId === VideoCodecId.Avc ? v.packetType === AvcPacketType.SequenceHeader : v.packetType === ExVideoPacketType.SequenceStart;
          const coded = v.codecId === VideoCodecId.Avc ? v.packetType === AvcPacketType.Nalu : v.packetType === ExVideoPacketType.CodedFrames || v.packetType === ExVideoPacketType.CodedFramesX;
          // An empty Enhanced RTMP sequence start configures nothing (tag-kind.ts).
          const empty = v.codecId !== VideoCodecId.Avc && v.data.length === 0;
          const expected = config ? (empty ? TagKind.Other : TagKind.VideoConfig) : coded ? (v.keyframe ? TagKind.Keyframe : TagKind.Frame) : TagKind.Other;
          if (v.frameType !== 5 && kind !== expected) throw fuzzFailure(`tagKind ${kind}, parseVideoBody says ${expected}`, input);
        }
      }
    });
  });
});

describe('FLV: inputs the fuzzer found', () => {
  it('parseFlvTag calls a frame that claims more bytes than it has malformed, not too large', () => {
    // 21 bytes of garbage from the studio protocol fuzzer: DataSize 0x8f1577 (9.4 MB).
    const frame = Uint8Array.of(0xc6, 0x8f, 0x15, 0x77, 0xb0, 0xc4, 0x72, 0x02, 0x8e, 0xcf, 0x65, 0x08, 0xda, 0xc2, 0x44, 0xcb, 0xf9, 0x7b, 0xe3, 0x87, 0xa4);
    expect(attempt('parseFlvTag', frame, () => parseFlvTag(frame, 4 * 1024 * 1024))).toMatchObject({ code: 'FLV_MALFORMED' }); // was FLV_TOO_LARGE
  });
});

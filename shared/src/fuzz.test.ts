import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { Amf0EcmaArray, decodeAmf0, encodeAmf0, type Amf0Value } from './amf/amf0.js';
import { buildAudioSpecificConfig, parseAudioSpecificConfig } from './codec/aac.js';
import { parseAvcC, parseSps } from './codec/avc.js';
import { OnairError } from './errors.js';
import { parseAudioBody, parseScriptBody, parseVideoBody } from './flv/flv-media.js';
import { FlvReader, parseFlvTag, type FlvReaderOptions } from './flv/flv-reader.js';
import { FLV_HEADER_SIZE, FLV_PREVIOUS_TAG_SIZE, FLV_TAG_HEADER_SIZE, FlvTagType, type FlvTag } from './flv/flv-tag.js';
import { hexOf } from './testing/bytes.js';
import { Rng, mutate } from './testing/fuzz.js';

// Seeded mutation fuzzing of every parser that reads untrusted bytes. Properties: a parser
// returns or throws OnairError (never TypeError, RangeError…), finishes quickly, allocates in
// proportion to its input, and incremental parsers give the same result however input is split.
// A failure message carries the input in hex: paste it into a regression test next to the code.

// ONAIR_FUZZ_CASES and ONAIR_FUZZ_SEED widen a run by hand; the defaults keep the file under 15 s.
const CASES = Number(process.env['ONAIR_FUZZ_CASES'] ?? 2500);
const SEED_SALT = Number(process.env['ONAIR_FUZZ_SEED'] ?? 0);

/** Slowest a single parse may be: a loop bound gone wrong shows up as seconds, not this. */
const MAX_CASE_MS = 1000;

/** Runs `fn`; an OnairError is an accepted outcome, anything else fails with the input. */
function attempt<T>(what: string, input: Uint8Array, fn: () => T): T | OnairError {
  const t0 = performance.now();
  let result: T | OnairError;
  try {
    result = fn();
  } catch (err) {
    if (!(err instanceof OnairError)) {
      throw new Error(`${what} threw ${String(err)} (not OnairError) on: ${hexOf(input)}`, { cause: err });
    }
    result = err;
  }
  const ms = performance.now() - t0;
  if (ms > MAX_CASE_MS) throw new Error(`${what} took ${ms.toFixed(0)} ms on: ${hexOf(input)}`);
  return result;
}

/** ArrayBuffer bytes allocated while `fn` ran (garbage included, so an upper bound). */
function arrayBufferGrowth(fn: () => void): number {
  const before = process.memoryUsage().arrayBuffers;
  fn();
  return process.memoryUsage().arrayBuffers - before;
}

/** Random cut points, sorted and distinct, within 0..length. */
function cuts(rng: Rng, length: number): number[] {
  const set = new Set<number>();
  const n = 1 + rng.int(8);
  for (let i = 0; i < n; i++) set.add(rng.int(length + 1));
  return [...set].sort((a, b) => a - b);
}

function pieces(bytes: Uint8Array, at: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev = 0;
  // Fresh copies: a reader must not depend on pushed chunks sharing one backing buffer.
  for (const cut of [...at, bytes.length]) {
    out.push(bytes.slice(prev, cut));
    prev = cut;
  }
  return out;
}

/** FNV-1a: compares tag bodies without keeping copies of every run. */
function fnv(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

const ffmpegArgs = ['-hide_banner', '-loglevel', 'error'];

let flv: Uint8Array = new Uint8Array(0);
let tags: FlvTag[] = [];
let avcCs: Uint8Array[] = [];
let spss: Uint8Array[] = [];
const ascs: Uint8Array[] = [];

function encodeFlv(video: string[], size: string): Uint8Array {
  return new Uint8Array(
    execFileSync('ffmpeg', [
      ...ffmpegArgs, '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=10`, '-f', 'lavfi', '-i', 'sine=sample_rate=22050',
      '-t', '0.3', '-c:v', 'libx264', ...video, '-c:a', 'aac', '-ac', '1', '-f', 'flv', '-',
    ]),
  );
}

function sequenceHeaders(file: Uint8Array): { avcC: Uint8Array; asc: Uint8Array } {
  const all = new FlvReader().push(file);
  const video = all.filter((t) => t.type === FlvTagType.Video).map((t) => parseVideoBody(t.data));
  const audio = all.filter((t) => t.type === FlvTagType.Audio).map((t) => parseAudioBody(t.data));
  return { avcC: video.find((v) => v.packetType === 0)!.data, asc: audio.find((a) => a.packetType === 0)!.data };
}

beforeAll(() => {
  // High profile with odd size (cropping, chroma/bit-depth fields) and Baseline with a
  // non-square sample aspect ratio in the VUI: the SPS code paths real encoders take.
  flv = encodeFlv(['-profile:v', 'high', '-g', '2'], '170x98');
  const baseline = encodeFlv(['-profile:v', 'baseline', '-vf', 'setsar=4/3'], '96x64');
  tags = new FlvReader().push(flv);
  for (const file of [flv, baseline]) {
    const { avcC, asc } = sequenceHeaders(file);
    avcCs.push(avcC);
    spss.push(...parseAvcC(avcC).sps);
    ascs.push(asc);
  }
  ascs.push(
    buildAudioSpecificConfig({ objectType: 5, sampleRate: 24000, channels: 1 }),
    buildAudioSpecificConfig({ objectType: 42, sampleRate: 12345, channels: 8 }),
  );
  avcCs = avcCs.map((a) => a.slice());
  spss = spss.map((s) => s.slice());
});

describe('fuzz: AMF0', () => {
  function seeds(): Uint8Array[] {
    const meta = tags.find((t) => t.type === FlvTagType.Script)!.data;
    return [
      meta.slice(),
      encodeAmf0([
        'connect', 1,
        { app: 'live', type: 'nonprivate', flashVer: 'FMLE/3.0', tcUrl: 'rtmp://127.0.0.1/live', fpad: false, capabilities: 15, fourCcList: ['avc1', 'mp4a'] },
      ]),
      encodeAmf0(['_result', 1, { fmsVer: 'FMS/3,0,1,123' }, { level: 'status', code: 'NetConnection.Connect.Success', objectEncoding: 0 }]),
      encodeAmf0(['onStatus', 0, null, { level: 'status', code: 'NetStream.Publish.Start', description: 'x'.repeat(300) }]),
      encodeAmf0(['@setDataFrame', 'onMetaData', new Amf0EcmaArray({ width: 1280, height: 720, encoder: 'onair', stereo: true })]),
      encodeAmf0([new Date(1_700_000_000_000), [1, [2, [3, { deep: [undefined, null] }]]], 'é€😀', -0, Number.NaN]),
    ];
  }

  /** Values plus decoded string length: every unit of it costs at least one input byte. */
  function weight(v: Amf0Value): number {
    if (typeof v === 'string') return 1 + v.length;
    if (Array.isArray(v)) return 1 + v.reduce<number>((n, x) => n + weight(x), 0);
    if (v instanceof Amf0EcmaArray) return 1 + Object.entries(v.entries).reduce((n, [k, x]) => n + k.length + weight(x), 0);
    if (v !== null && typeof v === 'object' && !(v instanceof Date)) {
      return 1 + Object.entries(v).reduce((n, [k, x]) => n + k.length + weight(x), 0);
    }
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

  it('decodeAmf0 returns or throws OnairError, bounded by its input, and re-encodes stably', () => {
    const inputs = seeds();
    for (const s of inputs) expect(decodeAmf0(s).length).toBeGreaterThan(0);
    const rng = new Rng(0xa3f0, SEED_SALT);
    let decoded = 0;
    for (let c = 0; c < CASES; c++) {
      const input = mutate(rng, rng.pick(inputs), inputs);
      const values = attempt('decodeAmf0', input, () => decodeAmf0(input));
      if (values instanceof OnairError) continue;
      decoded++;
      const w = values.reduce<number>((n, v) => n + weight(v), 0);
      if (w > input.length) throw new Error(`decodeAmf0 output weight ${w} > ${input.length} input bytes: ${hexOf(input)}`);
      const again = attempt('decodeAmf0 of re-encoded', input, () => decodeAmf0(encodeAmf0(values)));
      if (again instanceof OnairError) throw new Error(`re-encoded values do not decode (${again.message}): ${hexOf(input)}`);
      expect(comparable(again), hexOf(input)).toEqual(comparable(values));
    }
    // The fuzzer must reach past the first byte: a decoder that threw on everything would pass.
    expect(decoded).toBeGreaterThan(CASES / 10);
  });

  it('parseScriptBody returns a name or throws OnairError', () => {
    const inputs = seeds();
    const rng = new Rng(0x5c12, SEED_SALT);
    for (let c = 0; c < CASES; c++) {
      const input = mutate(rng, rng.pick(inputs), inputs);
      const out = attempt('parseScriptBody', input, () => parseScriptBody(input));
      if (!(out instanceof OnairError)) expect(typeof out.name).toBe('string');
    }
  });
});

describe('fuzz: FLV', () => {
  interface Run {
    tags: string[];
    error: string | undefined;
    maxBuffered: number;
  }

  function run(chunks: readonly Uint8Array[], options: FlvReaderOptions): Run {
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

  for (const headerless of [false, true]) {
    it(`FlvReader${headerless ? ' (headerless)' : ''}: OnairError only, same result whole, split and byte by byte`, () => {
      const start = FLV_HEADER_SIZE + FLV_PREVIOUS_TAG_SIZE;
      const seed = headerless ? flv.slice(start) : flv;
      const hints = lengthFields(seed, headerless ? 0 : start);
      if (!headerless) hints.push(5, 9); // DataOffset, PreviousTagSize0
      const clean = run([seed], { headerless });
      expect(clean.error).toBeUndefined();
      expect(clean.tags.length).toBe(tags.length);

      const rng = new Rng(headerless ? 0xf1b2 : 0xf1b1, SEED_SALT);
      const cases = CASES / 5;
      for (let c = 0; c < cases; c++) {
        const input = mutate(rng, seed, [seed, flv], hints);
        // A quarter of the cases with a small tag size limit, to reach FLV_TOO_LARGE.
        const options: FlvReaderOptions = rng.int(4) ? { headerless } : { headerless, maxTagSize: rng.int(4096) };
        let whole: Run | undefined;
        const grown = arrayBufferGrowth(() => {
          whole = attempt('FlvReader', input, () => run([input], options)) as Run;
        });
        // The reader keeps views or one copy of each split unit: a few times the input at most.
        if (grown > 4 * input.length + (1 << 20)) throw new Error(`FlvReader allocated ${grown} bytes for ${input.length}: ${hexOf(input)}`);
        const split = attempt('FlvReader split', input, () => run(pieces(input, cuts(rng, input.length)), options)) as Run;
        const single = attempt('FlvReader byte by byte', input, () => run(pieces(input, Array.from(input.keys())), options)) as Run;
        for (const r of [whole!, split, single]) {
          if (r.maxBuffered > input.length) throw new Error(`FlvReader buffered ${r.maxBuffered} of ${input.length} bytes: ${hexOf(input)}`);
        }
        // A throw from push loses what that push parsed, so a run that failed holds a prefix.
        expect({ error: split.error, single: single.error }, hexOf(input)).toEqual({ error: whole!.error, single: whole!.error });
        expect(single.tags.slice(0, split.tags.length), hexOf(input)).toEqual(split.tags);
        expect(single.tags.slice(0, whole!.tags.length), hexOf(input)).toEqual(whole!.tags);
        if (!whole!.error) expect(whole!.tags).toEqual(single.tags);
      }
    });
  }

  it('parseFlvTag: OnairError only, and agrees with FlvReader on the same bytes', () => {
    const seeds = tags.map((t) => {
      const b = new Uint8Array(FLV_TAG_HEADER_SIZE + t.data.length + FLV_PREVIOUS_TAG_SIZE);
      b[0] = t.type;
      b[1] = t.data.length >>> 16;
      b[2] = (t.data.length >>> 8) & 0xff;
      b[3] = t.data.length & 0xff;
      b[6] = t.timestamp & 0xff;
      b[5] = (t.timestamp >>> 8) & 0xff;
      b[4] = (t.timestamp >>> 16) & 0xff;
      b[7] = t.timestamp >>> 24;
      b.set(t.data, FLV_TAG_HEADER_SIZE);
      new DataView(b.buffer).setUint32(b.length - 4, FLV_TAG_HEADER_SIZE + t.data.length);
      return b;
    });
    for (const s of seeds) expect(parseFlvTag(s).data.length).toBe(s.length - 15);
    const rng = new Rng(0x7a90, SEED_SALT);
    for (let c = 0; c < CASES; c++) {
      const seed = rng.pick(seeds);
      const input = mutate(rng, seed, seeds, [1, seed.length - 4]);
      const tag = attempt('parseFlvTag', input, () => parseFlvTag(input));
      const viaReader = attempt('FlvReader', input, () => {
        const r = new FlvReader({ headerless: true });
        const got = r.push(input);
        r.end();
        return got;
      });
      if (tag instanceof OnairError) continue;
      expect(tag.data.length, hexOf(input)).toBe(input.length - FLV_TAG_HEADER_SIZE - FLV_PREVIOUS_TAG_SIZE);
      expect(viaReader instanceof OnairError ? viaReader.message : viaReader.length, hexOf(input)).toBe(1);
    }
  });

  it('parseVideoBody and parseAudioBody: OnairError only, data a view inside the body', () => {
    const video = tags.filter((t) => t.type === FlvTagType.Video).map((t) => t.data.slice());
    const audio = tags.filter((t) => t.type === FlvTagType.Audio).map((t) => t.data.slice());
    // Enhanced RTMP headers: hvc1 coded frames (with cts), av01 sequence start, Opus audio.
    video.push(Uint8Array.of(0x91, 0x68, 0x76, 0x63, 0x31, 0xff, 0xff, 0xfe, 0, 0, 0, 1, 0x26), Uint8Array.of(0x90, 0x61, 0x76, 0x30, 0x31, 0x81, 0x08));
    audio.push(Uint8Array.of(0x90, 0x4f, 0x70, 0x75, 0x73, 0x4f, 0x70, 0x75, 0x73));
    const all = [...video, ...audio];
    const rng = new Rng(0xb0d1, SEED_SALT);
    for (let c = 0; c < CASES; c++) {
      const input = mutate(rng, rng.pick(all), all);
      for (const [what, parse] of [['parseVideoBody', parseVideoBody], ['parseAudioBody', parseAudioBody]] as const) {
        const body = attempt(what, input, () => parse(input));
        if (body instanceof OnairError) continue;
        const { data } = body;
        const inside = data.buffer === input.buffer && data.byteOffset >= input.byteOffset && data.byteOffset + data.length <= input.byteOffset + input.length;
        if (!inside) throw new Error(`${what} data is not a view inside its body: ${hexOf(input)}`);
        expect(Number.isInteger(body.packetType ?? 0) && (body.fourcc ?? 'abcd').length === 4, hexOf(input)).toBe(true);
      }
    }
  });
});

describe('fuzz: codec configuration', () => {
  it('parseAvcC: OnairError only, NAL units inside the record, parseSps on what it returns', () => {
    const rng = new Rng(0xacc0, SEED_SALT);
    for (let c = 0; c < CASES; c++) {
      const input = mutate(rng, rng.pick(avcCs), avcCs, [5, 6, 7]);
      const cfg = attempt('parseAvcC', input, () => parseAvcC(input));
      if (cfg instanceof OnairError) continue;
      expect([1, 2, 4], hexOf(input)).toContain(cfg.lengthSize);
      const held = [...cfg.sps, ...cfg.pps].reduce((n, nal) => n + 2 + nal.length, 0);
      if (held > input.length) throw new Error(`parseAvcC returned ${held} bytes of NAL units from ${input.length}: ${hexOf(input)}`);
      for (const sps of cfg.sps) attempt('parseSps of avcC', input, () => parseSps(sps));
    }
  });

  it('parseSps: OnairError only, sizes that fit an avc1 sample entry', () => {
    const rng = new Rng(0x5b5, SEED_SALT);
    let parsed = 0;
    for (let c = 0; c < CASES; c++) {
      const input = mutate(rng, rng.pick(spss), spss);
      const sps = attempt('parseSps', input, () => parseSps(input));
      if (sps instanceof OnairError) continue;
      parsed++;
      // avc1 width/height are u16 (ISO/IEC 14496-12 VisualSampleEntry); avcC bit depths 3 bits.
      const fits =
        Number.isInteger(sps.width) && sps.width > 0 && sps.width <= 0xffff &&
        Number.isInteger(sps.height) && sps.height > 0 && sps.height <= 0xffff &&
        sps.bitDepthLuma >= 8 && sps.bitDepthLuma <= 14 && sps.bitDepthChroma >= 8 && sps.bitDepthChroma <= 14 &&
        sps.sarWidth >= 0 && sps.sarHeight >= 0;
      if (!fits) throw new Error(`parseSps accepted ${JSON.stringify(sps)} from: ${hexOf(input)}`);
    }
    expect(parsed).toBeGreaterThan(CASES / 20);
  });

  it('parseAudioSpecificConfig: OnairError only, a usable rate and channel count', () => {
    const rng = new Rng(0xa5c, SEED_SALT);
    for (let c = 0; c < CASES; c++) {
      const input = mutate(rng, rng.pick(ascs), ascs);
      const asc = attempt('parseAudioSpecificConfig', input, () => parseAudioSpecificConfig(input));
      if (asc instanceof OnairError) continue;
      const ok = asc.sampleRate >= 1 && asc.sampleRate <= 0xffffff && asc.channels >= 0 && asc.channels <= 8 && asc.objectType >= 1;
      if (!ok) throw new Error(`parseAudioSpecificConfig accepted ${JSON.stringify(asc)} from: ${hexOf(input)}`);
    }
  });
});

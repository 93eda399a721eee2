import { beforeAll, describe, expect, it } from 'vitest';
import { BitWriter } from '../bytes/bitstream.js';
import { OnairError } from '../errors.js';
import { addEmulationPrevention, cat } from '../testing/bytes.js';
import { Rng, mutate } from '../testing/fuzz.js';
import { FUZZ_TIMEOUT_MS, attempt, expectSame, fuzz, fuzzFailure } from '../testing/fuzz-run.js';
import { mediaSeeds } from '../testing/media-seeds.js';
import { buildAudioSpecificConfig, parseAudioSpecificConfig } from './aac.js';
import { VIDEO_RECIPES, videoSeed, type VideoSeedName } from '../testing/video-seeds.js';
import { av1CodecString, av1SequenceHeaderOf, parseAv1C, splitObus } from './av1.js';
import { avcCodecString, parseAvcC, parseSps } from './avc.js';
import { hevcCodecString, hevcSizeOf, parseHvcC } from './hevc.js';

// Seeded fuzzing of the codec configuration parsers, which read what any RTMP server or page
// sends (avcC, SPS, AudioSpecificConfig): mutations of what libx264 and ffmpeg's AAC encoder
// wrote, records built field by field with hostile counts and lengths, SPS bit fields written
// with Exp-Golomb values from plausible to absurd, and every two-byte AudioSpecificConfig.
// Properties: the result or an OnairError of the parser's own code, quickly, and values that fit
// where they go (an avc1 sample entry, an esds, a codec string).

let avcCs: Uint8Array[] = [];
let spss: Uint8Array[] = [];
let ascs: Uint8Array[] = [];

beforeAll(() => {
  ({ avcCs, sps: spss, ascs } = mediaSeeds());
});

/** ue(v) (H.264 §9.1): leading zeros, then value + 1 in binary. */
function ue(w: BitWriter, v: number): void {
  const bits = Math.floor(Math.log2(v + 1)) + 1;
  w.bits(bits - 1, 0);
  w.bits(bits, v + 1);
}

function se(w: BitWriter, v: number): void {
  ue(w, v > 0 ? 2 * v - 1 : -2 * v);
}

interface SpsFields {
  profileIdc: number;
  levelIdc: number;
  spsId: number;
  chromaFormatIdc: number;
  bitDepthLuma: number;
  bitDepthChroma: number;
  frameMbsOnly: boolean;
  widthMbs: number;
  heightMapUnits: number;
  crop: [number, number, number, number];
  sar: [number, number] | undefined;
  timing: [number, number] | undefined;
}

const HIGH = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135, 144];

/**
 * An SPS written field by field (H.264 §7.3.2.1.1). Most fields are plausible; with `hostile`,
 * any of them may be out of range or absurd. Returns the NAL unit and what it says.
 */
function buildSps(rng: Rng, hostile: boolean): { nal: Uint8Array; fields: SpsFields } {
  const wild = (plausible: number, absurd: () => number): number => (hostile && rng.oneIn(6) ? absurd() : plausible);
  const w = new BitWriter(4096);
  const profileIdc = rng.oneIn(2) ? rng.pick(HIGH) : rng.pick([66, 77, 88, rng.int(256)]);
  const levelIdc = rng.pick([10, 31, 40, 51, 62, rng.int(256)]);
  w.bits(8, 0x67).bits(8, profileIdc).bits(8, rng.int(256)).bits(8, levelIdc);
  const spsId = wild(rng.int(32), () => rng.pick([32, 2 ** 31, 2 ** 32 - 2]));
  ue(w, spsId);
  let chromaFormatIdc = 1;
  let bitDepthLuma = 8;
  let bitDepthChroma = 8;
  if (HIGH.includes(profileIdc)) {
    chromaFormatIdc = wild(rng.int(4), () => 4 + rng.int(1000));
    ue(w, chromaFormatIdc);
    if (chromaFormatIdc === 3) w.bits(1, rng.int(2));
    bitDepthLuma = 8 + wild(rng.int(7), () => 7 + rng.int(100));
    bitDepthChroma = 8 + wild(rng.int(7), () => 7 + rng.int(100));
    ue(w, bitDepthLuma - 8);
    ue(w, bitDepthChroma - 8);
    w.bits(1, rng.int(2));
    const scaling = rng.oneIn(3);
    w.bits(1, scaling ? 1 : 0);
    if (scaling) {
      for (let i = 0; i < (chromaFormatIdc !== 3 ? 8 : 12); i++) {
        const present = rng.oneIn(2);
        w.bits(1, present ? 1 : 0);
        if (!present) continue;
        // delta_scale values until nextScale reaches 0, which ends the list (§7.3.2.1.1.1).
        let last = 8;
        let next = 8;
        for (let j = 0; j < (i < 6 ? 16 : 64) && next !== 0; j++) {
          const delta = rng.oneIn(40) ? -last : rng.int(9) - 4;
          se(w, delta);
          next = (last + delta + 256) % 256;
          if (next !== 0) last = next;
        }
      }
    }
  }
  ue(w, wild(rng.int(13), () => 2 ** 20));
  const pocType = wild(rng.int(3), () => 3 + rng.int(50));
  ue(w, pocType);
  if (pocType === 0) ue(w, rng.int(13));
  else if (pocType === 1) {
    w.bits(1, rng.int(2));
    se(w, rng.int(200) - 100);
    se(w, rng.int(200) - 100);
    const cycle = wild(rng.int(8), () => 256 + rng.int(10_000));
    ue(w, cycle);
    for (let i = 0; i < Math.min(cycle, 300); i++) se(w, rng.int(20) - 10);
  }
  ue(w, wild(rng.int(17), () => 17 + rng.int(1000)));
  w.bits(1, rng.int(2));
  const widthMbs = wild(1 + rng.int(rng.oneIn(4) ? 1056 : 120), () => rng.pick([1057, 2 ** 31, 2 ** 32 - 1]));
  const frameMbsOnly = !rng.oneIn(4);
  const heightMapUnits = wild(1 + rng.int(frameMbsOnly ? 120 : 60), () => rng.pick([529, 1057, 2 ** 31, 2 ** 32 - 1]));
  ue(w, widthMbs - 1);
  ue(w, heightMapUnits - 1);
  w.bits(1, frameMbsOnly ? 1 : 0);
  if (!frameMbsOnly) w.bits(1, rng.int(2));
  w.bits(1, rng.int(2));
  const crop: [number, number, number, number] = [0, 0, 0, 0];
  const cropping = rng.oneIn(3);
  w.bits(1, cropping ? 1 : 0);
  if (cropping) {
    for (let i = 0; i < 4; i++) {
      crop[i] = wild(rng.int(4), () => rng.pick([widthMbs * 8, heightMapUnits * 16, 2 ** 31]));
      ue(w, crop[i]!);
    }
  }
  let sar: [number, number] | undefined;
  let timing: [number, number] | undefined;
  const vui = rng.oneIn(2);
  w.bits(1, vui ? 1 : 0);
  if (vui) {
    const aspect = rng.oneIn(2);
    w.bits(1, aspect ? 1 : 0);
    if (aspect) {
      const idc = rng.pick([1, 13, 16, 17, 254, 255]);
      w.bits(8, idc);
      if (idc === 255) {
        sar = [rng.int(65536), rng.int(65536)];
        w.bits(16, sar[0]).bits(16, sar[1]);
      }
    }
    w.bits(1, 0); // overscan_info_present_flag
    w.bits(1, 0); // video_signal_type_present_flag
    w.bits(1, 0); // chroma_loc_info_present_flag
    const timed = rng.oneIn(2);
    w.bits(1, timed ? 1 : 0);
    if (timed) {
      timing = [rng.next(), rng.next()];
      w.bits(32, timing[0]).bits(32, timing[1]).bits(1, 1);
    }
    w.bits(1, 0); // nal_hrd_parameters_present_flag and the rest: zeros
  }
  w.bits(1, 1); // rbsp_stop_one_bit
  return {
    nal: addEmulationPrevention(w.finish()),
    fields: { profileIdc, levelIdc, spsId, chromaFormatIdc, bitDepthLuma, bitDepthChroma, frameMbsOnly, widthMbs, heightMapUnits, crop, sar, timing },
  };
}

/** An avcC built field by field, with counts and lengths that fit or lie. */
function buildAvcC(rng: Rng): Uint8Array {
  const nals = (n: number): number[] => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const nal = rng.oneIn(2) ? rng.pick(spss) : rng.bytes(rng.int(12));
      const len = rng.int(5) ? nal.length : rng.pick([0, 0xffff, nal.length + 1]);
      out.push(len >> 8, len & 0xff, ...nal);
    }
    return out;
  };
  const spsCount = rng.int(5) ? 1 : rng.int(32);
  const ppsCount = rng.int(5) ? 1 : rng.pick([0, 2, 255]);
  const head = [rng.int(8) ? 1 : rng.int(256), 100, 0, 31, 0xfc | rng.int(4), 0xe0 | spsCount];
  return cat(Uint8Array.from(head), Uint8Array.from(nals(spsCount)), Uint8Array.of(ppsCount), Uint8Array.from(nals(ppsCount)), rng.bytes(rng.int(4) ? 0 : 4));
}

function checkSps(input: Uint8Array, sps: ReturnType<typeof parseSps>): void {
  // avc1 width/height are u16 (ISO/IEC 14496-12 VisualSampleEntry); avcC bit depths 3 bits.
  const fits =
    Number.isInteger(sps.width) && sps.width > 0 && sps.width <= 0xffff &&
    Number.isInteger(sps.height) && sps.height > 0 && sps.height <= 0xffff &&
    sps.width <= sps.codedWidth && sps.height <= sps.codedHeight &&
    sps.bitDepthLuma >= 8 && sps.bitDepthLuma <= 14 && sps.bitDepthChroma >= 8 && sps.bitDepthChroma <= 14 &&
    sps.sarWidth >= 0 && sps.sarHeight >= 0 && sps.spsId <= 31 && sps.maxNumRefFrames <= 16;
  if (!fits) throw fuzzFailure(`parseSps accepted ${JSON.stringify(sps)}`, input);
}

describe('fuzz: codec configuration', () => {
  it('parseAvcC: OnairError only, NAL units inside the record, parseSps on what it returns', { timeout: FUZZ_TIMEOUT_MS }, () => {
    let parsed = 0;
    const run = fuzz('AVC parseAvcC', 0xacc0, (rng) => {
      const input = rng.oneIn(3) ? buildAvcC(rng) : mutate(rng, rng.pick(avcCs), avcCs, [5, 6, 7]);
      const cfg = attempt('parseAvcC', input, () => parseAvcC(input));
      if (cfg instanceof OnairError) {
        if (cfg.code !== 'AVC_MALFORMED') throw fuzzFailure(`parseAvcC threw ${cfg.code}`, input);
        return;
      }
      parsed++;
      expectSame('avcC NAL length size', input, [1, 2, 4].includes(cfg.lengthSize), true);
      const held = [...cfg.sps, ...cfg.pps].reduce((n, nal) => n + 2 + nal.length, 0);
      if (held > input.length) throw fuzzFailure(`parseAvcC returned ${held} bytes of NAL units from ${input.length}`, input);
      expectSame('codec string', input, /^avc1\.[0-9A-F]{6}$/.test(avcCodecString(cfg)), true);
      for (const sps of cfg.sps) {
        const s = attempt('parseSps of avcC', input, () => parseSps(sps));
        if (!(s instanceof OnairError)) checkSps(input, s);
      }
    });
    expect(parsed).toBeGreaterThan(run.cases / 10);
  });

  it('parseSps: OnairError only, sizes that fit an avc1 sample entry, the fields written read back', { timeout: FUZZ_TIMEOUT_MS }, () => {
    let parsed = 0;
    let exact = 0;
    const run = fuzz('AVC parseSps', 0x5b5, (rng) => {
      const kind = rng.int(4);
      const built = kind <= 1 ? buildSps(rng, kind === 1) : undefined;
      const input = built?.nal ?? mutate(rng, rng.pick(spss), spss);
      const sps = attempt('parseSps', input, () => parseSps(input));
      if (sps instanceof OnairError) {
        if (sps.code !== 'AVC_MALFORMED') throw fuzzFailure(`parseSps threw ${sps.code}`, input);
        if (kind === 0) throw fuzzFailure(`parseSps refused a plausible SPS (${sps.message}) of ${JSON.stringify(built!.fields)}`, input);
        return;
      }
      parsed++;
      checkSps(input, sps);
      if (kind !== 0 || built === undefined) return;
      // Every field written is read back; the picture size follows H.264 equations 7-19 to 7-22.
      const f = built.fields;
      const fieldFactor = f.frameMbsOnly ? 1 : 2;
      const subW = f.chromaFormatIdc === 3 ? 1 : 2;
      const subH = f.chromaFormatIdc === 1 ? 2 : 1;
      const mono = f.chromaFormatIdc === 0;
      const [left, right, top, bottom] = f.crop;
      const width = f.widthMbs * 16 - (mono ? 1 : subW) * (left + right);
      const height = f.heightMapUnits * fieldFactor * 16 - (mono ? 1 : subH) * fieldFactor * (top + bottom);
      const got = {
        profileIdc: sps.profileIdc, levelIdc: sps.levelIdc, spsId: sps.spsId, chromaFormatIdc: sps.chromaFormatIdc,
        bitDepthLuma: sps.bitDepthLuma, bitDepthChroma: sps.bitDepthChroma, frameMbsOnly: sps.frameMbsOnly,
        width: sps.width, height: sps.height, sar: f.sar && [sps.sarWidth, sps.sarHeight],
        timing: f.timing && sps.timing && [sps.timing.numUnitsInTick, sps.timing.timeScale],
      };
      expectSame('parseSps fields', input, got, {
        profileIdc: f.profileIdc, levelIdc: f.levelIdc, spsId: f.spsId, chromaFormatIdc: f.chromaFormatIdc,
        bitDepthLuma: f.bitDepthLuma, bitDepthChroma: f.bitDepthChroma, frameMbsOnly: f.frameMbsOnly,
        width, height, sar: f.sar, timing: f.timing,
      });
      exact++;
    });
    expect(parsed).toBeGreaterThan(run.cases / 10);
    expect(exact).toBeGreaterThan(run.cases / 8);
  });

  it('parseAudioSpecificConfig: every two-byte config, then mutations; usable values that build back', { timeout: FUZZ_TIMEOUT_MS }, () => {
    const check = (input: Uint8Array): void => {
      const asc = attempt('parseAudioSpecificConfig', input, () => parseAudioSpecificConfig(input));
      if (asc instanceof OnairError) {
        if (asc.code !== 'AAC_MALFORMED') throw fuzzFailure(`parseAudioSpecificConfig threw ${asc.code}`, input);
        return;
      }
      const ok = asc.sampleRate >= 1 && asc.sampleRate <= 0xffffff && asc.channels >= 0 && asc.channels <= 8 && asc.channels !== 7 && asc.objectType >= 1 && asc.objectType <= 95;
      if (!ok) throw fuzzFailure(`parseAudioSpecificConfig accepted ${JSON.stringify(asc)}`, input);
      if (asc.channels === 0) return; // the layout is in a program_config_element: nothing to build
      const again = parseAudioSpecificConfig(buildAudioSpecificConfig(asc));
      expectSame('AudioSpecificConfig rebuilt', input, [again.objectType, again.sampleRate, again.channels], [asc.objectType, asc.sampleRate, asc.channels]);
    };
    for (let v = 0; v < 0x10000; v++) check(Uint8Array.of(v >> 8, v & 0xff));
    fuzz('AAC parseAudioSpecificConfig', 0xa5c, (rng) => {
      check(rng.oneIn(2) ? rng.bytes(rng.int(8)) : mutate(rng, rng.pick(ascs), ascs));
    });
  });

  it('parseAv1C, parseHvcC and what follows them: their own OnairError only, sizes an entry holds', { timeout: FUZZ_TIMEOUT_MS }, () => {
    // Seeds: the records libaom and libx265 wrote, and the OBUs of an AV1 temporal unit.
    const seeds = (Object.keys(VIDEO_RECIPES) as VideoSeedName[]).map(videoSeed);
    const av1Cs = seeds.filter((s) => s.fourcc === 'av01').map((s) => s.config);
    const hvcCs = seeds.filter((s) => s.fourcc === 'hvc1').map((s) => s.config);
    const units = seeds.filter((s) => s.fourcc === 'av01').flatMap((s) => s.frames.slice(0, 3).map((f) => f.data.subarray(0, 256)));
    let parsed = 0;
    const run = fuzz('AV1/HEVC configuration records', 0xe27, (rng) => {
      const which = rng.int(3);
      const pool = which === 0 ? av1Cs : which === 1 ? hvcCs : units;
      const input = mutate(rng, rng.pick(pool), pool);
      const own = which === 1 ? 'HEVC_MALFORMED' : 'AV1_MALFORMED';
      const result = attempt('parse', input, () => {
        if (which === 0) {
          const c = parseAv1C(input);
          const seq = av1SequenceHeaderOf(c);
          return [av1CodecString(c), seq?.width ?? 1, seq?.height ?? 1] as const;
        }
        if (which === 1) {
          const c = parseHvcC(input);
          const codec = hevcCodecString(c);
          const { width, height } = hevcSizeOf(c);
          return [codec, width, height] as const;
        }
        return ['', splitObus(input).length + 1, 1] as const;
      });
      if (result instanceof OnairError) {
        if (result.code !== own) throw fuzzFailure(`threw ${result.code}, not ${own}`, input);
        return;
      }
      parsed++;
      const [codec, width, height] = result;
      if (which === 0) expectSame('av01 codec string', input, /^av01\.[0-7]\.\d\d[MH]\.(08|10|12)$/.test(codec), true);
      if (which === 1) expectSame('hvc1 codec string', input, /^hvc1\.[ABC]?\d+\.[0-9A-F]+\.[LH]\d+(\.[0-9A-F]{1,2}){0,6}$/.test(codec), true);
      expectSame('size fits a visual sample entry', input, Number.isInteger(width) && Number.isInteger(height) && width >= 1 && height >= 1 && width <= 0xffff && height <= 0xffff, true);
    });
    expect(parsed).toBeGreaterThan(run.cases / 10);
  });
});

import { describe, expect, it } from 'vitest';
import { BitWriter } from '../bytes/bitstream.js';
import { addEmulationPrevention, cat, errorCode as code, h } from '../testing/bytes.js';
import { VIDEO_RECIPES, videoSeed, type VideoSeedName } from '../testing/video-seeds.js';
import { av1CodecString, av1SequenceHeaderOf, parseAv1C, parseAv1SequenceHeader, splitObus, withoutTemporalDelimiter } from './av1.js';
import { hevcCodecString, hevcSizeOf, parseHevcSps, parseHvcC } from './hevc.js';

const seedNames = Object.keys(VIDEO_RECIPES) as VideoSeedName[];

describe('AV1 and HEVC configuration records from real encoders (libaom, libx265)', () => {
  it.each(seedNames)('%s: the codec string mp4box reads from the same file, the size ffprobe reports', (name) => {
    const seed = videoSeed(name);
    if (seed.fourcc === 'av01') {
      const config = parseAv1C(seed.config);
      expect(av1CodecString(config)).toBe(seed.codec);
      expect(av1SequenceHeaderOf(config)).toMatchObject({ width: seed.width, height: seed.height });
    } else {
      const config = parseHvcC(seed.config);
      // RFC 6381 hex is case-insensitive; mp4box writes lower case.
      expect(hevcCodecString(config).toLowerCase()).toBe(seed.codec.toLowerCase());
      expect(hevcSizeOf(config)).toEqual({ width: seed.width, height: seed.height });
    }
  });

  it('reads 10-bit and 4:4:4 profiles from what the encoders wrote', () => {
    expect(av1CodecString(videoSeed('av1_10bit').config)).toMatch(/^av01\.0\.\d\dM\.10$/);
    // Range extensions profile (4) for 4:4:4 10-bit.
    expect(hevcCodecString(videoSeed('hevc_444_10bit').config)).toMatch(/^hvc1\.4\./);
    expect(hevcCodecString(videoSeed('hevc').config)).toMatch(/^hvc1\.1\.6\.L\d+\./);
  });

  it('every sample splits into OBUs, none of them a temporal delimiter in MP4', () => {
    for (const f of videoSeed('av1').frames) {
      const obus = splitObus(f.data);
      expect(obus.length).toBeGreaterThan(0);
      expect(obus.some((o) => o.type === 2)).toBe(false);
      expect(withoutTemporalDelimiter(f.data)).toBe(f.data);
    }
  });
});

describe('AV1 records built by hand (AV1 ISOBMFF binding §2.3, AV1 spec §5.5)', () => {
  /** A sequence header OBU with a size field around `payload`. */
  const obu = (type: number, payload: Uint8Array): Uint8Array => cat(Uint8Array.of((type << 3) | 0x02, payload.length), payload);

  it('av1C fields to codec strings: profile, level, tier, bit depth', () => {
    // profile 2, level 19, tier High, high_bitdepth + twelve_bit.
    expect(av1CodecString(h('81 53 e0 00'))).toBe('av01.2.19H.12');
    // profile 0, level 8, Main, 10-bit.
    expect(av1CodecString(h('81 08 40 00'))).toBe('av01.0.08M.10');
    // profile 1, level 4, Main, 8-bit.
    expect(av1CodecString(h('81 24 00 00'))).toBe('av01.1.04M.08');
    expect(code(() => parseAv1C(h('01 00 00 00')))).toBe('AV1_MALFORMED');
    expect(code(() => parseAv1C(h('81 00')))).toBe('AV1_MALFORMED');
  });

  it('a reduced still picture header and a full one with timing and decoder model info', () => {
    // seq_profile 0, still 1, reduced 1, level 5 bits, then 4+4 size bit counts and the sizes.
    const reduced = new BitWriter(8).bits(3, 0).bits(1, 1).bits(1, 1).bits(5, 4).bits(4, 10).bits(4, 9).bits(11, 1279).bits(10, 719).finish();
    expect(parseAv1SequenceHeader(reduced)).toEqual({ profile: 0, width: 1280, height: 720 });
    const full = new BitWriter(32)
      .bits(3, 1).bits(1, 0).bits(1, 0) // profile 1, not still, not reduced
      .bits(1, 1).bits(32, 1).bits(32, 30).bits(1, 1).bits(3, 0b010) // timing_info, uvlc(1) = 010
      .bits(1, 1).bits(5, 9).bits(32, 1).bits(5, 4).bits(5, 4) // decoder_model_info: buffer delay length 10
      .bits(1, 1).bits(5, 1) // initial_display_delay_present, two operating points
      .bits(12, 0).bits(5, 9).bits(1, 1).bits(1, 1).bits(10, 5).bits(10, 6).bits(1, 0).bits(1, 1).bits(4, 3) // op 0: tier, model, delay
      .bits(12, 1).bits(5, 4).bits(1, 0).bits(1, 0) // op 1: level 4, no model, no delay
      .bits(4, 11).bits(4, 10).bits(12, 1919).bits(11, 1079)
      .finish();
    expect(parseAv1SequenceHeader(full)).toEqual({ profile: 1, width: 1920, height: 1080 });
    const config = parseAv1C(cat(h('81 20 00 00'), obu(2, new Uint8Array(0)), obu(1, reduced)));
    expect(av1SequenceHeaderOf(config)).toEqual({ profile: 0, width: 1280, height: 720 });
    expect(av1SequenceHeaderOf(parseAv1C(h('81 20 00 00')))).toBeUndefined();
    expect(code(() => parseAv1SequenceHeader(reduced.subarray(0, 3)))).toBe('AV1_MALFORMED');
  });

  it('splits OBUs with leb128 sizes and refuses what is not a low-overhead bitstream', () => {
    const big = new Uint8Array(200).fill(7);
    const unit = cat(h('12 00'), h('32 c8 01'), big, h('0a 01 aa'));
    const obus = splitObus(unit);
    expect(obus.map((o) => [o.type, o.payload.length])).toEqual([[2, 0], [6, 200], [1, 1]]);
    expect(withoutTemporalDelimiter(unit)).toEqual(unit.subarray(2));
    expect(withoutTemporalDelimiter(cat(h('12 00 12 00'), h('0a 00')))).toEqual(h('0a 00'));
    expect(code(() => splitObus(h('08 00')))).toBe('AV1_MALFORMED'); // no obu_has_size_field
    expect(code(() => splitObus(h('8a 00')))).toBe('AV1_MALFORMED'); // forbidden bit
    expect(code(() => splitObus(h('0a 05 00')))).toBe('AV1_MALFORMED'); // size past the end
    expect(code(() => splitObus(h('0a ff ff')))).toBe('AV1_MALFORMED'); // size never ends
  });
});

describe('HEVC records built by hand (ISO/IEC 14496-15 §8.3.3, H.265 §7.3.2.2)', () => {
  /** An SPS: header 42 01, then the fields up to the conformance window, emulation prevention added. */
  function sps(opts: { subLayers: number; chroma: number; width: number; height: number; crop?: readonly [number, number, number, number] }): Uint8Array {
    const w = new BitWriter(128);
    const ue = (v: number): void => {
      const bits = Math.floor(Math.log2(v + 1));
      w.bits(bits, 0).bits(bits + 1, v + 1);
    };
    w.bits(4, 0).bits(3, opts.subLayers - 1).bits(1, 1);
    // profile_tier_level: general part all zero (96 bits), sub-layer flags: profile and level present.
    w.bits(32, 0).bits(32, 0).bits(32, 0);
    for (let i = 0; i < opts.subLayers - 1; i++) w.bits(2, 0b11);
    if (opts.subLayers > 1) w.bits(2 * (9 - opts.subLayers), 0);
    for (let i = 0; i < opts.subLayers - 1; i++) w.bits(32, 0).bits(32, 0).bits(24, 0).bits(8, 0);
    ue(0);
    ue(opts.chroma);
    if (opts.chroma === 3) w.bits(1, 0);
    ue(opts.width);
    ue(opts.height);
    w.bits(1, opts.crop === undefined ? 0 : 1);
    for (const c of opts.crop ?? []) ue(c);
    w.bits(1, 1); // something after, so trailing zeros are not the end of the reads
    // The NAL header (SPS), then the payload with its emulation prevention bytes.
    return cat(Uint8Array.of(0x42, 0x01), addEmulationPrevention(w.finish()));
  }

  it('picture size after the conformance window, with sub-layers in profile_tier_level', () => {
    expect(parseHevcSps(sps({ subLayers: 1, chroma: 1, width: 1920, height: 1088, crop: [0, 0, 0, 4] }))).toEqual({ width: 1920, height: 1080 });
    expect(parseHevcSps(sps({ subLayers: 3, chroma: 1, width: 176, height: 104, crop: [0, 3, 0, 3] }))).toEqual({ width: 170, height: 98 });
    expect(parseHevcSps(sps({ subLayers: 7, chroma: 3, width: 64, height: 48, crop: [1, 1, 1, 1] }))).toEqual({ width: 62, height: 46 });
    expect(parseHevcSps(sps({ subLayers: 2, chroma: 2, width: 640, height: 360 }))).toEqual({ width: 640, height: 360 });
    expect(code(() => parseHevcSps(h('40 01 0c 01')))).toBe('HEVC_MALFORMED'); // a VPS
    expect(code(() => parseHevcSps(sps({ subLayers: 1, chroma: 1, width: 64, height: 48 }).subarray(0, 10)))).toBe('HEVC_MALFORMED');
  });

  it('hvcC to a codec string: profile space, reversed compatibility flags, tier, constraint bytes', () => {
    // Main (1), compatibility bits 1 and 2, level 93 (3.1), progressive/frame-only constraint flags.
    const main = h('01 01 60 00 00 00 90 00 00 00 00 00 5d f0 00 fc fd f8 f8 00 00 0f 00');
    expect(hevcCodecString(main)).toBe('hvc1.1.6.L93.90');
    // Profile space 2 (B), High tier, Main 10 (2), compatibility bit 2, level 120, two constraint bytes.
    expect(hevcCodecString(h('01 a2 20 00 00 00 b0 08 00 00 00 00 78 f0 00 fc fd fa fa 00 00 0f 00'))).toBe('hvc1.B2.4.H120.B0.8');
    const spsNal = sps({ subLayers: 1, chroma: 1, width: 1280, height: 720 });
    const withSps = cat(main.subarray(0, 22), h('01 a1 00 01'), Uint8Array.of(spsNal.length >> 8, spsNal.length & 0xff), spsNal);
    const parsed = parseHvcC(withSps);
    expect([parsed.lengthSize, parsed.level, parsed.nals.get(33)?.length]).toEqual([4, 93, 1]);
    expect(hevcSizeOf(parsed)).toEqual({ width: 1280, height: 720 });
    expect(code(() => hevcSizeOf(parseHvcC(main)))).toBe('HEVC_MALFORMED'); // no SPS
    expect(code(() => parseHvcC(main.subarray(0, 20)))).toBe('HEVC_MALFORMED');
    expect(code(() => parseHvcC(cat(main.subarray(0, 22), h('01 a1 00 01 00 10 42'))))).toBe('HEVC_MALFORMED');
  });
});

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseVideoBody } from '../flv/flv-media.js';
import { FlvReader } from '../flv/flv-reader.js';
import {
  annexBToAvcc,
  avcCForKeyframe,
  avcCodecString,
  buildAvcC,
  nalToRbsp,
  parseAvcC,
  parseSps,
  splitAnnexB,
  splitAvcc,
} from './avc.js';
import { errorCode as code } from '../testing/bytes.js';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'onair-avc-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ffmpeg(args: string[]): Uint8Array {
  return new Uint8Array(execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', ...args], { maxBuffer: 64 << 20 }));
}

/** Drops the Annex B start code that filter_units leaves in front of the single NAL unit. */
function stripStartCode(b: Uint8Array): Uint8Array {
  const at = b[2] === 1 ? 3 : 4;
  expect(Array.from(b.subarray(0, at))).toEqual(at === 3 ? [0, 0, 1] : [0, 0, 0, 1]);
  return b.subarray(at);
}

interface Fixture {
  annexB: Uint8Array;
  sps: Uint8Array;
  pps: Uint8Array;
  fields: Map<string, number>;
  probe: { width: number; height: number };
}

function encode(name: string, size: string, extra: string[]): Fixture {
  const path = join(dir, `${name}.h264`);
  ffmpeg(['-y', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=25`, '-frames:v', '2', '-c:v', 'libx264', ...extra, '-f', 'h264', path]);
  const annexB = ffmpeg(['-i', path, '-c', 'copy', '-f', 'h264', '-']);
  const sps = stripStartCode(ffmpeg(['-i', path, '-c', 'copy', '-bsf:v', 'filter_units=pass_types=7', '-f', 'h264', '-']));
  const pps = stripStartCode(ffmpeg(['-i', path, '-c', 'copy', '-bsf:v', 'filter_units=pass_types=8', '-f', 'h264', '-']));
  const probe = JSON.parse(
    execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=width,height', '-of', 'json', path], { encoding: 'utf8' }),
  ) as { streams: [{ width: number; height: number }] };
  return { annexB, sps, pps, fields: traceFields(path), probe: probe.streams[0] };
}

/** Field values of the first SPS, as ffmpeg's trace_headers bitstream filter decodes them. */
function traceFields(path: string): Map<string, number> {
  // An SPS-only input makes ffmpeg fail after tracing, so read stderr whatever the exit status.
  const run = spawnSync('ffmpeg', ['-hide_banner', '-f', 'h264', '-i', path, '-c', 'copy', '-bsf:v', 'trace_headers', '-f', 'null', '-'], {
    encoding: 'utf8',
  });
  const lines = run.stderr.split('\n');
  const start = lines.findIndex((l) => l.endsWith('] Sequence Parameter Set'));
  expect(start).toBeGreaterThanOrEqual(0);
  const fields = new Map<string, number>();
  for (const line of lines.slice(start + 1)) {
    const m = /\]\s+\d+\s+(\S+)\s+[01]+ = (-?\d+)$/.exec(line);
    if (!m) break;
    if (!fields.has(m[1]!)) fields.set(m[1]!, Number(m[2]));
  }
  return fields;
}

/** Bytes from a string of '0'/'1', zero-padded to a whole byte. */
function bitsToBytes(bits: string): Uint8Array {
  const padded = bits.padEnd(Math.ceil(bits.length / 8) * 8, '0');
  return Uint8Array.from({ length: padded.length / 8 }, (_, i) => parseInt(padded.slice(i * 8, i * 8 + 8), 2));
}

const cases: Array<{ name: string; size: string; extra: string[]; profile: number; chroma: number; depth: number; mbsOnly: boolean }> = [
  { name: '720p-baseline', size: '1280x720', extra: ['-profile:v', 'baseline'], profile: 66, chroma: 1, depth: 8, mbsOnly: true },
  { name: '1080p-high', size: '1920x1080', extra: ['-profile:v', 'high'], profile: 100, chroma: 1, depth: 8, mbsOnly: true },
  { name: '360p-main', size: '640x360', extra: ['-profile:v', 'main'], profile: 77, chroma: 1, depth: 8, mbsOnly: true },
  { name: '768-422', size: '1366x768', extra: ['-pix_fmt', 'yuv422p'], profile: 122, chroma: 2, depth: 8, mbsOnly: true },
  { name: '444', size: '322x242', extra: ['-pix_fmt', 'yuv444p'], profile: 244, chroma: 3, depth: 8, mbsOnly: true },
  { name: 'high10', size: '640x360', extra: ['-pix_fmt', 'yuv420p10le'], profile: 110, chroma: 1, depth: 10, mbsOnly: true },
  { name: 'interlaced', size: '1280x720', extra: ['-x264-params', 'interlaced=1'], profile: 100, chroma: 1, depth: 8, mbsOnly: false },
  { name: 'sar-table', size: '640x360', extra: ['-vf', 'setsar=16/11'], profile: 100, chroma: 1, depth: 8, mbsOnly: true },
  { name: 'sar-extended', size: '640x360', extra: ['-vf', 'setsar=5/3'], profile: 100, chroma: 1, depth: 8, mbsOnly: true },
];

describe('parseSps against libx264 output judged by ffmpeg', () => {
  for (const c of cases) {
    it(`${c.name} (${c.size})`, () => {
      const f = encode(c.name, c.size, c.extra);
      const s = parseSps(f.sps);
      const t = (k: string): number | undefined => f.fields.get(k);
      expect([s.width, s.height]).toEqual([f.probe.width, f.probe.height]);
      expect(`${s.width}x${s.height}`).toBe(c.size);
      expect(s.profileIdc).toBe(c.profile);
      expect(s.profileIdc).toBe(t('profile_idc'));
      expect(s.levelIdc).toBe(t('level_idc'));
      expect(s.chromaFormatIdc).toBe(t('chroma_format_idc') ?? 1);
      expect(s.chromaFormatIdc).toBe(c.chroma);
      expect(s.bitDepthLuma).toBe((t('bit_depth_luma_minus8') ?? 0) + 8);
      expect(s.bitDepthLuma).toBe(c.depth);
      expect(s.frameMbsOnly).toBe(t('frame_mbs_only_flag') === 1);
      expect(s.frameMbsOnly).toBe(c.mbsOnly);
      expect(s.pocType).toBe(t('pic_order_cnt_type'));
      expect(s.maxNumRefFrames).toBe(t('max_num_ref_frames'));
      expect(s.codedWidth).toBe(((t('pic_width_in_mbs_minus1') ?? -1) + 1) * 16);
      expect(s.crop).toEqual({
        left: t('frame_crop_left_offset') ?? 0,
        right: t('frame_crop_right_offset') ?? 0,
        top: t('frame_crop_top_offset') ?? 0,
        bottom: t('frame_crop_bottom_offset') ?? 0,
      });
      expect(s.timing).toEqual({ numUnitsInTick: t('num_units_in_tick'), timeScale: t('time_scale'), fixedFrameRate: t('fixed_frame_rate_flag') === 1 });
      if (c.name === 'sar-table') expect([t('aspect_ratio_idc'), s.sarWidth, s.sarHeight]).toEqual([4, 16, 11]);
      if (c.name === 'sar-extended') expect([t('aspect_ratio_idc'), s.sarWidth, s.sarHeight]).toEqual([255, 5, 3]);

      const nals = splitAnnexB(f.annexB);
      expect(nals[0]).toEqual(f.sps);
      expect(nals).toContainEqual(f.pps);
      expect(splitAvcc(annexBToAvcc(f.annexB))).toEqual(nals);
    });
  }

  it('sizes where cropping matters: 1080p and 360p crop the bottom 8 pixels', () => {
    for (const [size, bottom] of [['1920x1080', 4], ['640x360', 4], ['1280x720', 0]] as const) {
      const s = parseSps(encode(`crop-${size}`, size, []).sps);
      expect([`${s.width}x${s.height}`, s.crop.bottom, s.codedHeight]).toEqual([size, bottom, Number(size.split('x')[1]) + bottom * 2]);
    }
  });
});

describe('SPS scaling lists (libx264 puts its matrices in the PPS, so this SPS is hand-made)', () => {
  it('skips seq_scaling_list() entries in a High profile SPS, as ffmpeg decodes it', () => {
    // Assembled field by field from H.264 §7.3.2.1.1 and §7.3.2.1.1.1.
    const bits = [
      '0', '11', '00111', // forbidden_zero_bit, nal_ref_idc 3, nal_unit_type 7
      '01100100', '00000000', '00011110', // profile_idc 100, constraint flags, level_idc 30
      '1', '010', '1', '1', '0', // sps id 0, chroma_format_idc 1, bit depths +0, qpprime 0
      '1', // seq_scaling_matrix_present_flag
      '1', '000010001', // list 0: delta_scale −8 → nextScale 0 (use the default matrix)
      '0', // list 1 absent
      '1', '010', '1'.repeat(15), // list 2: delta +1 then 15 × 0
      '000', // lists 3..5 absent
      '1', '000010001', // list 6 (8x8): delta −8
      '0', // list 7 absent
      '1', '1', '011', // log2_max_frame_num_minus4 0, pic_order_cnt_type 0, log2_max_poc_lsb_minus4 2
      '010', '0', // max_num_ref_frames 1, gaps 0
      '000010100', '0001111', // pic_width_in_mbs_minus1 19, pic_height_in_map_units_minus1 14
      '1', '1', // frame_mbs_only_flag, direct_8x8_inference_flag
      '1', '1', '1', '1', '00100', // cropping: left 0, right 0, top 0, bottom 3
      '0', '1', // no VUI, rbsp_stop_one_bit
    ].join('');
    const sps = bitsToBytes(bits);
    const path = join(dir, 'scaling.h264');
    writeFileSync(path, Uint8Array.of(0, 0, 0, 1, ...sps));
    const t = traceFields(path);
    expect([t.get('seq_scaling_list_present_flag[6]'), t.get('pic_width_in_mbs_minus1'), t.get('frame_crop_bottom_offset')]).toEqual([1, 19, 3]);
    const s = parseSps(sps);
    expect([s.profileIdc, s.levelIdc, s.pocType, s.maxNumRefFrames, s.codedWidth, s.codedHeight]).toEqual([
      t.get('profile_idc'), t.get('level_idc'), t.get('pic_order_cnt_type'), t.get('max_num_ref_frames'), 320, 240,
    ]);
    expect([s.width, s.height, s.timing]).toEqual([320, 234, undefined]);
  });
});

describe('SPS fields outside their H.264 ranges (found by fuzz.test.ts)', () => {
  const ue = (v: number): string => {
    const b = (v + 1).toString(2);
    return '0'.repeat(b.length - 1) + b;
  };
  /** A Baseline (or High, when `depth` is given) SPS assembled from H.264 §7.3.2.1.1. */
  const sps = (f: { widthMbs1: number; heightUnits1: number; refs?: number; depth?: number; frameMbsOnly?: boolean }): Uint8Array => {
    const head = f.depth === undefined
      ? '01000010' + '11000000' + '00101000' + ue(0) // profile_idc 66, constraints, level 40, sps id 0
      : '01100100' + '00000000' + '00101000' + ue(0) + ue(1) + ue(f.depth) + ue(0) + '0' + '0'; // 100, chroma 1, depths, no scaling
    return bitsToBytes([
      '0', '11', '00111', head,
      ue(0), ue(2), ue(f.refs ?? 1), '0', // log2_max_frame_num_minus4, poc type 2, max_num_ref_frames, gaps
      ue(f.widthMbs1), ue(f.heightUnits1), f.frameMbsOnly === false ? '10' : '1', '1', // …, mb_adaptive, direct_8x8
      '0', '0', '1', // no cropping, no VUI, rbsp_stop_one_bit
    ].join(''));
  };
  /** What ffmpeg's trace_headers says: undefined when it accepts, else its range complaint. */
  const ffmpegRange = (nal: Uint8Array): string | undefined => {
    const path = join(dir, 'range.h264');
    writeFileSync(path, Uint8Array.of(0, 0, 0, 1, ...nal));
    const run = spawnSync('ffmpeg', ['-hide_banner', '-f', 'h264', '-i', path, '-c', 'copy', '-bsf:v', 'trace_headers', '-f', 'null', '-'], { encoding: 'utf8' });
    expect(run.stderr).toContain('Sequence Parameter Set');
    return /(\S+) out of range/.exec(run.stderr)?.[1];
  };

  it('refuses what ffmpeg refuses and accepts its limits', () => {
    const widest = sps({ widthMbs1: 1055, heightUnits1: 0 });
    const deepest = sps({ widthMbs1: 10, heightUnits1: 10, depth: 6 });
    const maxRefs = sps({ widthMbs1: 10, heightUnits1: 10, refs: 16 });
    for (const ok of [widest, deepest, maxRefs]) expect(ffmpegRange(ok)).toBeUndefined();
    expect([parseSps(widest).width, parseSps(deepest).bitDepthLuma, parseSps(maxRefs).maxNumRefFrames]).toEqual([16896, 14, 16]);

    const bad: Array<[Uint8Array, string]> = [
      [sps({ widthMbs1: 1056, heightUnits1: 0 }), 'pic_width_in_mbs_minus1'],
      [sps({ widthMbs1: 0, heightUnits1: 2000 }), 'pic_height_in_map_units_minus1'],
      [sps({ widthMbs1: 10, heightUnits1: 10, depth: 7 }), 'bit_depth_luma_minus8'],
      [sps({ widthMbs1: 10, heightUnits1: 10, refs: 17 }), 'max_num_ref_frames'],
    ];
    for (const [nal, field] of bad) {
      expect(ffmpegRange(nal)).toBe(field);
      expect(code(() => parseSps(nal)), field).toBe('AVC_MALFORMED');
    }
    // Field pairs: 600 map units are 1200 macroblock rows, more than any level allows.
    expect(code(() => parseSps(sps({ widthMbs1: 10, heightUnits1: 599, frameMbsOnly: false })))).toBe('AVC_MALFORMED');
  });

  it('refuses the fuzzer\'s SPS whose 6291968-row picture overflowed the avc1 u16 height', () => {
    const nal = Uint8Array.from(
      '67 64 00 0a ac 00 00 3f 92 23 01 10 20 00 03 00 10 00 00 80 d5 ff 80 6f ff 4f 80 03 01 40 f1 22 51 20'.split(' '),
      (x) => parseInt(x, 16),
    );
    expect(code(() => parseSps(nal))).toBe('AVC_MALFORMED');
  });
});

describe('avcC', () => {
  let avcC: Uint8Array = new Uint8Array(0);
  let f: { sps: Uint8Array; pps: Uint8Array };

  beforeAll(() => {
    const path = join(dir, 'avcc.flv');
    ffmpeg(['-y', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=25', '-frames:v', '2', '-c:v', 'libx264', '-profile:v', 'high', path]);
    const nal = (type: number): Uint8Array =>
      stripStartCode(ffmpeg(['-i', path, '-c', 'copy', '-bsf:v', `h264_mp4toannexb,filter_units=pass_types=${type}`, '-f', 'h264', '-']));
    f = { sps: nal(7), pps: nal(8) };
    const seq = new FlvReader().push(new Uint8Array(readFileSync(path))).map((t) => parseVideoBody(t.data)).find((v) => v.packetType === 0);
    avcC = seq!.data;
  });

  it('parses the record ffmpeg writes into the FLV sequence header', () => {
    const c = parseAvcC(avcC);
    expect(c.sps).toEqual([f.sps]);
    expect(c.pps).toEqual([f.pps]);
    expect([c.profile, c.compat, c.level, c.lengthSize]).toEqual([f.sps[1], f.sps[2], f.sps[3], 4]);
    expect(avcCodecString(avcC)).toBe(`avc1.64${f.sps[2]!.toString(16).padStart(2, '0').toUpperCase()}${f.sps[3]!.toString(16).toUpperCase()}`);
  });

  it('buildAvcC reproduces ffmpeg\'s record byte for byte', () => {
    expect(buildAvcC({ sps: [f.sps], pps: [f.pps] })).toEqual(avcC);
  });

  it('codec strings', () => {
    expect(avcCodecString({ profile: 0x42, compat: 0xe0, level: 0x1f })).toBe('avc1.42E01F');
    expect(avcCodecString({ profile: 100, compat: 0, level: 40 })).toBe('avc1.640028');
  });

  it('refuses malformed records with AVC_MALFORMED', () => {
    for (let i = 0; i < avcC.length; i++) {
      const cut = avcC.subarray(0, i);
      const got = code(() => parseAvcC(cut));
      // The High profile extension is optional, so a cut right before it is still a whole record.
      if (got === undefined) expect(i).toBeGreaterThanOrEqual(avcC.length - 4);
      else expect(got, `cut at ${i}`).toBe('AVC_MALFORMED');
    }
    const bad = avcC.slice();
    bad[0] = 2;
    expect(code(() => parseAvcC(bad))).toBe('AVC_MALFORMED');
    // Parsing stops after VUI timing info: a cut later than that still yields the whole result.
    const whole = parseSps(f.sps);
    for (let i = 1; i < f.sps.length; i++) {
      let got: unknown;
      const c = code(() => (got = parseSps(f.sps.subarray(0, i))));
      if (c === undefined) expect(got, `SPS cut at ${i}`).toEqual(whole);
      else expect(c, `SPS cut at ${i}`).toBe('AVC_MALFORMED');
    }
    expect(code(() => parseSps(f.sps.subarray(0, 12)))).toBe('AVC_MALFORMED');
    expect(code(() => parseSps(f.pps))).toBe('AVC_MALFORMED');
  });
});

describe('NAL helpers', () => {
  it('removes emulation prevention bytes only after two zeros', () => {
    const nal = Uint8Array.of(0x67, 0x00, 0x00, 0x03, 0x01, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x03);
    expect(Array.from(nalToRbsp(nal))).toEqual([0x67, 0x00, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00]);
    const clean = Uint8Array.of(0x67, 0x00, 0x01, 0x03);
    expect(nalToRbsp(clean)).toBe(clean);
  });

  it('splits Annex B with 3- and 4-byte start codes and trailing zeros', () => {
    const b = Uint8Array.of(0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 4, 5);
    expect(splitAnnexB(b).map((n) => Array.from(n))).toEqual([[0x67, 1, 2], [0x68, 3], [0x65, 4, 5]]);
    expect(Array.from(annexBToAvcc(b))).toEqual([0, 0, 0, 3, 0x67, 1, 2, 0, 0, 0, 2, 0x68, 3, 0, 0, 0, 3, 0x65, 4, 5]);
  });
});

describe('avcCForKeyframe', () => {
  // Firefox 153's keyframe and description, as recorded by nginx-rtmp from its studio.
  const sps = Uint8Array.from(Buffer.from('674d401feca02802dd08000003000800f4240078c18cb0', 'hex'));
  const pps = Uint8Array.from(Buffer.from('68ebecb2', 'hex'));
  const idr = Uint8Array.of(0x65, 0x88, 0x84, 0x00);
  const lengthPrefixed = (...nals: Uint8Array[]): Uint8Array => {
    const out: number[] = [];
    for (const n of nals) out.push(0, 0, 0, n.length, ...n);
    return Uint8Array.from(out);
  };
  // What its WebCodecs description held: reserved bits clear, and the SPS NAL header byte twice.
  const broken = Uint8Array.from([1, 0x4d, 0x40, 0x1f, 0x03, 0x01, 0, sps.length + 1, 0x67, ...sps, 1, 0, pps.length, ...pps]);

  it('builds the avcC from the parameter sets a keyframe carries in-band', () => {
    const avcC = avcCForKeyframe(lengthPrefixed(sps, pps, idr), broken)!;
    const parsed = parseAvcC(avcC);
    expect(Array.from(parsed.sps[0]!)).toEqual(Array.from(sps));
    expect(Array.from(parsed.pps[0]!)).toEqual(Array.from(pps));
    expect(parsed.lengthSize).toBe(4);
    expect(parseSps(parsed.sps[0]!)).toMatchObject({ width: 1280, height: 720 });
    expect(avcC[4]).toBe(0xff);
  });

  it('keeps the description when the keyframe carries no parameter sets, or does not split', () => {
    expect(avcCForKeyframe(lengthPrefixed(idr), broken)).toBe(broken);
    expect(avcCForKeyframe(Uint8Array.of(0, 0, 9, 9, 1), broken)).toBe(broken);
    expect(avcCForKeyframe(lengthPrefixed(idr), undefined)).toBeUndefined();
  });
});

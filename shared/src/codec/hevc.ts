import { BitReader } from '../bytes/bitstream.js';
import { OnairError } from '../errors.js';
import { nalToRbsp } from './avc.js';

/** HEVC NAL unit types (H.265 Table 7-1) that onair looks at. */
export const enum HevcNalType {
  Vps = 32, // VPS_NUT
  Sps = 33, // SPS_NUT
  Pps = 34, // PPS_NUT
}

/** An HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3.1). NAL units are views. */
export interface HevcConfig {
  profileSpace: number;
  tier: number;
  profile: number;
  /** general_profile_compatibility_flags, bit 31 first as in the record. */
  compat: number;
  /** general_constraint_indicator_flags: 6 bytes. */
  constraints: Uint8Array;
  level: number;
  /** NAL unit length field size: 1, 2 or 4. */
  lengthSize: number;
  /** The parameter sets, by NAL unit type. */
  nals: Map<number, Uint8Array[]>;
}

export interface HevcSps {
  /** Picture size after the conformance window. */
  width: number;
  height: number;
}

function malformed(message: string): OnairError {
  return new OnairError('HEVC_MALFORMED', message);
}

/** Parses an hvcC record. */
export function parseHvcC(bytes: Uint8Array): HevcConfig {
  if (bytes.length < 23) throw malformed(`hvcC of ${bytes.length} bytes, need at least 23`);
  if (bytes[0] !== 1) throw malformed(`hvcC configurationVersion ${bytes[0]}, expected 1`);
  const b1 = bytes[1]!;
  const lengthSize = (bytes[21]! & 0x03) + 1;
  if (lengthSize === 3) throw malformed('hvcC lengthSizeMinusOne 2 (3-byte NAL lengths) is not allowed');
  const nals = new Map<number, Uint8Array[]>();
  let at = 23;
  for (let i = 0; i < bytes[22]!; i++) {
    if (at + 3 > bytes.length) throw malformed(`hvcC ends inside array ${i}`);
    const type = bytes[at]! & 0x3f;
    const count = (bytes[at + 1]! << 8) | bytes[at + 2]!;
    at += 3;
    const list = nals.get(type) ?? [];
    for (let j = 0; j < count; j++) {
      if (at + 2 > bytes.length) throw malformed(`hvcC ends inside NAL unit ${j} length of array ${i}`);
      const len = (bytes[at]! << 8) | bytes[at + 1]!;
      at += 2;
      if (at + len > bytes.length) throw malformed(`hvcC NAL unit of ${len} bytes with ${bytes.length - at} left`);
      list.push(bytes.subarray(at, at + len));
      at += len;
    }
    nals.set(type, list);
  }
  return {
    profileSpace: b1 >> 6,
    tier: (b1 >> 5) & 1,
    profile: b1 & 0x1f,
    compat: ((bytes[2]! << 24) | (bytes[3]! << 16) | (bytes[4]! << 8) | bytes[5]!) >>> 0,
    constraints: bytes.subarray(6, 12),
    level: bytes[12]!,
    lengthSize,
    nals,
  };
}

/**
 * The codec string of ISO/IEC 14496-15 Annex E, as mp4box and Chromium write it:
 * `hvc1.[A-C]profile.compat(bits reversed, hex).{L|H}level[.constraint bytes, trailing zeros cut]`.
 */
export function hevcCodecString(hvcC: Uint8Array | HevcConfig): string {
  const c = hvcC instanceof Uint8Array ? parseHvcC(hvcC) : hvcC;
  let reversed = 0;
  for (let i = 0; i < 32; i++) if (c.compat & (1 << i)) reversed |= 1 << (31 - i);
  const parts = [
    'hvc1',
    `${['', 'A', 'B', 'C'][c.profileSpace]!}${c.profile}`,
    (reversed >>> 0).toString(16).toUpperCase(),
    `${c.tier ? 'H' : 'L'}${c.level}`,
  ];
  let last = c.constraints.length;
  while (last > 0 && c.constraints[last - 1] === 0) last--;
  for (let i = 0; i < last; i++) parts.push(c.constraints[i]!.toString(16).toUpperCase());
  return parts.join('.');
}

/** profile_tier_level(1, maxSubLayersMinus1) (H.265 §7.3.3): skipped, its size depends on flags. */
function skipProfileTierLevel(r: BitReader, maxSubLayersMinus1: number): void {
  r.skipBits(96); // general profile space .. general_level_idc
  const profilePresent: boolean[] = [];
  const levelPresent: boolean[] = [];
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    profilePresent.push(r.flag());
    levelPresent.push(r.flag());
  }
  if (maxSubLayersMinus1 > 0) r.skipBits(2 * (8 - maxSubLayersMinus1)); // reserved_zero_2bits
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    if (profilePresent[i]) r.skipBits(88);
    if (levelPresent[i]) r.skipBits(8);
  }
}

/** Parses an SPS NAL unit (with its 2-byte header) as far as its conformance window (H.265 §7.3.2.2). */
export function parseHevcSps(nal: Uint8Array): HevcSps {
  if (nal.length < 3) throw malformed(`SPS NAL unit of ${nal.length} bytes`);
  const type = (nal[0]! >> 1) & 0x3f;
  if (type !== HevcNalType.Sps) throw malformed(`NAL unit type ${type} is not an SPS (33)`);
  const r = new BitReader(nalToRbsp(nal).subarray(2));
  try {
    r.skipBits(4); // sps_video_parameter_set_id
    const maxSubLayersMinus1 = r.bits(3);
    if (maxSubLayersMinus1 > 6) throw malformed(`sps_max_sub_layers_minus1 ${maxSubLayersMinus1} above 6`);
    r.skipBits(1); // sps_temporal_id_nesting_flag
    skipProfileTierLevel(r, maxSubLayersMinus1);
    r.ue(); // sps_seq_parameter_set_id
    const chroma = r.ue();
    if (chroma > 3) throw malformed(`chroma_format_idc ${chroma} above 3`);
    const separatePlanes = chroma === 3 && r.flag();
    let width = r.ue();
    let height = r.ue();
    if (r.flag()) {
      // conformance_window_flag: offsets in chroma samples (Table 6-1, SubWidthC/SubHeightC).
      const arrayType = separatePlanes ? 0 : chroma;
      const subW = arrayType === 1 || arrayType === 2 ? 2 : 1;
      const subH = arrayType === 1 ? 2 : 1;
      width -= subW * (r.ue() + r.ue());
      height -= subH * (r.ue() + r.ue());
    }
    if (width <= 0 || height <= 0 || width > 0xffff || height > 0xffff) throw malformed(`SPS picture size ${width}x${height}`);
    return { width, height };
  } catch (err) {
    if (err instanceof OnairError && err.code !== 'HEVC_MALFORMED') throw malformed(`SPS: ${err.message}`);
    throw err;
  }
}

/** The picture size of an hvcC's first SPS. */
export function hevcSizeOf(config: HevcConfig): HevcSps {
  const sps = config.nals.get(HevcNalType.Sps)?.[0];
  if (sps === undefined) throw malformed('hvcC without an SPS');
  return parseHevcSps(sps);
}

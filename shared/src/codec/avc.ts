import { BitReader } from '../bytes/bitstream.js';
import { OnairError } from '../errors.js';

/** nal_unit_type values used here (ITU-T H.264 Table 7-1). */
export const enum NalType {
  Slice = 1, // coded slice of a non-IDR picture
  Idr = 5, // coded slice of an IDR picture
  Sei = 6, // supplemental enhancement information
  Sps = 7, // sequence parameter set
  Pps = 8, // picture parameter set
  Aud = 9, // access unit delimiter
}

/** An AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1), as carried in avcC. */
export interface AvcConfig {
  /** AVCProfileIndication */
  profile: number;
  /** profile_compatibility */
  compat: number;
  /** AVCLevelIndication */
  level: number;
  /** NAL unit length field size in bytes (1, 2 or 4). */
  lengthSize: number;
  sps: Uint8Array[];
  pps: Uint8Array[];
}

export interface Sps {
  profileIdc: number;
  /** constraint_set0..5 flags and reserved bits, as the byte after profile_idc. */
  constraintFlags: number;
  levelIdc: number;
  spsId: number;
  chromaFormatIdc: number;
  bitDepthLuma: number;
  bitDepthChroma: number;
  frameMbsOnly: boolean;
  /** Picture size after frame cropping. */
  width: number;
  height: number;
  /** Size in macroblocks × 16 before cropping. */
  codedWidth: number;
  codedHeight: number;
  crop: { left: number; right: number; top: number; bottom: number };
  maxNumRefFrames: number;
  pocType: number;
  /** Sample aspect ratio from the VUI, 1:1 when absent or unspecified. */
  sarWidth: number;
  sarHeight: number;
  /** VUI timing info, when present. */
  timing: { numUnitsInTick: number; timeScale: number; fixedFrameRate: boolean } | undefined;
}

function malformed(message: string): OnairError {
  return new OnairError('AVC_MALFORMED', message);
}

const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135, 144]);
/** Table E-1 sample aspect ratios for aspect_ratio_idc 1..16. */
const SAR_TABLE: ReadonlyArray<readonly [number, number]> = [
  [1, 1], [12, 11], [10, 11], [16, 11], [40, 33], [24, 11], [20, 11], [32, 11],
  [80, 33], [18, 11], [15, 11], [64, 33], [160, 99], [4, 3], [3, 2], [2, 1],
];
const EXTENDED_SAR = 255;
/**
 * Widest and tallest frame in macroblocks. A.3.1 f) bounds each side by √(8·MaxFS), 1055.5 at
 * level 6.2 (Table A-1); FFmpeg accepts 1056 (16896 samples), within an avc1 entry's u16 sizes.
 */
const MAX_SIDE_MBS = 1056;
/** Profiles whose avcC carries chroma_format and bit depths (ISO/IEC 14496-15 §5.3.3.1.2). */
const AVCC_EXT_PROFILES = new Set([100, 110, 122, 144]);

/**
 * The RBSP of a NAL unit (header byte included): every 0x000003 loses its 0x03
 * (emulation_prevention_three_byte, H.264 §7.4.1). Returns the input when there is none.
 */
export function nalToRbsp(nal: Uint8Array): Uint8Array {
  let zeros = 0;
  let first = -1;
  for (let i = 0; i < nal.length; i++) {
    const b = nal[i]!;
    if (zeros >= 2 && b === 3) {
      first = i;
      break;
    }
    zeros = b === 0 ? zeros + 1 : 0;
  }
  if (first < 0) return nal;
  const out = new Uint8Array(nal.length);
  out.set(nal.subarray(0, first));
  let n = first;
  zeros = 0;
  for (let i = first + 1; i < nal.length; i++) {
    const b = nal[i]!;
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    out[n++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return out.subarray(0, n);
}

function skipScalingList(r: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) next = (last + r.se() + 256) % 256;
    last = next === 0 ? last : next;
  }
}

/** Parses a sequence parameter set NAL unit (with its header byte), H.264 §7.3.2.1.1. */
export function parseSps(nal: Uint8Array): Sps {
  if (nal.length < 4) throw malformed(`SPS of ${nal.length} bytes`);
  if ((nal[0]! & 0x1f) !== NalType.Sps) throw malformed(`NAL unit type ${nal[0]! & 0x1f} is not an SPS (7)`);
  const r = new BitReader(nalToRbsp(nal));
  try {
    r.skipBits(8);
    const profileIdc = r.bits(8);
    const constraintFlags = r.bits(8);
    const levelIdc = r.bits(8);
    const spsId = r.ue();
    if (spsId > 31) throw malformed(`seq_parameter_set_id ${spsId} outside 0..31`);
    let chromaFormatIdc = 1;
    let separateColourPlane = false;
    let bitDepthLuma = 8;
    let bitDepthChroma = 8;
    if (HIGH_PROFILES.has(profileIdc)) {
      chromaFormatIdc = r.ue();
      if (chromaFormatIdc > 3) throw malformed(`chroma_format_idc ${chromaFormatIdc} outside 0..3`);
      if (chromaFormatIdc === 3) separateColourPlane = r.flag();
      bitDepthLuma = r.ue() + 8;
      bitDepthChroma = r.ue() + 8;
      // bit_depth_luma_minus8 and bit_depth_chroma_minus8 are 0..6 (§7.4.2.1.1).
      if (bitDepthLuma > 14 || bitDepthChroma > 14) throw malformed(`bit depths ${bitDepthLuma}/${bitDepthChroma} outside 8..14`);
      r.skipBits(1); // qpprime_y_zero_transform_bypass_flag
      if (r.flag()) {
        const lists = chromaFormatIdc !== 3 ? 8 : 12;
        for (let i = 0; i < lists; i++) if (r.flag()) skipScalingList(r, i < 6 ? 16 : 64);
      }
    }
    r.ue(); // log2_max_frame_num_minus4
    const pocType = r.ue();
    if (pocType === 0) {
      r.ue(); // log2_max_pic_order_cnt_lsb_minus4
    } else if (pocType === 1) {
      r.skipBits(1); // delta_pic_order_always_zero_flag
      r.se(); // offset_for_non_ref_pic
      r.se(); // offset_for_top_to_bottom_field
      const cycle = r.ue();
      if (cycle > 255) throw malformed(`num_ref_frames_in_pic_order_cnt_cycle ${cycle} outside 0..255`);
      for (let i = 0; i < cycle; i++) r.se();
    } else if (pocType !== 2) {
      throw malformed(`pic_order_cnt_type ${pocType} outside 0..2`);
    }
    const maxNumRefFrames = r.ue();
    // At most MaxDpbFrames, which is never above 16 (§7.4.2.1.1, A.3.1 h).
    if (maxNumRefFrames > 16) throw malformed(`max_num_ref_frames ${maxNumRefFrames} outside 0..16`);
    r.skipBits(1); // gaps_in_frame_num_value_allowed_flag
    const widthMbs = r.ue() + 1;
    const heightMapUnits = r.ue() + 1;
    const frameMbsOnly = r.flag();
    if (!frameMbsOnly) r.skipBits(1); // mb_adaptive_frame_field_flag
    r.skipBits(1); // direct_8x8_inference_flag
    const crop = { left: 0, right: 0, top: 0, bottom: 0 };
    if (r.flag()) {
      crop.left = r.ue();
      crop.right = r.ue();
      crop.top = r.ue();
      crop.bottom = r.ue();
    }
    const fieldFactor = frameMbsOnly ? 1 : 2;
    const heightMbs = heightMapUnits * fieldFactor;
    if (widthMbs > MAX_SIDE_MBS || heightMbs > MAX_SIDE_MBS) {
      throw malformed(`SPS picture of ${widthMbs}x${heightMbs} macroblocks, more than ${MAX_SIDE_MBS} on a side`);
    }
    const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
    // CropUnitX/CropUnitY, H.264 equations 7-19 to 7-22.
    const subWidthC = chromaFormatIdc === 3 ? 1 : 2;
    const subHeightC = chromaFormatIdc === 1 ? 2 : 1;
    const cropUnitX = chromaArrayType === 0 ? 1 : subWidthC;
    const cropUnitY = (chromaArrayType === 0 ? 1 : subHeightC) * fieldFactor;
    const codedWidth = widthMbs * 16;
    const codedHeight = heightMbs * 16;
    const width = codedWidth - cropUnitX * (crop.left + crop.right);
    const height = codedHeight - cropUnitY * (crop.top + crop.bottom);
    if (width <= 0 || height <= 0) throw malformed(`SPS frame cropping leaves ${width}x${height}`);

    let sarWidth = 1;
    let sarHeight = 1;
    let timing: Sps['timing'];
    if (r.flag()) {
      // vui_parameters(), H.264 §E.1.1, up to timing_info.
      if (r.flag()) {
        const idc = r.bits(8);
        if (idc === EXTENDED_SAR) {
          sarWidth = r.bits(16);
          sarHeight = r.bits(16);
        } else {
          const sar = SAR_TABLE[idc - 1];
          if (sar) [sarWidth, sarHeight] = sar;
        }
      }
      if (r.flag()) r.skipBits(1); // overscan_appropriate_flag
      if (r.flag()) {
        r.skipBits(4); // video_format, video_full_range_flag
        if (r.flag()) r.skipBits(24); // colour_primaries, transfer_characteristics, matrix_coefficients
      }
      if (r.flag()) {
        r.ue(); // chroma_sample_loc_type_top_field
        r.ue(); // chroma_sample_loc_type_bottom_field
      }
      if (r.flag()) {
        timing = { numUnitsInTick: r.bits(32), timeScale: r.bits(32), fixedFrameRate: r.flag() };
      }
    }
    return {
      profileIdc, constraintFlags, levelIdc, spsId, chromaFormatIdc, bitDepthLuma, bitDepthChroma, frameMbsOnly,
      width, height, codedWidth, codedHeight, crop, maxNumRefFrames, pocType, sarWidth, sarHeight, timing,
    };
  } catch (err) {
    if (err instanceof OnairError && err.code !== 'AVC_MALFORMED') {
      throw new OnairError('AVC_MALFORMED', `SPS: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

/** Parses an AVCDecoderConfigurationRecord. NAL units are views into `bytes`. */
export function parseAvcC(bytes: Uint8Array): AvcConfig {
  if (bytes.length < 7) throw malformed(`avcC of ${bytes.length} bytes, need at least 7`);
  if (bytes[0] !== 1) throw malformed(`avcC configurationVersion ${bytes[0]}, expected 1`);
  const lengthSize = (bytes[4]! & 0x03) + 1;
  if (lengthSize === 3) throw malformed('avcC lengthSizeMinusOne 2 (3-byte NAL lengths) is not allowed');
  let at = 6;
  const readNals = (count: number, what: string): Uint8Array[] => {
    const nals: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      if (at + 2 > bytes.length) throw malformed(`avcC ends inside ${what} ${i} length`);
      const len = (bytes[at]! << 8) | bytes[at + 1]!;
      at += 2;
      if (at + len > bytes.length) throw malformed(`avcC ${what} ${i} of ${len} bytes with ${bytes.length - at} left`);
      nals.push(bytes.subarray(at, at + len));
      at += len;
    }
    return nals;
  };
  const sps = readNals(bytes[5]! & 0x1f, 'SPS');
  if (at >= bytes.length) throw malformed('avcC ends before numOfPictureParameterSets');
  const ppsCount = bytes[at++]!;
  const pps = readNals(ppsCount, 'PPS');
  return { profile: bytes[1]!, compat: bytes[2]!, level: bytes[3]!, lengthSize, sps, pps };
}

/**
 * Builds an AVCDecoderConfigurationRecord. Profile, compatibility and level come from the
 * first SPS; High profiles get the chroma/bit-depth extension (ISO/IEC 14496-15 §5.3.3.1.2).
 */
export function buildAvcC(init: { sps: readonly Uint8Array[]; pps: readonly Uint8Array[]; lengthSize?: 1 | 2 | 4 }): Uint8Array {
  const first = init.sps[0];
  if (!first || first.length < 4) throw malformed('avcC needs at least one SPS of 4 bytes or more');
  if (init.sps.length > 31) throw malformed(`avcC holds at most 31 SPS, got ${init.sps.length}`);
  if (init.pps.length > 255) throw malformed(`avcC holds at most 255 PPS, got ${init.pps.length}`);
  const profile = first[1]!;
  const high = AVCC_EXT_PROFILES.has(profile);
  const nals = [...init.sps, ...init.pps];
  let size = 7 + (high ? 4 : 0);
  for (const nal of nals) {
    if (nal.length > 0xffff) throw malformed(`parameter set of ${nal.length} bytes exceeds 65535`);
    size += 2 + nal.length;
  }
  const out = new Uint8Array(size);
  out[0] = 1;
  out[1] = profile;
  out[2] = first[2]!;
  out[3] = first[3]!;
  out[4] = 0xfc | ((init.lengthSize ?? 4) - 1);
  let at = 5;
  const put = (nal: Uint8Array): void => {
    out[at++] = nal.length >>> 8;
    out[at++] = nal.length & 0xff;
    out.set(nal, at);
    at += nal.length;
  };
  out[at++] = 0xe0 | init.sps.length;
  init.sps.forEach(put);
  out[at++] = init.pps.length;
  init.pps.forEach(put);
  if (high) {
    const s = parseSps(first);
    out[at++] = 0xfc | s.chromaFormatIdc;
    out[at++] = 0xf8 | (s.bitDepthLuma - 8);
    out[at++] = 0xf8 | (s.bitDepthChroma - 8);
    out[at++] = 0; // numOfSequenceParameterSetExt
  }
  return out;
}

function hex2(v: number): string {
  return v.toString(16).toUpperCase().padStart(2, '0');
}

/** The RFC 6381 codec string, e.g. 'avc1.42E01F', from an avcC or its parsed form. */
export function avcCodecString(avcC: Uint8Array | Pick<AvcConfig, 'profile' | 'compat' | 'level'>): string {
  const c = avcC instanceof Uint8Array ? parseAvcC(avcC) : avcC;
  return `avc1.${hex2(c.profile)}${hex2(c.compat)}${hex2(c.level)}`;
}

/** Splits an Annex B byte stream at its start codes. NAL units are views into `bytes`. */
export function splitAnnexB(bytes: Uint8Array): Uint8Array[] {
  const nals: Uint8Array[] = [];
  let start = -1;
  let i = 0;
  while (i + 2 < bytes.length) {
    if (bytes[i] === 0 && bytes[i + 1] === 0 && bytes[i + 2] === 1) {
      if (start >= 0) nals.push(trimTrailingZeros(bytes.subarray(start, i)));
      i += 3;
      start = i;
    } else {
      i++;
    }
  }
  if (start >= 0 && start < bytes.length) nals.push(trimTrailingZeros(bytes.subarray(start)));
  return nals.filter((n) => n.length > 0);
}

function trimTrailingZeros(nal: Uint8Array): Uint8Array {
  let end = nal.length;
  while (end > 0 && nal[end - 1] === 0) end--;
  return nal.subarray(0, end);
}

/** Splits length-prefixed NAL units (the avcC "AVCC" format). NAL units are views. */
export function splitAvcc(bytes: Uint8Array, lengthSize = 4): Uint8Array[] {
  const nals: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (at + lengthSize > bytes.length) throw malformed(`NAL length field cut at offset ${at}`);
    let len = 0;
    for (let k = 0; k < lengthSize; k++) len = len * 256 + bytes[at + k]!;
    at += lengthSize;
    if (at + len > bytes.length) throw malformed(`NAL unit of ${len} bytes at offset ${at} with ${bytes.length - at} left`);
    nals.push(bytes.subarray(at, at + len));
    at += len;
  }
  return nals;
}

/** Converts Annex B (start codes) to 4-byte length-prefixed NAL units. */
export function annexBToAvcc(bytes: Uint8Array): Uint8Array {
  const nals = splitAnnexB(bytes);
  let size = 0;
  for (const n of nals) size += 4 + n.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  let at = 0;
  for (const n of nals) {
    view.setUint32(at, n.length);
    out.set(n, at + 4);
    at += 4 + n.length;
  }
  return out;
}

/**
 * The avcC to announce for an encoder's keyframe: built from the SPS and PPS it carries in-band
 * when it does, else the encoder's own description. Firefox 153's WebCodecs description repeats
 * the SPS's NAL header byte (`67 67 4D …`), which decoders refuse ("sps_id out of range"), while
 * its keyframes carry correct parameter sets. `keyframe` holds length-prefixed NAL units of the
 * description's length size (4 without one); a keyframe that does not split is left to the
 * description.
 */
export function avcCForKeyframe(keyframe: Uint8Array, description: Uint8Array | undefined): Uint8Array | undefined {
  const lengthSize = description !== undefined && description.length > 4 ? (description[4]! & 0x03) + 1 : 4;
  let nals: Uint8Array[];
  try {
    nals = splitAvcc(keyframe, lengthSize);
  } catch {
    return description;
  }
  const sps = nals.filter((n) => (n[0]! & 0x1f) === NalType.Sps);
  const pps = nals.filter((n) => (n[0]! & 0x1f) === NalType.Pps);
  if (sps.length === 0 || pps.length === 0 || (lengthSize !== 1 && lengthSize !== 2 && lengthSize !== 4)) return description;
  try {
    parseSps(sps[0]!);
    return buildAvcC({ sps, pps, lengthSize });
  } catch {
    return description;
  }
}

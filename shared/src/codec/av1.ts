import { BitReader } from '../bytes/bitstream.js';
import { OnairError } from '../errors.js';

/** AV1 OBU types (AV1 spec §6.2.2) that onair looks at. */
export const enum Av1ObuType {
  SequenceHeader = 1, // OBU_SEQUENCE_HEADER
  TemporalDelimiter = 2, // OBU_TEMPORAL_DELIMITER
}

/** An AV1CodecConfigurationRecord (AV1 Codec ISO Media File Format Binding §2.3). */
export interface Av1Config {
  profile: number;
  /** seq_level_idx[0]. */
  level: number;
  /** seq_tier[0]: 0 Main, 1 High. */
  tier: number;
  bitDepth: 8 | 10 | 12;
  monochrome: boolean;
  /** configOBUs: normally the sequence header OBU. A view into the record. */
  configObus: Uint8Array;
}

/** What onair needs of a sequence header OBU: the largest frame it announces. */
export interface Av1SequenceHeader {
  profile: number;
  width: number;
  height: number;
}

function malformed(message: string): OnairError {
  return new OnairError('AV1_MALFORMED', message);
}

/** Parses an av1C record: marker 1, version 1, then the fields of the sequence header. */
export function parseAv1C(bytes: Uint8Array): Av1Config {
  if (bytes.length < 4) throw malformed(`av1C of ${bytes.length} bytes, need at least 4`);
  const b0 = bytes[0]!;
  if (b0 !== 0x81) throw malformed(`av1C starts with 0x${b0.toString(16)}, expected marker 1 and version 1 (0x81)`);
  const b1 = bytes[1]!;
  const b2 = bytes[2]!;
  const profile = b1 >> 5;
  const highBitdepth = (b2 & 0x40) !== 0;
  const twelveBit = (b2 & 0x20) !== 0;
  return {
    profile,
    level: b1 & 0x1f,
    tier: b2 >> 7,
    bitDepth: highBitdepth ? (profile === 2 && twelveBit ? 12 : 10) : 8,
    monochrome: (b2 & 0x10) !== 0,
    configObus: bytes.subarray(4),
  };
}

/**
 * The RFC 6381 codec string in its short form, `av01.P.LLT.DD` (AV1 ISOBMFF binding, Codecs
 * Parameter String): what MediaSource.isTypeSupported and mp4box report.
 */
export function av1CodecString(av1C: Uint8Array | Av1Config): string {
  const c = av1C instanceof Uint8Array ? parseAv1C(av1C) : av1C;
  const two = (n: number): string => String(n).padStart(2, '0');
  return `av01.${c.profile}.${two(c.level)}${c.tier ? 'H' : 'M'}.${two(c.bitDepth)}`;
}

/** One OBU of a low-overhead bitstream (every OBU with its size field, as FLV and MP4 carry them). */
export interface Av1Obu {
  type: number;
  /** The whole OBU, header included: a view. */
  obu: Uint8Array;
  /** Its payload: a view. */
  payload: Uint8Array;
}

/** Splits OBUs that carry obu_size fields (AV1 spec §5.3.1, leb128 sizes). */
export function splitObus(bytes: Uint8Array): Av1Obu[] {
  const out: Av1Obu[] = [];
  let at = 0;
  while (at < bytes.length) {
    const start = at;
    const header = bytes[at++]!;
    if (header & 0x80) throw malformed(`OBU at ${start} with obu_forbidden_bit set`);
    const type = (header >> 3) & 0x0f;
    if (header & 0x04) at++; // obu_extension_flag: one extension byte
    if ((header & 0x02) === 0) throw malformed(`OBU at ${start} without obu_has_size_field`);
    let size = 0;
    for (let i = 0; ; i++) {
      if (i === 8) throw malformed(`OBU at ${start}: leb128 size longer than 8 bytes`);
      const b = bytes[at++];
      if (b === undefined) throw malformed(`OBU at ${start} ends inside its size`);
      size += (b & 0x7f) * 2 ** (7 * i);
      if ((b & 0x80) === 0) break;
    }
    if (at + size > bytes.length) throw malformed(`OBU at ${start} of ${size} payload bytes with ${bytes.length - at} left`);
    out.push({ type, obu: bytes.subarray(start, at + size), payload: bytes.subarray(at, at + size) });
    at += size;
  }
  return out;
}

/**
 * A temporal unit without its temporal delimiters: the ISOBMFF binding keeps them out of samples
 * (§2.4), while an encoder or an FLV writer may put one first. Returns a view when the unit
 * starts with one, else the input.
 */
export function withoutTemporalDelimiter(unit: Uint8Array): Uint8Array {
  let at = 0;
  // A temporal delimiter with a size field and no extension is 0x12 0x00 (its payload is empty).
  while (unit[at] === 0x12 && unit[at + 1] === 0x00) at += 2;
  return at === 0 ? unit : unit.subarray(at);
}

/** uvlc() (AV1 spec §4.10.3). */
function uvlc(r: BitReader): number {
  let zeros = 0;
  while (r.bit() === 0) {
    if (++zeros >= 32) throw malformed('uvlc code longer than 32 bits');
  }
  return r.bits(zeros) + 2 ** zeros - 1;
}

/** Parses a sequence_header_obu payload (AV1 spec §5.5) as far as the maximum frame size. */
export function parseAv1SequenceHeader(payload: Uint8Array): Av1SequenceHeader {
  const r = new BitReader(payload);
  try {
    const profile = r.bits(3);
    r.skipBits(1); // still_picture
    const reduced = r.flag(); // reduced_still_picture_header
    if (reduced) {
      r.skipBits(5); // seq_level_idx[0]
    } else {
      let decoderModelInfo = false;
      let bufferDelayLength = 0;
      if (r.flag()) {
        // timing_info_present_flag: timing_info()
        r.skipBits(64); // num_units_in_display_tick, time_scale
        if (r.flag()) uvlc(r); // equal_picture_interval: num_ticks_per_picture_minus_1
        decoderModelInfo = r.flag();
        if (decoderModelInfo) {
          bufferDelayLength = r.bits(5) + 1; // buffer_delay_length_minus_1
          r.skipBits(32 + 5 + 5); // num_units_in_decoding_tick, two length fields
        }
      }
      const initialDisplayDelay = r.flag();
      const operatingPoints = r.bits(5) + 1;
      for (let i = 0; i < operatingPoints; i++) {
        r.skipBits(12); // operating_point_idc
        if (r.bits(5) > 7) r.skipBits(1); // seq_level_idx, seq_tier
        if (decoderModelInfo && r.flag()) r.skipBits(2 * bufferDelayLength + 1); // operating_parameters_info()
        if (initialDisplayDelay && r.flag()) r.skipBits(4);
      }
    }
    const widthBits = r.bits(4) + 1;
    const heightBits = r.bits(4) + 1;
    const width = r.bits(widthBits) + 1;
    const height = r.bits(heightBits) + 1;
    // 16-bit fields allow 65536, one more than a visual sample entry's u16 holds.
    if (width > 0xffff || height > 0xffff) throw malformed(`sequence header frame size ${width}x${height} beyond 65535`);
    return { profile, width, height };
  } catch (err) {
    if (err instanceof OnairError && err.code !== 'AV1_MALFORMED') {
      throw malformed(`sequence header: ${err.message}`);
    }
    throw err;
  }
}

/** The sequence header among an av1C's configOBUs, or undefined when it has none. */
export function av1SequenceHeaderOf(config: Av1Config): Av1SequenceHeader | undefined {
  const seq = splitObus(config.configObus).find((o) => o.type === Av1ObuType.SequenceHeader);
  return seq === undefined ? undefined : parseAv1SequenceHeader(seq.payload);
}

import { Amf0EcmaArray, decodeAmf0, encodeAmf0, type Amf0Value } from '../amf/amf0.js';
import { OnairError } from '../errors.js';

/** VIDEODATA FrameType (FLV spec §E.4.3.1). */
export const enum VideoFrameType {
  Key = 1, // key frame (for AVC, a seekable frame)
  Inter = 2, // inter frame
  DisposableInter = 3, // disposable inter frame (H.263 only)
  Generated = 4, // generated key frame
  Command = 5, // video info/command frame
}

/** VIDEODATA CodecID. */
export const enum VideoCodecId {
  Avc = 7, // AVC
}

/** AVCVIDEOPACKET AVCPacketType. */
export const enum AvcPacketType {
  SequenceHeader = 0, // AVC sequence header (AVCDecoderConfigurationRecord)
  Nalu = 1, // AVC NALU
  EndOfSequence = 2, // AVC end of sequence
}

/** Enhanced RTMP VideoPacketType (enhanced-rtmp v2, ExVideoTagHeader). */
export const enum ExVideoPacketType {
  SequenceStart = 0, // SequenceStart: the codec configuration record
  CodedFrames = 1, // CodedFrames (with s24 composition time for avc1/hvc1)
  SequenceEnd = 2, // SequenceEnd
  CodedFramesX = 3, // CodedFramesX (composition time 0, not sent)
  Metadata = 4, // Metadata: AMF-encoded [name, value] pairs (colorInfo)
  Mpeg2TsSequenceStart = 5, // MPEG2TSSequenceStart: an AV1 video descriptor
  Multitrack = 6, // Multitrack: an AvMultitrackType and one or more tracks follow
  ModEx = 7, // ModEx: a modifier/extension, then the real VideoPacketType
}

/** Enhanced RTMP VideoPacketModExType. */
export const enum VideoPacketModExType {
  TimestampOffsetNano = 0, // TimestampOffsetNano: UI24 nanoseconds added to the tag's time
}

/** The video FourCCs onair reads and writes in Enhanced RTMP video tags. */
export type VideoFourCc = 'avc1' | 'hvc1' | 'av01' | 'vp09';

/** A FourCC as the UI32 onMetaData carries in videocodecid/audiocodecid ('av01' → 0x61763031). */
export function fourCcNumber(fourcc: string): number {
  if (fourcc.length !== 4) throw new RangeError(`FourCC "${fourcc}" is not 4 characters`);
  return ((fourcc.charCodeAt(0) << 24) | (fourcc.charCodeAt(1) << 16) | (fourcc.charCodeAt(2) << 8) | fourcc.charCodeAt(3)) >>> 0;
}

/** AUDIODATA SoundFormat (FLV spec §E.4.2.1). */
export const enum SoundFormat {
  Aac = 10, // AAC
  ExHeader = 9, // enhanced-rtmp v2: audio FourCC follows
}

/** AACAUDIODATA AACPacketType. */
export const enum AacPacketType {
  SequenceHeader = 0, // AudioSpecificConfig
  Raw = 1, // raw AAC frame data
}

const VIDEO_EX_HEADER = 0x80; // IsExHeader (enhanced-rtmp v2)
/** AAC, 44 kHz, 16-bit, stereo: what the FLV spec requires for AAC whatever the real format. */
const AAC_AUDIO_BYTE0 = 0xaf;
const SOUND_RATES = [5500, 11025, 22050, 44100] as const;

function malformed(message: string): OnairError {
  return new OnairError('FLV_MALFORMED', message);
}

function fourccAt(b: Uint8Array, at: number): string {
  return String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!);
}

function i24At(b: Uint8Array, at: number): number {
  const v = (b[at]! << 16) | (b[at + 1]! << 8) | b[at + 2]!;
  return v & 0x800000 ? v - 0x1000000 : v;
}

export interface AvcVideoBodyInit {
  keyframe: boolean;
  packetType: 0 | 1 | 2;
  /** Composition time offset (pts − dts) in ms, signed 24-bit. */
  cts: number;
  data: Uint8Array;
}

/** An AVC VIDEODATA body: frame type + codec 7, AVCPacketType, CompositionTime, data. */
export function avcVideoBody(init: AvcVideoBodyInit): Uint8Array {
  if (!Number.isInteger(init.cts) || init.cts < -0x800000 || init.cts > 0x7fffff) {
    throw new OnairError('FLV_BAD_TIMESTAMP', `AVC composition time ${init.cts} outside signed 24 bits`);
  }
  const out = new Uint8Array(5 + init.data.length);
  out[0] = ((init.keyframe ? VideoFrameType.Key : VideoFrameType.Inter) << 4) | VideoCodecId.Avc;
  out[1] = init.packetType;
  const cts = init.cts < 0 ? init.cts + 0x1000000 : init.cts;
  out[2] = cts >>> 16;
  out[3] = (cts >>> 8) & 0xff;
  out[4] = cts & 0xff;
  out.set(init.data, 5);
  return out;
}

/** An AAC AUDIODATA body: 0xAF, AACPacketType, data. */
export function aacAudioBody(init: { packetType: 0 | 1; data: Uint8Array }): Uint8Array {
  const out = new Uint8Array(2 + init.data.length);
  out[0] = AAC_AUDIO_BYTE0;
  out[1] = init.packetType;
  out.set(init.data, 2);
  return out;
}

export interface VideoBody {
  /** Legacy CodecID (7 = AVC); 0 for an Enhanced RTMP body, which names its codec in `fourcc`. */
  codecId: number;
  frameType: number;
  keyframe: boolean;
  /**
   * AVCPacketType, or the Enhanced RTMP VideoPacketType (after any ModEx). Legacy codecs without
   * a packet type byte report 1 (coded frame).
   */
  packetType: number;
  /** Composition time offset in ms (0 where the format carries none). */
  cts: number;
  data: Uint8Array;
  /** Enhanced RTMP only: 'avc1', 'hvc1', 'av01', 'vp09'… (absent on a command frame). */
  fourcc?: string;
  /** Enhanced RTMP command frame (FrameType 5): the VideoCommand byte. */
  command?: number;
  /** Enhanced RTMP ModEx TimestampOffsetNano: nanoseconds to add to the tag's millisecond time. */
  nanoOffset?: number;
}

/** What the ExVideoTagHeader says, up to the start of the body (enhanced-rtmp v2). */
export interface ExVideoHeader {
  frameType: number;
  /** The VideoPacketType after any ModEx; never ModEx or Multitrack. */
  packetType: number;
  /** Absent on a command frame. */
  fourcc?: string;
  command?: number;
  nanoOffset?: number;
  /** Composition time offset in ms: CodedFrames of avc1/hvc1/vvc1 only, else 0. */
  cts: number;
  /** Where the packet's payload starts in the body. */
  bodyAt: number;
}

/** Codecs whose CodedFrames carry an SI24 composition time (ExVideoTagBody). */
const CTS_FOURCCS: ReadonlySet<string> = new Set(['avc1', 'hvc1', 'vvc1']);

/**
 * Reads an ExVideoTagHeader (the IsExHeader bit set): the ModEx modifiers, then the command byte
 * or the FourCC and, for avc1/hvc1 coded frames, the composition time. Throws FLV_MALFORMED for a
 * short or reserved header and FLV_UNSUPPORTED for multitrack video, which onair does not carry yet.
 */
export function readExVideoHeader(body: Uint8Array): ExVideoHeader {
  const b0 = body[0];
  if (b0 === undefined || (b0 & VIDEO_EX_HEADER) === 0) throw malformed('video body without the Enhanced RTMP IsExHeader bit');
  const frameType = (b0 >> 4) & 0x07;
  let packetType = b0 & 0x0f;
  let at = 1;
  const need = (n: number, what: string): void => {
    if (at + n > body.length) throw malformed(`Enhanced RTMP video body of ${body.length} bytes ends inside its ${what}`);
  };
  let nanoOffset: number | undefined;
  // Each ModEx takes at least two bytes of the body, so the loop ends with the body.
  while (packetType === ExVideoPacketType.ModEx) {
    need(1, 'ModEx data size');
    let size = body[at++]! + 1;
    if (size === 256) {
      need(2, 'ModEx data size');
      size = ((body[at]! << 8) | body[at + 1]!) + 1;
      at += 2;
    }
    need(size + 1, 'ModEx data');
    const data = at;
    at += size;
    const modExType = body[at]! >> 4;
    packetType = body[at++]! & 0x0f;
    if (modExType === VideoPacketModExType.TimestampOffsetNano) {
      if (size < 3) throw malformed(`TimestampOffsetNano ModEx data of ${size} bytes, need 3`);
      nanoOffset = (body[data]! << 16) | (body[data + 1]! << 8) | body[data + 2]!;
    }
    // Other ModEx types are reserved; their data has a size, so they are skipped.
  }
  const extra = nanoOffset === undefined ? {} : { nanoOffset };
  if (packetType > ExVideoPacketType.ModEx) throw malformed(`reserved Enhanced RTMP VideoPacketType ${packetType}`);
  if (packetType === ExVideoPacketType.Multitrack) throw new OnairError('FLV_UNSUPPORTED', 'Enhanced RTMP multitrack video is not supported');
  if (packetType !== ExVideoPacketType.Metadata && frameType === VideoFrameType.Command) {
    need(1, 'VideoCommand');
    return { frameType, packetType, command: body[at]!, cts: 0, bodyAt: at + 1, ...extra };
  }
  // A coded frame must say whether it is a keyframe; a sequence start or end needs no frame type.
  const coded = packetType === ExVideoPacketType.CodedFrames || packetType === ExVideoPacketType.CodedFramesX;
  if (coded && (frameType === 0 || frameType > VideoFrameType.Command)) throw malformed(`reserved Enhanced RTMP VideoFrameType ${frameType} on coded frames`);
  need(4, 'FourCC');
  const fourcc = fourccAt(body, at);
  at += 4;
  let cts = 0;
  if (packetType === ExVideoPacketType.CodedFrames && CTS_FOURCCS.has(fourcc)) {
    need(3, 'composition time');
    cts = i24At(body, at);
    at += 3;
  }
  return { frameType, packetType, fourcc, cts, bodyAt: at, ...extra };
}

/** Parses a VIDEODATA body (legacy or Enhanced RTMP ex-header). `data` is a view. */
export function parseVideoBody(body: Uint8Array): VideoBody {
  const b0 = body[0];
  if (b0 === undefined) throw malformed('empty video tag body');
  if (b0 & VIDEO_EX_HEADER) {
    const { bodyAt, frameType, packetType, ...rest } = readExVideoHeader(body);
    // FrameType is ignored for Metadata (enhanced-rtmp v2).
    const keyframe = frameType === VideoFrameType.Key && packetType !== ExVideoPacketType.Metadata;
    return { codecId: 0, frameType, keyframe, packetType, ...rest, data: body.subarray(bodyAt) };
  }
  const frameType = b0 >> 4;
  const codecId = b0 & 0x0f;
  if (codecId === VideoCodecId.Avc && frameType !== VideoFrameType.Command) {
    if (body.length < 5) throw malformed(`AVC video body of ${body.length} bytes, need 5 for its header`);
    return { codecId, frameType, keyframe: frameType === VideoFrameType.Key, packetType: body[1]!, cts: i24At(body, 2), data: body.subarray(5) };
  }
  return { codecId, frameType, keyframe: frameType === VideoFrameType.Key, packetType: AvcPacketType.Nalu, cts: 0, data: body.subarray(1) };
}

export interface ExVideoBodyInit {
  fourcc: VideoFourCc;
  keyframe: boolean;
  /** SequenceStart (the configuration record), CodedFrames, CodedFramesX or SequenceEnd. */
  packetType: ExVideoPacketType.SequenceStart | ExVideoPacketType.CodedFrames | ExVideoPacketType.CodedFramesX | ExVideoPacketType.SequenceEnd;
  /** Composition time in ms, signed 24-bit: CodedFrames of avc1/hvc1 only. */
  cts?: number;
  data: Uint8Array;
}

/** Bytes of the ExVideoTagHeader `writeExVideoHeader` writes. */
export function exVideoHeaderSize(fourcc: VideoFourCc, packetType: ExVideoPacketType): number {
  return packetType === ExVideoPacketType.CodedFrames && CTS_FOURCCS.has(fourcc) ? 8 : 5;
}

/**
 * Writes an ExVideoTagHeader at `at`: IsExHeader | FrameType | VideoPacketType, the FourCC and,
 * for avc1/hvc1 CodedFrames, the SI24 composition time. Returns the header size.
 */
export function writeExVideoHeader(out: Uint8Array, at: number, init: Omit<ExVideoBodyInit, 'data'>): number {
  const size = exVideoHeaderSize(init.fourcc, init.packetType);
  const cts = init.cts ?? 0;
  if (size === 5 && cts !== 0) throw new OnairError('FLV_BAD_TIMESTAMP', `composition time ${cts} in ${init.fourcc} VideoPacketType ${init.packetType}, which has none`);
  if (!Number.isInteger(cts) || cts < -0x800000 || cts > 0x7fffff) {
    throw new OnairError('FLV_BAD_TIMESTAMP', `${init.fourcc} composition time ${cts} outside signed 24 bits`);
  }
  out[at] = VIDEO_EX_HEADER | ((init.keyframe ? VideoFrameType.Key : VideoFrameType.Inter) << 4) | init.packetType;
  for (let i = 0; i < 4; i++) out[at + 1 + i] = init.fourcc.charCodeAt(i);
  if (size === 8) {
    const v = cts < 0 ? cts + 0x1000000 : cts;
    out[at + 5] = v >>> 16;
    out[at + 6] = (v >>> 8) & 0xff;
    out[at + 7] = v & 0xff;
  }
  return size;
}

/** An Enhanced RTMP VIDEODATA body: ExVideoTagHeader, then the record or the coded frame. */
export function exVideoBody(init: ExVideoBodyInit): Uint8Array {
  const out = new Uint8Array(exVideoHeaderSize(init.fourcc, init.packetType) + init.data.length);
  out.set(init.data, writeExVideoHeader(out, 0, init));
  return out;
}

export interface AudioBody {
  soundFormat: number;
  /** SoundRate in Hz (5500, 11025, 22050, 44100); AAC always says 44100 here. */
  rate: number;
  /** SoundSize in bits (8 or 16). */
  size: number;
  /** SoundType: 1 mono, 2 stereo. */
  channels: number;
  /** AACPacketType for AAC, AudioPacketType for an Enhanced RTMP body. */
  packetType?: number;
  /** Enhanced RTMP only: 'mp4a', 'Opus', 'fLaC', 'ac-3'… */
  fourcc?: string;
  data: Uint8Array;
}

/** Parses an AUDIODATA body (legacy, AAC, or Enhanced RTMP ex-header). `data` is a view. */
export function parseAudioBody(body: Uint8Array): AudioBody {
  const b0 = body[0];
  if (b0 === undefined) throw malformed('empty audio tag body');
  const soundFormat = b0 >> 4;
  const base = { soundFormat, rate: SOUND_RATES[(b0 >> 2) & 3]!, size: b0 & 0x02 ? 16 : 8, channels: (b0 & 1) + 1 };
  if (soundFormat === SoundFormat.Aac) {
    if (body.length < 2) throw malformed('AAC audio body of 1 byte, need 2 for its header');
    return { ...base, packetType: body[1]!, data: body.subarray(2) };
  }
  if (soundFormat === SoundFormat.ExHeader) {
    if (body.length < 5) throw malformed(`Enhanced RTMP audio body of ${body.length} bytes, need 5 for its header`);
    return { ...base, packetType: b0 & 0x0f, fourcc: fourccAt(body, 1), data: body.subarray(5) };
  }
  return { ...base, data: body.subarray(1) };
}

/**
 * A SCRIPTDATA body carrying onMetaData as an ECMA array. Publishers send it wrapped in
 * `@setDataFrame` (the server stores it and strips the wrapper before sending to players).
 */
export function onMetaDataBody(meta: Record<string, number | string | boolean>, withSetDataFrame = true): Uint8Array {
  const payload = new Amf0EcmaArray({ ...meta });
  return encodeAmf0(withSetDataFrame ? ['@setDataFrame', 'onMetaData', payload] : ['onMetaData', payload]);
}

/** Parses a SCRIPTDATA body in either form: `@setDataFrame, name, value` or `name, value`. */
export function parseScriptBody(body: Uint8Array): { name: string; value: Amf0Value } {
  const values = decodeAmf0(body);
  const at = values[0] === '@setDataFrame' ? 1 : 0;
  const name = values[at];
  if (typeof name !== 'string') throw malformed(`script data body starts with ${typeof name}, not a handler name`);
  return { name, value: values[at + 1] };
}

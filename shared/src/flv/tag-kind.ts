import { ExVideoPacketType, readExVideoHeader } from './flv-media.js';
import { FlvTagType, type FlvTag } from './flv-tag.js';

/**
 * What a relay needs to know about a tag, read from its first body bytes only (two for a legacy
 * tag; an Enhanced RTMP one up to its FourCC, past any ModEx): the one classifier of the studio's
 * destinations and the watch fan-out. `Other` tags (end of sequence, video info/command frames,
 * Enhanced RTMP video metadata, multitrack video, malformed headers, unknown types) are neither
 * cached nor a starting point; relays pass them on in order once a receiver is past its first
 * keyframe.
 */
export const enum TagKind {
  Metadata, // SCRIPTDATA onMetaData
  VideoConfig, // AVCPacketType 0 / Enhanced RTMP VideoPacketType SequenceStart
  AudioConfig, // AACPacketType 0
  Keyframe, // VIDEODATA FrameType 1 coded frame
  Frame, // other coded video frames
  Audio, // coded audio
  Other, // sequence end, video info frames, unknown tag types
}

const VIDEO_KEY_FRAME = 1; // FrameType 1: key frame
const VIDEO_INFO_FRAME = 5; // FrameType 5: video info/command frame
const SOUND_FORMAT_AAC = 10;
const VIDEO_EX_HEADER = 0x80; // IsExHeader (enhanced-rtmp v2)

function legacyVideoKind(b0: number, packetType: number | undefined): TagKind {
  const frameType = b0 >> 4;
  if (frameType === VIDEO_INFO_FRAME) return TagKind.Other;
  if (packetType === 0) return TagKind.VideoConfig;
  if (packetType !== 1) return TagKind.Other;
  return frameType === VIDEO_KEY_FRAME ? TagKind.Keyframe : TagKind.Frame;
}

/** An Enhanced RTMP video tag: SequenceStart, CodedFrames or CodedFramesX of any FourCC. */
function exVideoKind(body: Uint8Array): TagKind {
  let header: ReturnType<typeof readExVideoHeader>;
  try {
    header = readExVideoHeader(body);
  } catch {
    // Multitrack or a malformed header: relayed in order, never a starting point.
    return TagKind.Other;
  }
  if (header.fourcc === undefined) return TagKind.Other; // command frame
  switch (header.packetType) {
    case ExVideoPacketType.SequenceStart:
      // An empty one (the spec's sample FLVs open with one before the real record) configures
      // nothing: never the cached configuration.
      return header.bodyAt < body.length ? TagKind.VideoConfig : TagKind.Other;
    case ExVideoPacketType.CodedFrames:
    case ExVideoPacketType.CodedFramesX:
      return header.frameType === VIDEO_KEY_FRAME ? TagKind.Keyframe : TagKind.Frame;
    default:
      return TagKind.Other;
  }
}

/** Classifies a tag whose body is byte for byte an RTMP audio/video/data message payload. */
export function tagKind(tag: FlvTag): TagKind {
  const d = tag.data;
  const b0 = d[0];
  if (b0 === undefined) return TagKind.Other;
  if (tag.type === FlvTagType.Script) return TagKind.Metadata;
  if (tag.type === FlvTagType.Video) return b0 & VIDEO_EX_HEADER ? exVideoKind(d) : legacyVideoKind(b0, d[1]);
  if (tag.type === FlvTagType.Audio) {
    if (b0 >> 4 === SOUND_FORMAT_AAC && d[1] === 0) return TagKind.AudioConfig;
    return TagKind.Audio;
  }
  return TagKind.Other;
}

import { FlvTagType, type FlvTag } from './flv-tag.js';

/**
 * What a relay needs to know about a tag, read from its first two body bytes only: the one
 * classifier of the studio's destinations and the watch fan-out. `Other` tags (AVC end of
 * sequence, video info/command frames, unknown types) are neither cached nor a starting point;
 * relays pass them on in order once a receiver is past its first keyframe.
 */
export const enum TagKind {
  Metadata, // SCRIPTDATA onMetaData
  VideoConfig, // AVCPacketType 0 / Enhanced RTMP PacketTypeSequenceStart
  AudioConfig, // AACPacketType 0
  Keyframe, // VIDEODATA FrameType 1 coded frame
  Frame, // other coded video frames
  Audio, // coded audio
  Other, // sequence end, video info frames, unknown tag types
}

const VIDEO_KEY_FRAME = 1; // FrameType 1: key frame
const VIDEO_INFO_FRAME = 5; // FrameType 5: video info/command frame
const SOUND_FORMAT_AAC = 10;

/** Classifies a tag whose body is byte for byte an RTMP audio/video/data message payload. */
export function tagKind(tag: FlvTag): TagKind {
  const d = tag.data;
  const b0 = d[0];
  if (b0 === undefined) return TagKind.Other;
  if (tag.type === FlvTagType.Script) return TagKind.Metadata;
  if (tag.type === FlvTagType.Video) {
    const frameType = (b0 >> 4) & 0x07;
    if (frameType === VIDEO_INFO_FRAME) return TagKind.Other;
    // Enhanced RTMP: IsExHeader | FrameType(3) | PacketType(4); PacketType 0 SequenceStart,
    // 1 CodedFrames, 2 SequenceEnd, 3 CodedFramesX.
    const ex = (b0 & 0x80) !== 0;
    const packetType = ex ? b0 & 0x0f : d[1];
    if (packetType === 0) return TagKind.VideoConfig;
    if (ex ? packetType !== 1 && packetType !== 3 : packetType !== 1) return TagKind.Other;
    return frameType === VIDEO_KEY_FRAME ? TagKind.Keyframe : TagKind.Frame;
  }
  if (tag.type === FlvTagType.Audio) {
    if (b0 >> 4 === SOUND_FORMAT_AAC && d[1] === 0) return TagKind.AudioConfig;
    return TagKind.Audio;
  }
  return TagKind.Other;
}

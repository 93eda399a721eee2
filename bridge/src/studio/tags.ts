import { FlvTagType, type FlvTag } from '@onair/shared';

// FLV spec (E.4.3.1 VIDEODATA, E.4.2.1 AUDIODATA): byte 0 holds FrameType|CodecID or
// SoundFormat|rate|size|type; for AVC and AAC byte 1 is the packet type.
const FRAME_TYPE_KEY = 1; // FrameType 1: key frame
const CODEC_AVC = 7; // CodecID 7: AVC
const SOUND_FORMAT_AAC = 10; // SoundFormat 10: AAC
const PACKET_SEQUENCE_HEADER = 0; // AVCPacketType / AACPacketType 0: sequence header

export const enum TagRole {
  Metadata,
  VideoConfig,
  AudioConfig,
  VideoKey,
  Video,
  Audio,
  Other,
}

export function tagRole(tag: FlvTag): TagRole {
  const b0 = tag.data[0];
  const b1 = tag.data[1];
  switch (tag.type) {
    case FlvTagType.Script:
      return TagRole.Metadata;
    case FlvTagType.Video:
      if (b0 === undefined) return TagRole.Other;
      if ((b0 & 0x0f) === CODEC_AVC && b1 === PACKET_SEQUENCE_HEADER) return TagRole.VideoConfig;
      return b0 >> 4 === FRAME_TYPE_KEY ? TagRole.VideoKey : TagRole.Video;
    case FlvTagType.Audio:
      if (b0 === undefined) return TagRole.Other;
      if (b0 >> 4 === SOUND_FORMAT_AAC && b1 === PACKET_SEQUENCE_HEADER) return TagRole.AudioConfig;
      return TagRole.Audio;
    default:
      return TagRole.Other;
  }
}

export { OnairError, ShortInputError, assert } from './errors.js';
export type { ErrorCode } from './errors.js';
export { backoffMs } from './retry/backoff.js';
export type { Backoff } from './retry/backoff.js';
export { ByteReader } from './bytes/byte-reader.js';
export { ByteWriter } from './bytes/byte-writer.js';
export {
  Amf0EcmaArray,
  DEFAULT_AMF0_LIMITS,
  amf0Props,
  decodeAmf0,
  encodeAmf0,
  readAmf0Value,
  writeAmf0Value,
} from './amf/amf0.js';
export type { Amf0Limits, Amf0Object, Amf0Value } from './amf/amf0.js';
export { BitReader, BitWriter } from './bytes/bitstream.js';
export {
  FLV_HEADER_SIZE,
  FLV_MAX_BODY_SIZE,
  FLV_PREVIOUS_TAG_SIZE,
  FLV_TAG_HEADER_SIZE,
  FlvTagType,
} from './flv/flv-tag.js';
export type { FlvTag } from './flv/flv-tag.js';
export { TagKind, tagKind } from './flv/tag-kind.js';
export { sanitizeMetadata } from './flv/metadata.js';
export { flvHeader, flvTag, writeFlvTagInto } from './flv/flv-writer.js';
export { DEFAULT_FLV_MAX_TAG_SIZE, FlvReader, parseFlvTag } from './flv/flv-reader.js';
export type { FlvReaderOptions } from './flv/flv-reader.js';
export {
  AacPacketType,
  AvcPacketType,
  ExVideoPacketType,
  SoundFormat,
  VideoCodecId,
  VideoFrameType,
  VideoPacketModExType,
  aacAudioBody,
  avcVideoBody,
  exVideoBody,
  exVideoHeaderSize,
  fourCcNumber,
  onMetaDataBody,
  parseAudioBody,
  parseScriptBody,
  parseVideoBody,
  readExVideoHeader,
  writeExVideoHeader,
} from './flv/flv-media.js';
export type { AudioBody, AvcVideoBodyInit, ExVideoBodyInit, ExVideoHeader, VideoBody, VideoFourCc } from './flv/flv-media.js';
export {
  NalType,
  annexBToAvcc,
  avcCForKeyframe,
  avcCodecString,
  buildAvcC,
  nalToRbsp,
  parseAvcC,
  parseSps,
  splitAnnexB,
  splitAvcc,
} from './codec/avc.js';
export type { AvcConfig, Sps } from './codec/avc.js';
export {
  Av1ObuType,
  av1CodecString,
  av1SequenceHeaderOf,
  parseAv1C,
  parseAv1SequenceHeader,
  splitObus,
  withoutTemporalDelimiter,
} from './codec/av1.js';
export type { Av1Config, Av1Obu, Av1SequenceHeader } from './codec/av1.js';
export { HevcNalType, hevcCodecString, hevcSizeOf, parseHevcSps, parseHvcC } from './codec/hevc.js';
export type { HevcConfig, HevcSps } from './codec/hevc.js';
export { AacObjectType, aacCodecString, buildAudioSpecificConfig, parseAudioSpecificConfig } from './codec/aac.js';
export type { AudioSpecificConfig } from './codec/aac.js';
export { fragment, initSegment } from './mp4/fmp4-writer.js';
export type { Fmp4AudioTrack, Fmp4Fragment, Fmp4Sample, Fmp4Track, Fmp4VideoTrack } from './mp4/fmp4-writer.js';
export {
  MAX_DESTINATIONS,
  MAX_STUDIO_BINARY_BYTES,
  MAX_STUDIO_TEXT_BYTES,
  STUDIO_AFFINITY_PARAM,
  STUDIO_PROTOCOL_VERSION,
  STUDIO_SESSION_PARAM,
  STUDIO_WS_PATH,
  joinStreamUrl,
  parseStudioClientMessage,
  parseStudioServerMessage,
  studioSocketUrl,
} from './wire/studio.js';
export type {
  DestinationState,
  DestinationStatus,
  StudioAckMessage,
  StudioClientMessage,
  StudioDestination,
  StudioErrorMessage,
  StudioGapMessage,
  StudioGaps,
  StudioResumeMessage,
  StudioResumedMessage,
  StudioServerMessage,
  StudioSessionMessage,
  StudioStartMessage,
  StudioStatusMessage,
  StudioStopMessage,
  StudioWelcomeMessage,
} from './wire/studio.js';
export * from './wire/watch.js';
export * from './wire/close.js';
export * from './wire/config.js';
export * from './remux/flv-to-fmp4.js';
export * from './wire/restream.js';

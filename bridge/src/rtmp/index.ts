export { DEFAULT_MAX_REDIRECTS, RtmpPublisher, type RtmpMove, type RtmpPublishOptions, type RtmpPublisherStats } from './publisher.js';
export { READ_BATCH_MS, RtmpPlayer, type RtmpPlayerOptions, type RtmpPlayerStats } from './player.js';
export { AckWindow, DEFAULT_PUBLISH_ACK_WINDOW } from './ack-window.js';
export {
  DEFAULT_ACK_STALL_TIMEOUT_MS,
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_DNS_TIMEOUT_MS,
  DEFAULT_SEND_STALL_TIMEOUT_MS,
  type RtmpAddressOptions,
  type RtmpClientOptions,
} from './session.js';
export { parseRtmpUrl, redactKey, redactUrl, resolveServerUrl, type RtmpUrl } from './url.js';
export {
  DEFAULT_RTMP_LIMITS,
  RtmpClientCore,
  RtmpRedirectError,
  type ClientPhase,
  type RtmpClientCoreOptions,
  type RtmpClientEvent,
  type RtmpClientSink,
  type RtmpLimits,
  type RtmpRole,
} from './client-core.js';
export { ChunkReader, DEFAULT_CHUNK_READER_LIMITS, type ChunkReaderLimits } from './chunk-reader.js';
export { ChunkWriter, DEFAULT_OUT_CHUNK_SIZE } from './chunk-writer.js';
export { ClientHandshake } from './handshake.js';
export { MessageType, UserControlEvent, type RtmpMessage } from './messages.js';
export { decodeCommand, encodeCommand, statusInfo, type RtmpCommand, type StatusInfo } from './commands.js';
export { splitAggregate } from './aggregate.js';

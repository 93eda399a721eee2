/**
 * Every stable error code, in one place: callers branch on these, the page shows them next to the
 * message, and the docs list them (docs/rtmp-client.md, docs/ws-protocol.md).
 */
export type ErrorCode =
  // Bytes and formats
  | 'SHORT_INPUT'
  | 'BITSTREAM_MALFORMED'
  | 'AMF0_MALFORMED'
  | 'AMF0_TOO_LONG'
  | 'FLV_MALFORMED'
  | 'FLV_TOO_LARGE'
  | 'FLV_BAD_TIMESTAMP'
  | 'FLV_SCRIPT_REFUSED'
  | 'FLV_UNSUPPORTED'
  | 'AVC_MALFORMED'
  | 'HEVC_MALFORMED'
  | 'AV1_MALFORMED'
  | 'AAC_MALFORMED'
  | 'MP4_BAD_INPUT'
  | 'REMUX_BAD_CONFIG'
  // RTMP client
  | 'RTMP_BAD_URL'
  | 'RTMP_PROTOCOL'
  | 'RTMP_BAD_CHUNK_SIZE'
  | 'RTMP_MESSAGE_TOO_LARGE'
  | 'RTMP_TOO_MANY_CHUNK_STREAMS'
  | 'RTMP_CONNECT_REFUSED'
  | 'RTMP_CONNECT_FAILED'
  | 'RTMP_CONNECT_TIMEOUT'
  | 'RTMP_CONNECT_REJECTED'
  | 'RTMP_DNS_TIMEOUT'
  | 'HANDSHAKE_FAILED'
  | 'RTMP_PUBLISH_BADNAME'
  | 'RTMP_PUBLISH_FAILED'
  | 'RTMP_PLAY_FAILED'
  | 'RTMP_CONNECTION_CLOSED'
  | 'RTMP_CONNECTION_LOST'
  | 'RTMP_SEND_STALLED'
  | 'RTMP_ACK_STALLED'
  | 'RTMP_CLOSE_TIMEOUT'
  | 'RTMP_CLOSED'
  | 'RTMP_ERROR'
  | 'RTMP_PLAYER_ITERATED'
  | 'TLS_HANDSHAKE_FAILED'
  | `TLS_${string}`
  // Sessions, relays and the server
  | 'ABORTED'
  | 'INTERRUPTED'
  | 'CONNECTION_CLOSED'
  | 'DESTINATION_REFUSED'
  | 'BAD_MESSAGE'
  | 'ALREADY_LIVE'
  | 'SESSION_UNKNOWN'
  | 'SESSION_LIMIT'
  | 'DRAINING'
  | 'VIEWER_LIMIT'
  | 'RELAY_LIMIT'
  | 'INTERNAL'
  | 'WATCH_CLOSED'
  | 'WATCH_FAILED'
  | 'WATCH_NO_LOCAL_SERVER'
  | 'WATCH_NO_SUCH_APP'
  // The CLI
  | 'USAGE'
  | 'TOKEN_REQUIRED'
  | 'PORT_IN_USE'
  | 'LISTEN_FAILED'
  | 'LOCAL_RTMP_FAILED'
  | 'INPUT_NOT_FILE'
  | 'INPUT_UNREADABLE'
  | 'INPUT_EMPTY'
  | 'CONFIG_UNREADABLE'
  | 'OUTPUT_UNWRITABLE'
  | 'OUTPUT_CLOSED';

/**
 * An error with a stable `code`, for protocol and input faults. Callers branch on `code`;
 * the message names the bad value for the human reading it.
 */
export class OnairError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OnairError';
    this.code = code;
  }
}

/** Thrown when a reader needs more bytes than its input holds. */
export class ShortInputError extends OnairError {
  constructor(needed: number, left: number, what: string) {
    super('SHORT_INPUT', `${what}: need ${needed} bytes, ${left} left`);
    this.name = 'ShortInputError';
  }
}

/** Invariant check: a failure is a bug in onair, never bad input. */
export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new Error(message);
}

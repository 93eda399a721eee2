/**
 * WebSocket close codes both protocols use (RFC 6455 §7.4.1, and the IANA registry for 1013), and
 * the rule for close reasons. Pages decide from the code whether to retry.
 */
export const enum CloseCode {
  Normal = 1000, // Normal Closure: the page stopped, or the stream ended
  GoingAway = 1001, // Going Away: the bridge is shutting down, or the relay closed
  Unsupported = 1003, // Unsupported Data: a message this socket does not take
  InvalidData = 1007, // Invalid frame payload data: a binary frame that is not one FLV tag
  PolicyViolation = 1008, // Policy Violation: refused for good (bad message, refused source)
  TooBig = 1009, // Message Too Big
  MissingExtension = 1010, // Mandatory Extension
  InternalError = 1011, // Internal Error
  TryAgainLater = 1013, // Try Again Later: a cap is reached; the page retries later
  Superseded = 4001, // onair: the page resumed this session on a newer socket
  SessionEnded = 4002, // onair: the session is gone (grace period over, or unknown): start a new one
}

/** Codes after which reconnecting cannot help: the bridge refused what the page sent. */
export const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCode.Unsupported,
  CloseCode.InvalidData,
  CloseCode.PolicyViolation,
  CloseCode.TooBig,
  CloseCode.MissingExtension,
]);

/** A close reason may hold at most 123 bytes of UTF-8 (RFC 6455 §5.5: 125-byte control frames, 2 for the code). */
export const MAX_CLOSE_REASON_BYTES = 123;

const encoder = new TextEncoder();

/** `text` cut to a valid close reason: at most 123 bytes of UTF-8, never half a character. */
export function closeReason(text: string): string {
  if (encoder.encode(text).length <= MAX_CLOSE_REASON_BYTES) return text;
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const n = encoder.encode(ch).length;
    if (bytes + n > MAX_CLOSE_REASON_BYTES - 3) break;
    out += ch;
    bytes += n;
  }
  return `${out}...`;
}

/** Longest reason (status, error) a message carries, in characters; longer ones are cut where made. */
export const MAX_REASON_LENGTH = 512;

/** `text` cut to MAX_REASON_LENGTH characters. */
export function capReason(text: string): string {
  return text.length <= MAX_REASON_LENGTH ? text : `${text.slice(0, MAX_REASON_LENGTH - 1)}…`;
}

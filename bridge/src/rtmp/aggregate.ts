import { OnairError } from '@onair/shared';
import type { FlvTag } from '@onair/shared';

/** FLV tag header (type, size, timestamp, extended timestamp, stream id) and trailing PreviousTagSize. */
const TAG_HEADER = 11;
const PREVIOUS_TAG_SIZE = 4;

/**
 * Splits an Aggregate message (type 22: FLV tags back to back, each followed by its
 * PreviousTagSize) into its tags. Sub-tag timestamps are rebased so the first one lands on the
 * aggregate message's own timestamp, keeping their spacing (what FFmpeg and nginx-rtmp do).
 */
export function splitAggregate(payload: Uint8Array, timestamp: number): FlvTag[] {
  const tags: FlvTag[] = [];
  let p = 0;
  let first: number | undefined;
  while (p < payload.length) {
    if (payload.length - p < TAG_HEADER) {
      throw new OnairError('RTMP_PROTOCOL', `aggregate message: ${payload.length - p} bytes left at ${p}, need a tag header`);
    }
    const type = payload[p]! & 0x1f;
    const size = (payload[p + 1]! << 16) | (payload[p + 2]! << 8) | payload[p + 3]!;
    const ts = ((payload[p + 7]! << 24) | (payload[p + 4]! << 16) | (payload[p + 5]! << 8) | payload[p + 6]!) >>> 0;
    const body = p + TAG_HEADER;
    if (body + size > payload.length) {
      throw new OnairError('RTMP_PROTOCOL', `aggregate message: tag of ${size} bytes at ${p} overruns ${payload.length}`);
    }
    first ??= ts;
    tags.push({ type, timestamp: (timestamp + (ts - first)) >>> 0, data: payload.subarray(body, body + size) });
    // Some writers omit the last PreviousTagSize.
    p = Math.min(payload.length, body + size + PREVIOUS_TAG_SIZE);
  }
  return tags;
}

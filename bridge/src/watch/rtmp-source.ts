import { RtmpPlayer } from '../rtmp/player.js';
import type { RtmpAddressOptions } from '../rtmp/session.js';
import type { TagSource } from './stream-relay.js';

const CONNECT_TIMEOUT_MS = 10_000;

/**
 * The default upstream: an RTMP/RTMPS play session, iterated until the publisher ends. `address`
 * carries the policy's check of the address actually dialled (see docs/rtmp-client.md).
 */
export async function connectRtmpSource(url: string, address: RtmpAddressOptions): Promise<TagSource> {
  return RtmpPlayer.connect(url, { ...address, connectTimeoutMs: CONNECT_TIMEOUT_MS });
}

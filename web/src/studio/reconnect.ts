import type { Backoff } from '@onair/shared';

/** How the encode worker retries the bridge after its WebSocket drops: quick once, then OBS's schedule. */
export const BRIDGE_RECONNECT: Backoff = { firstMs: 500, baseMs: 2000, factor: 1.5, maxMs: 30_000, jitter: 0.2 };

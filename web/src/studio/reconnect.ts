/** How the encode worker retries the bridge after its WebSocket drops (the schedule OBS uses). */
export interface ReconnectPolicy {
  /** The first retry: quicker, for a blip. */
  firstMs: number;
  /** The second retry; every later one waits `factor` times longer, up to `maxMs`. */
  baseMs: number;
  factor: number;
  maxMs: number;
  /** Up to this fraction is added at random, so pages do not all come back at once. */
  jitter: number;
}

export const DEFAULT_RECONNECT: ReconnectPolicy = { firstMs: 500, baseMs: 2000, factor: 1.5, maxMs: 30_000, jitter: 0.2 };

/** Milliseconds to wait before reconnect attempt `attempt` (0 for the first after a drop). */
export function reconnectDelayMs(attempt: number, policy: ReconnectPolicy = DEFAULT_RECONNECT, random: () => number = Math.random): number {
  const base = attempt <= 0 ? policy.firstMs : Math.min(policy.maxMs, policy.baseMs * policy.factor ** (attempt - 1));
  return Math.round(base * (1 + random() * policy.jitter));
}

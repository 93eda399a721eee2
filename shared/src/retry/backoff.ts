/**
 * How long to wait before each retry: the one formula every reconnecting part of onair uses
 * (destinations, watch upstreams, the studio's and the watch page's sockets). Exponential, capped,
 * with a random share added so that many clients dropped by one fault do not return in step.
 */
export interface Backoff {
  /** Attempt 0 waits this long when set (a quick first try, for a blip); later ones follow `baseMs`. */
  firstMs?: number;
  /** The first delay of the exponential series. */
  baseMs: number;
  /** Each further attempt waits this many times longer… */
  factor: number;
  /** …up to this. */
  maxMs: number;
  /** Up to this fraction of the delay is added at random. */
  jitter: number;
}

/** Milliseconds to wait before retry `attempt` (0 for the first after a failure). */
export function backoffMs(attempt: number, policy: Backoff, random: () => number = Math.random): number {
  const n = Math.max(0, Math.floor(attempt));
  let base: number;
  if (policy.firstMs === undefined) base = policy.baseMs * policy.factor ** n;
  else base = n === 0 ? policy.firstMs : policy.baseMs * policy.factor ** (n - 1);
  return Math.round(Math.min(policy.maxMs, base) * (1 + random() * policy.jitter));
}

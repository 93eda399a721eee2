import { describe, expect, it } from 'vitest';
import { backoffMs, type Backoff } from './backoff.js';

const none = (): number => 0;
const most = (): number => 1;

describe('backoffMs', () => {
  it('grows ×factor from baseMs up to maxMs', () => {
    const p: Backoff = { baseMs: 100, factor: 2, maxMs: 400, jitter: 0 };
    expect([0, 1, 2, 3, 10, 1000].map((a) => backoffMs(a, p, none))).toEqual([100, 200, 400, 400, 400, 400]);
  });

  it('a quick first retry, then the series from baseMs', () => {
    const p: Backoff = { firstMs: 500, baseMs: 2000, factor: 1.5, maxMs: 30_000, jitter: 0.2 };
    expect([0, 1, 2, 3, 4, 7, 8, 50].map((a) => backoffMs(a, p, none))).toEqual([500, 2000, 3000, 4500, 6750, 22_781, 30_000, 30_000]);
  });

  it('adds up to `jitter` of the delay, never more, also at the cap', () => {
    const p: Backoff = { baseMs: 2000, factor: 1.5, maxMs: 30_000, jitter: 0.2 };
    expect(backoffMs(0, p, most)).toBe(2400);
    expect(backoffMs(50, p, most)).toBe(36_000);
    for (let i = 0; i < 100; i++) {
      const d = backoffMs(3, p);
      expect(d).toBeGreaterThanOrEqual(6750);
      expect(d).toBeLessThanOrEqual(8100);
    }
  });

  it('treats a negative or fractional attempt as the nearest attempt at or below it, not less than 0', () => {
    const p: Backoff = { baseMs: 100, factor: 2, maxMs: 10_000, jitter: 0 };
    expect(backoffMs(-3, p, none)).toBe(100);
    expect(backoffMs(2.7, p, none)).toBe(400);
  });
});

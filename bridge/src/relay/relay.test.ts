import { describe, expect, it } from 'vitest';
import { Pacer } from './pacer.js';

describe('Pacer', () => {
  it('releases tags at start + (ts − first ts)', () => {
    const p = new Pacer();
    expect(p.delay(16_770_000, 1000)).toBe(0);
    expect(p.delay(16_770_033, 1000)).toBe(33);
    expect(p.delay(16_770_066, 1050)).toBe(16);
    expect(p.delay(16_770_100, 1200)).toBe(0); // late: no negative waits, no catch-up burst beyond now
  });

  it('starts a new base on a jump instead of sleeping for hours', () => {
    const p = new Pacer(5_000);
    p.delay(0, 0); // metadata at 0 before media at 16,770 s
    expect(p.delay(16_770_000, 10)).toBe(0);
    expect(p.delay(16_770_040, 10)).toBe(40);
    expect(p.delay(100, 20)).toBe(0); // backwards reset
  });
});

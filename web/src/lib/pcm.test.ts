import { describe, expect, it } from 'vitest';
import { MAX_TRIM, PcmConverter } from './pcm.js';

const sine = (f: number, rate: number, from: number, n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin((2 * Math.PI * f * (from + i)) / rate));

/** Converts `total` samples of a 1 kHz sine fed in blocks of the given sizes (cycled). */
function convertInBlocks(inRate: number, outRate: number, total: number, sizes: number[]): Float32Array {
  const conv = new PcmConverter(outRate, 1);
  const parts: Float32Array[] = [];
  for (let at = 0, k = 0; at < total; k++) {
    const n = Math.min(sizes[k % sizes.length]!, total - at);
    parts.push(conv.convert([sine(1000, inRate, at, n)], inRate)[0]!);
    at += n;
  }
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe('PcmConverter', () => {
  it('44.1 → 48 kHz in odd blocks follows the continuous sine everywhere, block edges included', () => {
    const out = convertInBlocks(44_100, 48_000, 44_100, [128, 441, 1000, 7, 1]);
    // Output sample i is the input at time i / 48000 s.
    expect(out.length).toBeGreaterThanOrEqual(47_990);
    let worst = 0;
    for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i]! - Math.sin((2 * Math.PI * 1000 * i) / 48_000)));
    // Linear interpolation of a 1 kHz sine at 44.1 kHz errs by at most (2πf·h)²/8 ≈ 0.0025; holding
    // a sample across an edge errs by up to 2πf·h ≈ 0.14.
    expect(worst).toBeLessThan(0.003);
  });

  it('gives the same samples whatever the block sizes', () => {
    const whole = convertInBlocks(44_100, 48_000, 20_000, [20_000]);
    const split = convertInBlocks(44_100, 48_000, 20_000, [3, 256, 999]);
    expect(split.length).toBe(whole.length);
    for (let i = 0; i < whole.length; i++) expect(split[i]).toBeCloseTo(whole[i]!, 6);
  });

  it('filters before downsampling: 30 kHz at 96 kHz does not fold back to 18 kHz', () => {
    const conv = new PcmConverter(48_000, 1);
    let out: Float32Array = new Float32Array(0);
    for (let at = 0; at < 96_000; at += 960) out = conv.convert([sine(30_000, 96_000, at, 960)], 96_000)[0]!;
    const peak = out.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    // 4th-order Butterworth at 19.2 kHz: 30 kHz is down about 25 dB (without it: folded back whole).
    expect(peak).toBeLessThan(0.06);
    // A 1 kHz tone passes.
    const tone = new PcmConverter(48_000, 1);
    for (let at = 0; at < 9600; at += 960) out = tone.convert([sine(1000, 96_000, at, 960)], 96_000)[0]!;
    expect(out.reduce((m, x) => Math.max(m, Math.abs(x)), 0)).toBeGreaterThan(0.95);
  });

  it('trim stretches the output by at most 0.1 %, and 0 at the same rate passes samples through', () => {
    const conv = new PcmConverter(48_000, 2);
    const block = sine(1000, 48_000, 0, 48_000);
    const same = conv.convert([block], 48_000);
    expect(same).toHaveLength(2);
    expect(Array.from(same[1]!)).toEqual(Array.from(block));
    const longer = conv.convert([block], 48_000, 0.01)[0]!;
    expect(longer.length).toBeGreaterThan(48_000 * (1 + MAX_TRIM) - 3);
    expect(longer.length).toBeLessThan(48_000 * (1 + MAX_TRIM) + 3);
  });
});

import { describe, expect, it } from 'vitest';
import { MAX_TRIM, PcmConverter } from '../lib/pcm.js';
import { AudioClock } from './audio-clock.js';

const RATE = 48_000;

/**
 * A microphone delivering 10 ms blocks from its own clock (`ppm` fast or slow against ours),
 * stamped with capture times on the system clock, through AudioClock and PcmConverter as the
 * encode worker does. Returns the track's offset from the session clock after each block (µs).
 */
function runMic(seconds: number, ppm: number, stall?: { atS: number; forS: number; deliverLate: boolean }): { offsets: number[]; silence: number; skipped: number } {
  const clock = new AudioClock(RATE);
  const pcm = new PcmConverter(RATE, 1);
  const micRate = RATE * (1 + ppm / 1e6);
  const block = 480;
  const offsets: number[] = [];
  let silence = 0;
  let skipped = 0;
  for (let k = 0; (k * block) / micRate < seconds; k++) {
    const captureUs = ((k * block) / micRate) * 1e6 + 7_000; // the source clock has its own origin
    const sessionUs = captureUs - 7_000 + 12_000; // delivered 12 ms after capture
    if (stall !== undefined && captureUs - 7_000 >= stall.atS * 1e6 && captureUs - 7_000 < (stall.atS + stall.forS) * 1e6) {
      if (!stall.deliverLate) continue; // lost by the source
    }
    const nowUs = stall?.deliverLate === true && captureUs - 7_000 >= stall.atS * 1e6 && captureUs - 7_000 < (stall.atS + stall.forS) * 1e6 ? (stall.atS + stall.forS) * 1e6 + 12_000 : sessionUs;
    const filled = clock.fill(nowUs, true);
    clock.wrote(filled);
    silence += filled;
    const place = clock.place(captureUs, nowUs);
    clock.wrote(place.silence);
    // The first block starts where it belongs (12 ms in): not a gap.
    if (k > 0) silence += place.silence;
    const out = pcm.convert([new Float32Array(block)], RATE, place.trim)[0]!;
    const kept = Math.max(0, out.length - place.skip);
    skipped += out.length - kept;
    clock.wrote(kept);
    // Where the next sample lands against where the next capture belongs.
    const nextCaptureUs = (((k + 1) * block) / micRate) * 1e6;
    offsets.push((clock.written / RATE) * 1e6 - (nextCaptureUs + 12_000));
  }
  return { offsets, silence, skipped };
}

describe('AudioClock', () => {
  it('follows a microphone 100 ppm fast or slow within a few ms, without silence or cuts', () => {
    for (const ppm of [100, -100, 500]) {
      const { offsets, silence, skipped } = runMic(600, ppm);
      const worst = offsets.slice(100).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      expect(worst).toBeLessThan(6_000);
      expect(silence).toBe(0);
      expect(skipped).toBe(0);
    }
  });

  it('a source that loses 300 ms gets 300 ms of silence, then is on time again', () => {
    const { offsets, silence } = runMic(5, 0, { atS: 2, forS: 0.3, deliverLate: false });
    // Exact to within the dead band (5 ms) the track may have been off before the loss.
    expect(Math.abs(silence - 0.3 * RATE)).toBeLessThanOrEqual(240);
    expect(Math.abs(offsets.at(-1)!)).toBeLessThan(5_000);
  });

  it('blocks delivered late after a stall keep their place: nothing late, nothing cut', () => {
    const { offsets, silence, skipped } = runMic(5, 0, { atS: 2, forS: 0.2, deliverLate: true });
    expect(silence).toBe(0);
    expect(skipped).toBe(0);
    expect(Math.abs(offsets.at(-1)!)).toBeLessThan(5_000);
  });

  it('a stall longer than the fill threshold: silence up to the clock, the late blocks are cut', () => {
    const { offsets, silence, skipped } = runMic(5, 0, { atS: 2, forS: 0.6, deliverLate: true });
    expect(silence).toBeGreaterThan(0);
    expect(skipped).toBeGreaterThan(0);
    expect(Math.abs(offsets.at(-1)!)).toBeLessThan(5_000);
  });

  it('trims by at most MAX_TRIM and not at all within the dead band', () => {
    const clock = new AudioClock(RATE);
    expect(clock.place(0, 0)).toEqual({ silence: 0, skip: 0, trim: 0 });
    expect(clock.place(3_000, 3_000).trim).toBe(0);
    expect(clock.place(30_000, 30_000).trim).toBe(MAX_TRIM);
    clock.wrote(RATE);
    expect(clock.place(970_000, 970_000).trim).toBe(-MAX_TRIM);
    expect(clock.place(900_000, 900_000).skip).toBe(0.1 * RATE);
  });

  it('a new source maps its own clock afresh', () => {
    const clock = new AudioClock(RATE);
    clock.place(5_000_000, 0);
    clock.wrote(RATE);
    clock.resync();
    // Another microphone whose clock reads 42 s: it goes on where the track is, not 37 s later.
    expect(clock.place(42_000_000, 1_000_000)).toEqual({ silence: 0, skip: 0, trim: 0 });
  });
});

import { describe, expect, it } from 'vitest';
import { fromDb, METER_WINDOW_S, MeterWindow, SILENCE_DB, toDb, type MeterReading } from './meter.js';
import { clampGain, DEFAULT_MIXER, loadMixer, MIXER_STORAGE_KEY, readMixer, saveMixer } from './mixer-store.js';

const RATE = 48_000;
const sine = (f: number, amplitude: number, n: number, from = 0): Float32Array => Float32Array.from({ length: n }, (_, i) => amplitude * Math.sin((2 * Math.PI * f * (from + i)) / RATE));

/** Feeds `planes` in render quanta of `block` frames, as the AudioWorklet does; every reading. */
function meter(planes: Float32Array[], block = 128, windowFrames = METER_WINDOW_S * RATE): MeterReading[] {
  const w = new MeterWindow(windowFrames);
  const out: MeterReading[] = [];
  const n = planes[0]!.length;
  for (let at = 0; at < n; at += block) out.push(...w.add(planes.map((p) => p.subarray(at, Math.min(n, at + block)))));
  return out;
}

describe('dB', () => {
  it('full scale is 0 dBFS, half is -6.02, silence is the floor', () => {
    expect(toDb(1)).toBe(0);
    expect(toDb(0.5)).toBeCloseTo(-6.0206, 4);
    expect(toDb(Math.SQRT1_2)).toBeCloseTo(-3.0103, 4);
    expect(toDb(0)).toBe(SILENCE_DB);
    expect(toDb(1e-9)).toBe(SILENCE_DB);
    for (const db of [-60, -20.5, -6, 0, 12]) expect(toDb(fromDb(db))).toBeCloseTo(db, 9);
  });
});

describe('MeterWindow', () => {
  it('a full-scale sine: peak 0 dBFS, RMS -3.01 dBFS, 40 readings a second', () => {
    const readings = meter([sine(440, 1, RATE)]);
    expect(readings.length).toBe(40);
    for (const r of readings) {
      // 1200 samples hold 11 cycles of 440 Hz: the sampled peak sits within 0.01 dB of the true one.
      expect(toDb(r.peak)).toBeGreaterThan(-0.01);
      expect(toDb(r.peak)).toBeLessThanOrEqual(0);
      // A window is not a whole number of cycles: its RMS strays a little from A/√2.
      expect(toDb(r.rms)).toBeCloseTo(-3.01, 1);
    }
  });

  it('a sine at -6 dBFS and a square wave: peak and RMS of each', () => {
    for (const r of meter([sine(1000, 0.5, RATE)])) {
      expect(toDb(r.peak)).toBeCloseTo(-6.02, 1);
      // 1200 samples are exactly 25 cycles of 1 kHz: the RMS is exact.
      expect(toDb(r.rms)).toBeCloseTo(-9.03, 2);
    }
    const square = Float32Array.from({ length: RATE }, (_, i) => (Math.floor(i / 24) % 2 === 0 ? 0.25 : -0.25));
    for (const r of meter([square])) {
      expect(r.peak).toBe(0.25);
      expect(r.rms).toBeCloseTo(0.25, 9);
    }
  });

  it('one loud sample sets the peak of its window only', () => {
    const quiet = new Float32Array(RATE / 10);
    quiet[1300] = -0.9;
    const readings = meter([quiet]);
    expect(readings.map((r) => r.peak)).toEqual([0, 0.8999999761581421, 0, 0]);
    expect(readings[1]!.rms).toBeCloseTo(0.9 / Math.sqrt(1200), 6);
  });

  it('the same tone on two channels reads as on one; one channel of two silent reads 3 dB lower', () => {
    const tone = sine(440, 0.3, RATE / 2);
    const mono = meter([tone]);
    const stereo = meter([tone, tone.slice()]);
    const half = meter([tone, new Float32Array(tone.length)]);
    expect(stereo.length).toBe(mono.length);
    for (let i = 0; i < mono.length; i++) {
      expect(stereo[i]!.peak).toBe(mono[i]!.peak);
      expect(stereo[i]!.rms).toBeCloseTo(mono[i]!.rms, 9);
      expect(toDb(half[i]!.rms) - toDb(mono[i]!.rms)).toBeCloseTo(-3.01, 2);
      expect(half[i]!.peak).toBe(mono[i]!.peak);
    }
  });

  it('gives the same readings whatever the block sizes, and carries a partial window over', () => {
    const tone = sine(523, 0.7, RATE);
    const whole = meter([tone], RATE);
    for (const block of [1, 7, 128, 1199, 1201, 5000]) {
      const split = meter([tone], block);
      expect(split.length).toBe(whole.length);
      for (let i = 0; i < whole.length; i++) {
        expect(split[i]!.peak).toBe(whole[i]!.peak);
        expect(split[i]!.rms).toBeCloseTo(whole[i]!.rms, 6);
      }
    }
  });

  it('silence reads as the floor; a window of no frames is refused', () => {
    for (const r of meter([new Float32Array(RATE / 4)])) {
      expect(toDb(r.peak)).toBe(SILENCE_DB);
      expect(toDb(r.rms)).toBe(SILENCE_DB);
    }
    expect(() => new MeterWindow(0)).toThrow(/meter window 0/);
  });
});

describe('mixer settings', () => {
  const memory = (): Storage & { data: Map<string, string> } => {
    const data = new Map<string, string>();
    return { data, getItem: (k: string) => data.get(k) ?? null, setItem: (k: string, v: string) => void data.set(k, v), removeItem: (k: string) => void data.delete(k) } as unknown as Storage & { data: Map<string, string> };
  };

  it('round-trips, and reads malformed entries field by field', () => {
    const store = memory();
    const s = { ...DEFAULT_MIXER, strips: { ...DEFAULT_MIXER.strips, screen: { gainDb: -6, muted: true } }, micProcessing: { noiseSuppression: false, echoCancellation: true, autoGainControl: true } };
    expect(saveMixer(store, s)).toBe(true);
    expect(loadMixer(store)).toEqual(s);
    store.data.set(MIXER_STORAGE_KEY, '{not json');
    expect(loadMixer(store)).toEqual(DEFAULT_MIXER);
    const odd = readMixer({ strips: { mic: { gainDb: 'loud', muted: 1 }, file: { gainDb: 99 } }, master: null, loop: 'yes', micProcessing: { noiseSuppression: false, autoGainControl: 'on' } });
    expect(odd.strips.mic).toEqual(DEFAULT_MIXER.strips.mic);
    expect(odd.strips.file).toEqual({ gainDb: 12, muted: false });
    expect(odd.master).toEqual(DEFAULT_MIXER.master);
    expect(odd.loop).toBe(DEFAULT_MIXER.loop);
    expect(odd.micProcessing).toEqual({ ...DEFAULT_MIXER.micProcessing, noiseSuppression: false });
    expect(readMixer(null)).toEqual(DEFAULT_MIXER);
  });

  it('keeps gains within the fader and to 0.1 dB', () => {
    expect(clampGain(-200)).toBe(-60);
    expect(clampGain(40)).toBe(12);
    expect(clampGain(-6.04)).toBe(-6);
    expect(clampGain(Number.NaN)).toBe(0);
  });
});

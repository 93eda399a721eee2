/**
 * Level meter maths, shared by the AudioWorklet that measures (mixer.worklet.ts) and the page that
 * shows the readings. Sans-I/O: samples in, readings out.
 */

/** The floor of every scale: quieter than this reads as silence. */
export const SILENCE_DB = -100;
/** A peak at or above this (dBFS) is clipping, or about to: the master strip warns. */
export const CLIP_DB = -0.1;
/** How long the clip warning stays up after the last clipping peak. */
export const CLIP_HOLD_MS = 1200;
/** The window each reading covers: 25 ms, 40 readings a second. */
export const METER_WINDOW_S = 0.025;

/** One meter reading over a window: the largest absolute sample and the root mean square, linear (1 = full scale). */
export interface MeterReading {
  peak: number;
  rms: number;
}

/** A linear level in dBFS (full scale sine peak = 0 dBFS), floored at SILENCE_DB. */
export function toDb(level: number): number {
  return level > 0 ? Math.max(SILENCE_DB, 20 * Math.log10(level)) : SILENCE_DB;
}

/** The linear factor for a gain in dB. */
export function fromDb(db: number): number {
  return 10 ** (db / 20);
}

/**
 * Accumulates planar blocks (render quanta of 128 frames in the worklet) and gives one reading per
 * `windowFrames` frames. Peak is the largest absolute sample of any channel; RMS is over every
 * sample of every channel, so a mono tone and the same tone on both channels read alike.
 */
export class MeterWindow {
  readonly #windowFrames: number;
  #frames = 0;
  #peak = 0;
  #sumSquares = 0;
  #samples = 0;

  constructor(windowFrames: number) {
    if (!(windowFrames >= 1)) throw new RangeError(`meter window ${windowFrames} frames outside 1..`);
    this.#windowFrames = Math.round(windowFrames);
  }

  /** Adds a block; returns the readings of every window it completed (usually none or one). */
  add(planes: readonly Float32Array[]): MeterReading[] {
    const length = planes[0]?.length ?? 0;
    const out: MeterReading[] = [];
    for (let at = 0; at < length; ) {
      const n = Math.min(length - at, this.#windowFrames - this.#frames);
      for (const plane of planes) {
        for (let i = at; i < at + n; i++) {
          const s = plane[i]!;
          const a = Math.abs(s);
          if (a > this.#peak) this.#peak = a;
          this.#sumSquares += s * s;
        }
        this.#samples += n;
      }
      this.#frames += n;
      at += n;
      if (this.#frames === this.#windowFrames) out.push(this.#take());
    }
    return out;
  }

  #take(): MeterReading {
    const reading = { peak: this.#peak, rms: this.#samples > 0 ? Math.sqrt(this.#sumSquares / this.#samples) : 0 };
    this.#frames = 0;
    this.#peak = 0;
    this.#sumSquares = 0;
    this.#samples = 0;
    return reading;
  }
}

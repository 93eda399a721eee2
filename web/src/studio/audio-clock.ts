import { MAX_TRIM } from '../lib/pcm.js';

export interface AudioClockLimits {
  /** How far a block may sit from its capture time before the gap is filled or the overlap cut. */
  slackUs: number;
  /** Within this, no correction at all: samples pass through untouched. */
  deadbandUs: number;
  /** The resampler trim brings an offset back within about this long (capped at MAX_TRIM). */
  horizonS: number;
  /** With a live source, the track is filled with silence up to the clock once it is this far behind. */
  stallUs: number;
}

export const DEFAULT_AUDIO_CLOCK_LIMITS: AudioClockLimits = { slackUs: 40_000, deadbandUs: 5_000, horizonS: 10, stallUs: 250_000 };

/** Where a captured block goes: `silence` samples before it, its first `skip` samples cut, resampled with `trim`. */
export interface AudioPlacement {
  silence: number;
  skip: number;
  trim: number;
}

/**
 * Keeps the audio track, a contiguous run of samples, on the session clock. Each block's capture
 * time (the source's own clock, mapped to the session clock once at the first block) says where it
 * belongs: a jump (the source stalled) becomes silence, an overlap (the track ran ahead) is cut,
 * and a slow drift (the microphone's clock against ours) is corrected continuously by trimming the
 * resampler's ratio by at most MAX_TRIM. Sans-I/O: times in microseconds, counts in samples at the
 * output rate.
 */
export class AudioClock {
  readonly #rate: number;
  readonly #limits: AudioClockLimits;
  /** Session time minus capture time, fixed at the first block. */
  #offsetUs: number | undefined;
  #written = 0;
  #cutting = false;

  constructor(rate: number, limits: AudioClockLimits = DEFAULT_AUDIO_CLOCK_LIMITS) {
    this.#rate = rate;
    this.#limits = limits;
  }

  /** Samples written so far; the next one starts at `written / rate` on the session clock. */
  get written(): number {
    return this.#written;
  }

  /** A block captured at `captureUs` (source clock) arrives at `nowUs` (session clock). */
  place(captureUs: number, nowUs: number): AudioPlacement {
    const first = this.#offsetUs === undefined;
    this.#offsetUs ??= nowUs - captureUs;
    const atUs = captureUs + this.#offsetUs;
    const aheadUs = atUs - (this.#written / this.#rate) * 1e6;
    const { slackUs, deadbandUs, horizonS } = this.#limits;
    const samples = (us: number): number => Math.round((us / 1e6) * this.#rate);
    // The first block starts where it belongs.
    if (aheadUs > slackUs || (first && aheadUs > 0)) return { silence: samples(aheadUs), skip: 0, trim: 0 };
    // Once cutting, cut all the way back: blocks of a stall delivered late overlap by up to the slack.
    if (aheadUs < -slackUs || (this.#cutting && aheadUs < -deadbandUs)) {
      this.#cutting = true;
      return { silence: 0, skip: samples(-aheadUs), trim: 0 };
    }
    this.#cutting = false;
    if (Math.abs(aheadUs) <= deadbandUs) return { silence: 0, skip: 0, trim: 0 };
    return { silence: 0, skip: 0, trim: Math.max(-MAX_TRIM, Math.min(MAX_TRIM, aheadUs / 1e6 / horizonS)) };
  }

  /** A new source (its own clock): its first block maps the clocks again. */
  resync(): void {
    this.#offsetUs = undefined;
    this.#cutting = false;
  }

  /** `samples` went to the encoder (silence included). */
  wrote(samples: number): void {
    this.#written += samples;
  }

  /**
   * Silence to write now, in whole AAC frames: up to the clock without a source; with one, only
   * once it has stalled (blocks it delivers late for that stretch are then cut by `place`).
   */
  fill(nowUs: number, hasSource: boolean): number {
    const behindUs = nowUs - (this.#written / this.#rate) * 1e6;
    if (behindUs <= (hasSource ? this.#limits.stallUs : 0)) return 0;
    return Math.floor(((behindUs / 1e6) * this.#rate) / 1024) * 1024;
  }
}

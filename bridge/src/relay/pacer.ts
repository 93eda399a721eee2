/**
 * Real-time pacing by media timestamps, as `ffmpeg -re` does: tag N is due at
 * start + (ts(N) − ts(first)). A jump of more than `maxGapMs` either way (a spliced file,
 * a timestamp reset) starts a new base instead of sleeping for hours or bursting.
 */
export class Pacer {
  readonly maxGapMs: number;
  #baseTs = 0;
  #baseAt = 0;
  #lastTs: number | undefined;

  constructor(maxGapMs = 5_000) {
    this.maxGapMs = maxGapMs;
  }

  /** Milliseconds to wait before sending a tag stamped `ts`, at clock time `now`. */
  delay(ts: number, now: number): number {
    if (this.#lastTs === undefined || Math.abs(ts - this.#lastTs) > this.maxGapMs) {
      this.#baseTs = ts;
      this.#baseAt = now;
    }
    this.#lastTs = ts;
    return Math.max(0, this.#baseAt + (ts - this.#baseTs) - now);
  }
}

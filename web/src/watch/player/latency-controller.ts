export interface LatencyOptions {
  /** Seconds between the playhead and the live edge the controller steers towards. */
  targetS: number;
  /** Beyond this the playhead jumps to the target instead of speeding up. */
  jumpS: number;
  /** Largest speed-up (and slow-down) of playbackRate, e.g. 0.1 for 0.9–1.1×. */
  maxRateChange: number;
}

export const DEFAULT_LATENCY_OPTIONS: LatencyOptions = { targetS: 0.2, jumpS: 0.45, maxRateChange: 0.05 };

// Producer and player run on the same clock, so after the first jump the distance to the edge
// stays put; it only grows after a stall. Chasing small drift is worse than useless: measured in
// headless Chromium, every playbackRate change costs a few dropped frames. So the rate moves
// only for drift past START_CHASE_S and holds until the drift is under STOP_CHASE_S.
const START_CHASE_S = 0.2;
const STOP_CHASE_S = 0.05;

/**
 * Keeps the playhead just behind the live edge: a gentle playbackRate change for small drift,
 * a jump within the buffer for large drift (the decoder starts from the previous keyframe, so
 * the picture never goes black). Call `tick` often (every 100 ms).
 */
export class LatencyController {
  readonly #video: HTMLVideoElement;
  readonly #opts: LatencyOptions;
  #chasing = false;
  #smoothed: number | undefined;
  jumps = 0;

  constructor(video: HTMLVideoElement, opts: Partial<LatencyOptions> = {}) {
    this.#video = video;
    this.#opts = { ...DEFAULT_LATENCY_OPTIONS, ...opts };
  }

  get targetS(): number {
    return this.#opts.targetS;
  }

  /** `edge`: the end of the buffered media. Returns the latency (edge − playhead) it saw. */
  tick(edge: number | undefined): number | undefined {
    const v = this.#video;
    if (edge === undefined || v.seeking) return undefined;
    const latency = edge - v.currentTime;
    const { targetS, jumpS, maxRateChange } = this.#opts;
    if (latency > jumpS) {
      v.currentTime = Math.max(0, edge - targetS);
      v.playbackRate = 1;
      this.#smoothed = undefined;
      this.jumps++;
      return latency;
    }
    // Each arriving frame moves the edge by a frame duration: steer on an average over ~1 s.
    this.#smoothed = this.#smoothed === undefined ? latency : this.#smoothed + 0.1 * (latency - this.#smoothed);
    const error = this.#smoothed - targetS;
    if (Math.abs(error) > START_CHASE_S) this.#chasing = true;
    else if (Math.abs(error) < STOP_CHASE_S) this.#chasing = false;
    // Proportional, with a floor so that a small remaining drift still closes in seconds.
    const step = Math.min(maxRateChange, Math.max(0.02, Math.abs(error)));
    const rate = this.#chasing ? 1 + Math.sign(error) * step : 1;
    if (Math.abs(v.playbackRate - rate) > 0.005) v.playbackRate = rate;
    return latency;
  }

  destroy(): void {
    this.#video.playbackRate = 1;
  }
}

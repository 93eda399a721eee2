import { ArrivalJitter, DEFAULT_TARGET_OPTIONS, targetBufferS, type TargetOptions } from './arrival-jitter.js';
import type { FrameCounter } from './frame-counter.js';

export interface LatencyOptions extends TargetOptions {
  /** Beyond the target by this much, the playhead jumps instead of speeding up. */
  jumpS: number;
  /**
   * Seconds per second the target may fall: it rises at once with the jitter (or the buffer
   * runs dry) and comes down slowly enough for playbackRate to follow without a jump.
   */
  fallPerS: number;
  /** The speed-up (and slow-down) of playbackRate while correcting, e.g. 0.03 for 0.97 or 1.03×. */
  rateChange: number;
}

export const DEFAULT_LATENCY_OPTIONS: LatencyOptions = { ...DEFAULT_TARGET_OPTIONS, jumpS: 0.3, fallPerS: 0.03, rateChange: 0.03 };

// Every playbackRate change cost a few dropped frames in headless Chromium, so the rate moves
// only for a clear error, to one value, and holds until the error is under STOP_CHASE_S: two
// changes per correction. A speed-up goes on costing frames while it lasts (at 1.03 Chromium
// dropped one frame every 1.1 s), a slow-down does not: so the playhead slows down once it is
// 0.1 s short of the target (a stall is near), and speeds up only once it is 0.2 s past it.
const START_SLOW_DOWN_S = 0.1;
const START_SPEED_UP_S = 0.2;
const STOP_CHASE_S = 0.03;
// A jump lands at least this far inside the buffered media.
const MIN_AHEAD_S = 0.05;
// A frame counter restart this soon after a rate change, with no seek in between, shows the
// change was carried out as a seek.
const RATE_SEEK_WINDOW_S = 1;

/**
 * Keeps the playhead a jitter-dependent distance behind the live edge. The distance is measured
 * from the expected edge (where the stream's end would be had everything arrived as early as
 * its earliest arrival), and the target is the arrival jitter plus a margin: with 350 ms
 * bursts the buffer just before a burst is the margin, never empty. A gentle playbackRate
 * change (±3 %) corrects small errors, a jump within the buffer large ones (the decoder starts
 * from the previous keyframe, so the picture never goes black). Call `tick` often (every 100 ms).
 */
export class LatencyController {
  readonly #video: HTMLVideoElement;
  readonly #opts: LatencyOptions;
  readonly #jitter: ArrivalJitter;
  readonly #frames: FrameCounter;
  #chasing = false;
  #target: number | undefined;
  #targetAt = 0;
  /**
   * The browser carries out a playbackRate change as a seek: WebKitGTK 2.50 flushes its
   * pipeline, the playhead stands still for about 0.2 s and the decoder starts again from the
   * keyframe, every time. Seen once, by the frame counters starting again without a `seeking`
   * event; from then on only jumps correct the distance, each one seek instead of a rate change
   * there and another back.
   */
  rateSeeks = false;
  #rateProbe: { atS: number; restarts: number } | undefined;
  #seekingAtS = -Infinity;
  readonly #onSeeking = (): void => {
    this.#seekingAtS = performance.now() / 1000;
  };
  jumps = 0;

  /** `frames` must be updated before every `tick`. */
  constructor(video: HTMLVideoElement, jitter: ArrivalJitter, frames: FrameCounter, opts: Partial<LatencyOptions> = {}) {
    this.#video = video;
    this.#jitter = jitter;
    this.#frames = frames;
    this.#opts = { ...DEFAULT_LATENCY_OPTIONS, ...opts };
    video.addEventListener('seeking', this.#onSeeking);
  }

  /** The distance behind the expected edge steered towards, seconds. */
  targetS(nowS: number): number {
    const wanted = targetBufferS(this.#jitter.jitterS(nowS), this.#opts);
    const last = this.#target;
    this.#target = last === undefined || wanted >= last ? wanted : Math.max(wanted, last - this.#opts.fallPerS * Math.max(0, nowS - this.#targetAt));
    this.#targetAt = nowS;
    return this.#target;
  }

  /** Where the playhead should be: the target behind the expected edge, within the buffer. */
  startAt(nowS: number, edge: number): number {
    const expected = Math.max(edge, this.#jitter.expectedEdge(nowS) ?? edge);
    return Math.min(expected - this.targetS(nowS), edge - MIN_AHEAD_S);
  }

  /**
   * `edge`: the end of the buffered media. Returns how far the playhead is behind the expected
   * edge, or undefined while there is nothing to steer.
   */
  tick(nowS: number, edge: number | undefined): number | undefined {
    const v = this.#video;
    this.#watchRateChange(nowS);
    if (edge === undefined || v.seeking) return undefined;
    const expected = Math.max(edge, this.#jitter.expectedEdge(nowS) ?? edge);
    const behind = expected - v.currentTime;
    const target = this.targetS(nowS);
    // Paused (waiting for a tap): the first tick after play() jumps once, not one per tick now.
    if (v.paused) return behind;
    const error = behind - target;
    if (error > this.#opts.jumpS) {
      const to = this.startAt(nowS, edge);
      if (to > v.currentTime) {
        v.currentTime = to;
        this.jumps++;
      }
      this.#setRate(1, nowS);
      this.#chasing = false;
      return behind;
    }
    if (error < -START_SLOW_DOWN_S || error > START_SPEED_UP_S) this.#chasing = true;
    else if (Math.abs(error) < STOP_CHASE_S) this.#chasing = false;
    this.#setRate(this.#chasing && !this.rateSeeks ? 1 + Math.sign(error) * this.#opts.rateChange : 1, nowS);
    return behind;
  }

  destroy(): void {
    this.#video.removeEventListener('seeking', this.#onSeeking);
    this.#setRate(1, performance.now() / 1000);
  }

  #watchRateChange(nowS: number): void {
    const probe = this.#rateProbe;
    if (probe === undefined) return;
    // A seek of anyone's since the change restarts WebKitGTK's counters too: nothing learnt.
    if (this.#seekingAtS >= probe.atS || nowS - probe.atS > RATE_SEEK_WINDOW_S) this.#rateProbe = undefined;
    else if (this.#frames.restarts > probe.restarts) {
      this.rateSeeks = true;
      this.#rateProbe = undefined;
    }
  }

  #setRate(rate: number, nowS: number): void {
    const v = this.#video;
    if (Math.abs(v.playbackRate - rate) <= 0.005) return;
    if (!this.rateSeeks) this.#rateProbe ??= { atS: nowS, restarts: this.#frames.restarts };
    // WebKitGTK 2.50 unmutes a muted element whenever its playbackRate is set (measured here);
    // the viewer, not the latency controller, decides about sound.
    const muted = v.muted;
    v.playbackRate = rate;
    if (v.muted !== muted) v.muted = muted;
  }
}

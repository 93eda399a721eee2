export interface GapOptions {
  /** The playhead standing still this long with media ahead of it counts as a stall. */
  stallMs: number;
  /** A hole in the buffer smaller than this is jumped over. */
  maxGapS: number;
  /** A seek still pending after this long, with a later range buffered, goes to that range. */
  seekStallMs: number;
}

export const DEFAULT_GAP_OPTIONS: GapOptions = { stallMs: 400, maxGapS: 3, seekStallMs: 1000 };

/**
 * Unsticks a playhead that stopped with media ahead: outside every buffered range (the stream
 * began later than 0, or a reconnect left a hole) it moves to the next range; inside one it
 * nudges forward, which makes the decoder restart.
 */
export class GapController {
  readonly #video: HTMLVideoElement;
  readonly #opts: GapOptions;
  #lastTime = -1;
  #stillSince: number | undefined;
  #seekingSince: number | undefined;
  stalls = 0;

  constructor(video: HTMLVideoElement, opts: Partial<GapOptions> = {}) {
    this.#video = video;
    this.#opts = { ...DEFAULT_GAP_OPTIONS, ...opts };
  }

  tick(now: number): void {
    const v = this.#video;
    const b = v.buffered;
    if (!v.seeking) this.#seekingSince = undefined;
    if (b.length === 0) return;
    if (v.seeking) {
      this.#unstickSeek(now, b);
      return;
    }
    const t = v.currentTime;
    // Not inside any range: jump to the next one at once (the very first frame waits on this).
    let inside = false;
    let next: number | undefined;
    for (let i = 0; i < b.length; i++) {
      if (t >= b.start(i) && t < b.end(i)) inside = true;
      if (b.start(i) > t && next === undefined) next = b.start(i);
    }
    if (!inside && next !== undefined && next - t <= this.#opts.maxGapS) {
      v.currentTime = next + 0.001;
      this.#reset();
      return;
    }
    if (v.paused || t !== this.#lastTime) {
      this.#lastTime = t;
      this.#stillSince = undefined;
      return;
    }
    this.#stillSince ??= now;
    const ahead = b.end(b.length - 1) - t;
    if (now - this.#stillSince >= this.#opts.stallMs && ahead > 0.1) {
      this.stalls++;
      v.currentTime = t + 0.05;
      this.#reset();
    }
  }

  /**
   * Seen in headless Chromium when the socket dropped a tenth of a second into playback: the
   * playhead sat in that short first range, the media after the reconnect began 40 ms past its
   * end, and the seek never completed (readyState stayed HAVE_METADATA). The next range plays.
   */
  #unstickSeek(now: number, b: TimeRanges): void {
    this.#seekingSince ??= now;
    if (now - this.#seekingSince < this.#opts.seekStallMs) return;
    const t = this.#video.currentTime;
    for (let i = 0; i < b.length; i++) {
      const start = b.start(i);
      if (start > t && start - t <= this.#opts.maxGapS) {
        this.stalls++;
        this.#video.currentTime = start + 0.001;
        this.#seekingSince = undefined;
        this.#reset();
        return;
      }
    }
  }

  #reset(): void {
    this.#lastTime = -1;
    this.#stillSince = undefined;
  }
}

export interface PlayOptions {
  /**
   * A playhead that advanced less than half the clock's time over this long, with media well
   * ahead of it, gets a kick.
   */
  stuckMs: number;
  /** Media ahead of a playhead that should be moving, beyond the latency target. */
  aheadS: number;
}

export const DEFAULT_PLAY_OPTIONS: PlayOptions = { stuckMs: 1500, aheadS: 0.3 };

/**
 * Starts playback and keeps it started: play() whenever media is buffered and the element is
 * paused (muted if the browser refuses sound without a gesture), `blocked` when it refuses even
 * that (iOS in Low Power Mode, a strict autoplay policy) until `userPlay()` runs from a tap.
 * A playhead that plays less than half the clock's time with media well ahead of it, paused,
 * seeking or playing, is kicked: a seek to the live edge, then pause and play, in turn. Seen in
 * WebKit: 15 s buffered and the playhead never left 0.05 s.
 */
export class PlayController {
  readonly #video: HTMLVideoElement;
  readonly #opts: PlayOptions;
  readonly #onBlocked: (blocked: boolean) => void;
  #pending = false;
  #blocked = false;
  // The current watch window: when it started (clock ms), and how far the playhead has played in
  // it (seconds; seeks, by anyone, do not count).
  #since: number | undefined;
  #played = 0;
  #lastTime = 0;
  #seeked = false;
  readonly #onSeeking = (): void => {
    this.#seeked = true;
  };
  #destroyed = false;
  kicks = 0;

  constructor(video: HTMLVideoElement, onBlocked: (blocked: boolean) => void, opts: Partial<PlayOptions> = {}) {
    this.#video = video;
    this.#onBlocked = onBlocked;
    this.#opts = { ...DEFAULT_PLAY_OPTIONS, ...opts };
    // Inline on iOS, not fullscreen on play.
    video.playsInline = true;
    video.setAttribute('webkit-playsinline', '');
    video.addEventListener('seeking', this.#onSeeking);
  }

  get blocked(): boolean {
    return this.#blocked;
  }

  /** From a user gesture (a tap): play with sound. */
  userPlay(): void {
    this.#video.muted = false;
    this.#play();
  }

  /** `start`: where a kicked playhead goes (the target distance behind the live edge). */
  tick(now: number, edge: number | undefined, start: () => number): void {
    const v = this.#video;
    if (edge === undefined || v.ended) return;
    if (v.paused && !this.#pending && !this.#blocked) this.#play();
    const t = v.currentTime;
    // Progress is what the playhead played, measured against the clock: the gap controller's
    // nudges and the latency controller's jumps move a stuck playhead without starting it.
    if (!this.#seeked && t > this.#lastTime) this.#played += t - this.#lastTime;
    this.#seeked = false;
    this.#lastTime = t;
    if (this.#blocked || edge - t < this.#opts.aheadS + Math.max(0, edge - start())) {
      this.#since = undefined;
      return;
    }
    if (this.#since === undefined) {
      this.#since = now;
      this.#played = 0;
      return;
    }
    const elapsedMs = now - this.#since;
    if (elapsedMs < this.#opts.stuckMs) return;
    const played = this.#played;
    this.#since = now;
    this.#played = 0;
    if (played >= (0.5 * elapsedMs) / 1000) return;
    this.kicks++;
    if (this.kicks % 2 === 1) {
      const b = v.buffered;
      v.currentTime = Math.max(b.length > 0 ? b.start(b.length - 1) : 0, start());
    } else {
      v.pause();
    }
    if (v.paused) this.#play();
  }

  destroy(): void {
    this.#destroyed = true;
    this.#video.removeEventListener('seeking', this.#onSeeking);
  }

  #play(): void {
    const v = this.#video;
    this.#pending = true;
    v.play().then(
      () => {
        this.#pending = false;
        this.#setBlocked(false);
      },
      (err: unknown) => {
        this.#pending = false;
        if (this.#destroyed || !(err instanceof DOMException) || err.name !== 'NotAllowedError') return;
        // Autoplay with sound refused: muted playback is allowed almost everywhere.
        if (!v.muted) {
          v.muted = true;
          this.#play();
          return;
        }
        this.#setBlocked(true);
      },
    );
  }

  #setBlocked(blocked: boolean): void {
    if (this.#blocked === blocked || this.#destroyed) return;
    this.#blocked = blocked;
    this.#onBlocked(blocked);
  }
}

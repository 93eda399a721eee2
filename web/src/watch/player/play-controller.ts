export interface PlayOptions {
  /** The playhead standing still this long with media well ahead of it gets a kick. */
  stuckMs: number;
  /** Media ahead of a playhead that should be moving, beyond the latency target. */
  aheadS: number;
}

export const DEFAULT_PLAY_OPTIONS: PlayOptions = { stuckMs: 1500, aheadS: 0.3 };

/**
 * Starts playback and keeps it started: play() whenever media is buffered and the element is
 * paused (muted if the browser refuses sound without a gesture), `blocked` when it refuses even
 * that (iOS in Low Power Mode, a strict autoplay policy) until `userPlay()` runs from a tap.
 * A playhead that stands still with media well ahead of it, paused or not, is kicked: a seek
 * to the live edge, then pause and play, in turn. Seen in WebKit: 15 s buffered and the
 * playhead never left 0.05 s.
 */
export class PlayController {
  readonly #video: HTMLVideoElement;
  readonly #opts: PlayOptions;
  readonly #onBlocked: (blocked: boolean) => void;
  #pending = false;
  #blocked = false;
  #lastTime = -1;
  #stillSince: number | undefined;
  #destroyed = false;
  kicks = 0;

  constructor(video: HTMLVideoElement, onBlocked: (blocked: boolean) => void, opts: Partial<PlayOptions> = {}) {
    this.#video = video;
    this.#onBlocked = onBlocked;
    this.#opts = { ...DEFAULT_PLAY_OPTIONS, ...opts };
    // Inline on iOS, not fullscreen on play.
    video.playsInline = true;
    video.setAttribute('webkit-playsinline', '');
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
    if (t !== this.#lastTime || this.#blocked || edge - t < this.#opts.aheadS + Math.max(0, edge - start())) {
      this.#lastTime = t;
      this.#stillSince = undefined;
      return;
    }
    this.#stillSince ??= now;
    if (now - this.#stillSince < this.#opts.stuckMs) return;
    this.#stillSince = now;
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

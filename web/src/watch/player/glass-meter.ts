import { clockDelta, clockLayout, readClock, type ClockLayout } from '../../lib/latency-clock.js';

/** Glass-to-glass latency read from the clock code the studio draws into frames. */
export interface GlassToGlass {
  /** Median over the window, milliseconds. */
  p50Ms: number;
  /** The latest reading, milliseconds. */
  lastMs: number;
  samples: number;
}

export interface GlassMeterOptions {
  /** Readings the median is taken over. */
  windowMs: number;
  /** Least time between two reads while frames carry a code. */
  readEveryMs: number;
  /** Least time between two looks for a code while none is found. */
  probeEveryMs: number;
}

export const DEFAULT_GLASS_METER_OPTIONS: GlassMeterOptions = { windowMs: 5000, readEveryMs: 200, probeEveryMs: 1000 };

// A code further than this from the local clock is picture content that happened to pass the
// marker and parity checks (about 1 in 2^32 / 2^17 random values lands this close).
const PLAUSIBLE_MS = 60_000;
// Valid reads in a row before codes are believed while none has been seen in the window.
const CONFIRM_READS = 2;

/**
 * Sans-I/O: readings in (when, the frame's display time on the shared clock, the code read from
 * it or undefined), the median and last glass-to-glass latency over the window out.
 */
export class GlassToGlassWindow {
  readonly #windowMs: number;
  #samples: { at: number; ms: number }[] = [];
  #streak = 0;

  constructor(windowMs = DEFAULT_GLASS_METER_OPTIONS.windowMs) {
    this.#windowMs = windowMs;
  }

  /** `shownAt` and `code` are clockNow values (milliseconds modulo 2^32). */
  push(atMs: number, shownAt: number, code: number | undefined): void {
    const ms = code === undefined ? undefined : clockDelta(shownAt, code);
    if (ms === undefined || Math.abs(ms) > PLAUSIBLE_MS) {
      this.#streak = 0;
      return;
    }
    this.#streak++;
    if (this.#streak < CONFIRM_READS && !this.found(atMs)) return;
    this.#samples.push({ at: atMs, ms });
  }

  /** Whether frames carried a code within the window. */
  found(nowMs: number): boolean {
    this.#prune(nowMs);
    return this.#samples.length > 0;
  }

  value(nowMs: number): GlassToGlass | undefined {
    this.#prune(nowMs);
    const last = this.#samples[this.#samples.length - 1];
    if (last === undefined) return undefined;
    const sorted = this.#samples.map((s) => s.ms).sort((a, b) => a - b);
    return { p50Ms: sorted[sorted.length >> 1]!, lastMs: last.ms, samples: sorted.length };
  }

  #prune(nowMs: number): void {
    let i = 0;
    while (i < this.#samples.length && this.#samples[i]!.at < nowMs - this.#windowMs) i++;
    if (i > 0) this.#samples.splice(0, i);
  }
}

// The code's row is scaled down to blocks of this many pixels before it is read.
const READ_BLOCK = 8;

/**
 * Where to read the clock code in a `width`×`height` picture: the source rows that hold it, the
 * size to scale them down to (blocks of READ_BLOCK pixels, or their own size when smaller), and
 * where the code then sits. Undefined for a picture too small to hold it.
 */
export function codeStrip(width: number, height: number): { sy: number; sh: number; width: number; height: number; layout: ClockLayout } | undefined {
  const source = clockLayout(width);
  if (width <= 0 || source.y + source.block > height) return undefined;
  const scale = Math.min(1, READ_BLOCK / source.block);
  const block = Math.round(source.block * scale);
  return { sy: source.y, sh: source.block, width: Math.round(width * scale), height: block, layout: { x: Math.round(source.x * scale), y: 0, block } };
}

/**
 * Reads the studio's clock code (web/src/lib/latency-clock.ts) from the frames a video presents,
 * in requestVideoFrameCallback, and keeps the glass-to-glass latency over the last few seconds.
 * Only the code's rows are read, scaled down, at most every `readEveryMs` (every `probeEveryMs`
 * while no frame carries a code).
 */
export class GlassMeter {
  readonly #video: HTMLVideoElement;
  readonly #opts: GlassMeterOptions;
  readonly #window: GlassToGlassWindow;
  #handle: number | undefined;
  #lastReadAt = -Infinity;
  #canvas: CanvasRenderingContext2D | undefined;
  #destroyed = false;

  static get supported(): boolean {
    return typeof HTMLVideoElement === 'function' && 'requestVideoFrameCallback' in HTMLVideoElement.prototype;
  }

  constructor(video: HTMLVideoElement, opts: Partial<GlassMeterOptions> = {}) {
    this.#video = video;
    this.#opts = { ...DEFAULT_GLASS_METER_OPTIONS, ...opts };
    this.#window = new GlassToGlassWindow(this.#opts.windowMs);
    this.#schedule();
  }

  /** Undefined while the frames carry no code. */
  value(nowMs = performance.now()): GlassToGlass | undefined {
    return this.#window.value(nowMs);
  }

  destroy(): void {
    this.#destroyed = true;
    if (this.#handle !== undefined) this.#video.cancelVideoFrameCallback(this.#handle);
    this.#handle = undefined;
    this.#canvas = undefined;
  }

  #schedule(): void {
    this.#handle = this.#video.requestVideoFrameCallback((now, meta) => this.#onFrame(now, meta));
  }

  #onFrame(now: number, meta: VideoFrameCallbackMetadata): void {
    if (this.#destroyed) return;
    this.#schedule();
    const every = this.#window.found(now) ? this.#opts.readEveryMs : this.#opts.probeEveryMs;
    if (now - this.#lastReadAt < every) return;
    this.#lastReadAt = now;
    const shownAt = Math.round(performance.timeOrigin + meta.expectedDisplayTime) % 2 ** 32;
    let code: number | undefined;
    try {
      code = this.#read();
    } catch {
      // A frame the canvas cannot take (none decoded yet, a context lost): no reading this time.
      code = undefined;
    }
    this.#window.push(now, shownAt, code);
  }

  /**
   * The code's row, drawn scaled down into a small canvas. Measured in headless Chromium 156 (a
   * 720p30 stream for 20 s, a look every second or two): no frame dropped this way in two runs,
   * where `new VideoFrame(video)` + `copyTo` of the same rows dropped 1 and 8.
   */
  #read(): number | undefined {
    const v = this.#video;
    const strip = codeStrip(v.videoWidth, v.videoHeight);
    if (strip === undefined) return undefined;
    if (this.#canvas === undefined) {
      const ctx = document.createElement('canvas').getContext('2d', { willReadFrequently: true });
      if (ctx === null) return undefined;
      this.#canvas = ctx;
    }
    const ctx = this.#canvas;
    if (ctx.canvas.width !== strip.width || ctx.canvas.height !== strip.height) {
      ctx.canvas.width = strip.width;
      ctx.canvas.height = strip.height;
    }
    ctx.drawImage(v, 0, strip.sy, v.videoWidth, strip.sh, 0, 0, strip.width, strip.height);
    return readClock(ctx.getImageData(0, 0, strip.width, strip.height), strip.layout);
  }
}

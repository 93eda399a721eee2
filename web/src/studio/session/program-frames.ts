import { clockNow } from '../../lib/latency-clock.js';
import { Compositor, type Sources } from '../compositor/compositor.js';
import type { Program } from '../compositor/program.js';
import { CostSamples } from './session-stats.js';

/**
 * The program's frames: each output frame composed (compositor/) from the newest frame of each
 * source on an OffscreenCanvas of the output size, with the latency clock when it is on, stamped on
 * the output clock. Owns the canvas and the logo's frame.
 */
export class ProgramFrames {
  readonly #width: number;
  readonly #height: number;
  readonly #duration: number;
  readonly #compositor: Compositor<VideoFrame, VideoFrame>;
  #canvas: OffscreenCanvas | undefined;
  #ctx: OffscreenCanvasRenderingContext2D | undefined;
  #logo: VideoFrame | undefined;
  #closed = false;
  /** Time to compose a frame (drawing and the VideoFrame made of the canvas), ms. */
  readonly costs = new CostSamples();

  constructor(width: number, height: number, fps: number) {
    this.#width = width;
    this.#height = height;
    this.#duration = Math.round(1e6 / fps);
    this.#compositor = new Compositor(width, height, fps);
  }

  get program(): Program {
    return this.#compositor.program;
  }

  setProgram(program: Program): void {
    this.#compositor.setProgram(program);
  }

  /** The logo's image (taken over and closed here), or none. */
  setLogo(image: ImageBitmap | null): void {
    this.#logo?.close();
    this.#logo = undefined;
    if (image !== null) {
      if (!this.#closed && image.width > 0 && image.height > 0) this.#logo = new VideoFrame(image, { timestamp: 0 });
      image.close();
    }
    this.#compositor.setLogo(this.#logo);
  }

  /**
   * The frame at `timestamp` (µs). A lone source frame of the output size with nothing over it is
   * re-stamped without a copy. With `fresh` false and nothing changed, the canvas is not redrawn.
   */
  frame(sources: Sources<VideoFrame>, fresh: boolean, timestamp: number, clock: boolean): VideoFrame | undefined {
    const duration = this.#duration;
    const as = this.#compositor.passThrough(sources, clock);
    if (as !== undefined) return new VideoFrame(as, { timestamp, duration });
    if (this.#canvas === undefined) {
      this.#canvas = new OffscreenCanvas(this.#width, this.#height);
      this.#ctx = this.#canvas.getContext('2d', { alpha: false }) ?? undefined;
    }
    const ctx = this.#ctx;
    if (ctx === undefined) return undefined;
    const t = performance.now();
    const drew = this.#compositor.draw(ctx, sources, clock ? clockNow() : undefined, fresh);
    const frame = new VideoFrame(this.#canvas, { timestamp, duration });
    if (drew) this.costs.add(performance.now() - t);
    return frame;
  }

  close(): void {
    this.setLogo(null);
    this.#closed = true;
  }
}

import { clockLayout, drawClock } from '../lib/latency-clock.js';

/** What composing needs of a picture: its size. A `VideoFrame` in the worker. */
export interface Picture {
  readonly displayWidth: number;
  readonly displayHeight: number;
}

/** The part of a 2D context composing uses; an `OffscreenCanvasRenderingContext2D` in the worker. */
export interface ComposeContext<P extends Picture> {
  fillStyle: string | CanvasGradient | CanvasPattern;
  fillRect(x: number, y: number, w: number, h: number): void;
  drawImage(image: P, dx: number, dy: number, dw: number, dh: number): void;
}

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Where a `srcWidth`×`srcHeight` picture goes in a `width`×`height` frame: as large as fits, centred. */
export function fitRect(srcWidth: number, srcHeight: number, width: number, height: number): Rect {
  const scale = Math.min(width / srcWidth, height / srcHeight);
  const w = Math.round(srcWidth * scale);
  const h = Math.round(srcHeight * scale);
  return { x: Math.round((width - w) / 2), y: Math.round((height - h) / 2), w, h };
}

/**
 * Composes one output frame of `width`×`height`: black, the source letterboxed (none: black), and
 * with `clockMs` (a clockNow value) the latency clock on top at `clockLayout(width)`, where any
 * watch page looks for it.
 */
export function composeFrame<P extends Picture>(ctx: ComposeContext<P>, width: number, height: number, source: P | undefined, clockMs?: number): void {
  const r = source === undefined ? undefined : fitRect(source.displayWidth, source.displayHeight, width, height);
  if (r === undefined || r.w < width || r.h < height) {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, width, height);
  }
  if (source !== undefined && r !== undefined) ctx.drawImage(source, r.x, r.y, r.w, r.h);
  if (clockMs !== undefined) drawClock(ctx, clockMs, clockLayout(width));
}

import type { Fit, LogoOverlay, NRect, Program, SceneId } from './program.js';

/** Layout maths in output pixels: pure functions, no canvas. */

/** What composing needs of a picture: its size. A `VideoFrame` in the worker. */
export interface Picture {
  readonly displayWidth: number;
  readonly displayHeight: number;
}

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export type SourceKind = 'camera' | 'screen';

/** One source drawn into one box of the frame. */
export interface Layer {
  source: SourceKind;
  box: Rect;
  fit: Fit;
}

/** A drawImage call: the part of the source (`s*`) and where it goes (`d*`), pixels. */
export interface Placement {
  sx: number;
  sy: number;
  sw: number;
  sh: number;
  dx: number;
  dy: number;
  dw: number;
  dh: number;
}

export function toPixels(r: NRect, width: number, height: number): Rect {
  const x = Math.round(r.x * width);
  const y = Math.round(r.y * height);
  return { x, y, w: Math.round((r.x + r.w) * width) - x, h: Math.round((r.y + r.h) * height) - y };
}

/**
 * A `srcWidth`×`srcHeight` source in `box`, its aspect ratio kept: `fit` shows all of it, centred,
 * with bars; `fill` covers the box and crops the source's centre.
 */
export function placeSource(srcWidth: number, srcHeight: number, box: Rect, fit: Fit): Placement {
  if (fit === 'fit') {
    const scale = Math.min(box.w / srcWidth, box.h / srcHeight);
    const dw = Math.round(srcWidth * scale);
    const dh = Math.round(srcHeight * scale);
    return { sx: 0, sy: 0, sw: srcWidth, sh: srcHeight, dx: box.x + Math.round((box.w - dw) / 2), dy: box.y + Math.round((box.h - dh) / 2), dw, dh };
  }
  const scale = Math.max(box.w / srcWidth, box.h / srcHeight);
  const sw = Math.min(srcWidth, box.w / scale);
  const sh = Math.min(srcHeight, box.h / scale);
  return { sx: (srcWidth - sw) / 2, sy: (srcHeight - sh) / 2, sw, sh, dx: box.x, dy: box.y, dw: box.w, dh: box.h };
}

/** Whether a placement leaves part of its box unpainted (bars to fill). */
export function leavesBars(p: Placement, box: Rect): boolean {
  return p.dx > box.x || p.dy > box.y || p.dx + p.dw < box.x + box.w || p.dy + p.dh < box.y + box.h;
}

/** The sources a scene draws, bottom first, in a `width`×`height` frame. The slate draws none. */
export function sceneLayers(scene: SceneId, program: Program, width: number, height: number): Layer[] {
  const full: Rect = { x: 0, y: 0, w: width, h: height };
  switch (scene) {
    case 'camera':
      return [{ source: 'camera', box: full, fit: program.cameraFit }];
    case 'screen':
      return [{ source: 'screen', box: full, fit: program.screenFit }];
    case 'pip':
      return [
        { source: 'screen', box: full, fit: program.screenFit },
        { source: 'camera', box: toPixels(program.pip, width, height), fit: program.cameraFit },
      ];
    case 'side': {
      const half = Math.round(width / 2);
      return [
        { source: 'screen', box: { x: 0, y: 0, w: half, h: height }, fit: program.screenFit },
        { source: 'camera', box: { x: half, y: 0, w: width - half, h: height }, fit: program.cameraFit },
      ];
    }
    case 'slate':
      return [];
  }
}

/** The logo's box: its top-left corner and width from the overlay, its height from the image, kept inside the frame. */
export function logoRect(logo: LogoOverlay, imageWidth: number, imageHeight: number, width: number, height: number): Rect {
  const w = Math.max(1, Math.min(width, Math.round(logo.size * width)));
  const h = Math.max(1, Math.min(height, Math.round((w * imageHeight) / imageWidth)));
  const x = Math.min(Math.round(logo.x * width), width - w);
  const y = Math.min(Math.round(logo.y * height), height - h);
  return { x, y, w, h };
}

/** Smooth start and end for animations, t in 0..1. */
export function ease(t: number): number {
  const c = Math.min(1, Math.max(0, t));
  return c * c * (3 - 2 * c);
}

export interface LowerThirdLayout {
  /** The bar, slid in from the left by `progress`. */
  bar: Rect;
  alpha: number;
  /** Accent stripe at the bar's left edge. */
  accent: Rect;
  textX: number;
  nameY: number;
  titleY: number;
  nameSize: number;
  titleSize: number;
}

/** Where the lower third is in a `width`×`height` frame when `progress` (0 hidden .. 1 shown) of its animation has run. */
export function lowerThirdLayout(width: number, height: number, progress: number): LowerThirdLayout {
  const e = ease(progress);
  const w = Math.round(width * 0.42);
  const h = Math.round(height * 0.14);
  const restX = Math.round(width * 0.05);
  const x = Math.round(restX - (1 - e) * (restX + w));
  const y = Math.round(height * 0.74);
  const accentW = Math.max(2, Math.round(h * 0.08));
  return {
    bar: { x, y, w, h },
    alpha: e,
    accent: { x, y, w: accentW, h },
    textX: x + accentW + Math.round(h * 0.25),
    nameY: y + Math.round(h * 0.12),
    titleY: y + Math.round(h * 0.58),
    nameSize: Math.round(h * 0.38),
    titleSize: Math.round(h * 0.26),
  };
}

/** Lines of the slate's text, wrapped at `maxChars` a line on word boundaries. */
export function wrapText(text: string, maxChars: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && line.length + 1 + word.length > maxChars) {
      lines.push(line);
      line = '';
    }
    line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

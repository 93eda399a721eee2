/**
 * What the compositor draws: the scene, its layout and the overlays, as plain data that the page
 * keeps (and persists) and the worker receives. Coordinates are normalised to the output frame
 * (0..1 across and down), so a layout holds at every preset size. Sans-DOM.
 */

export const SCENES = ['camera', 'screen', 'pip', 'side', 'slate'] as const;
export type SceneId = (typeof SCENES)[number];

export const SCENE_LABELS: Record<SceneId, string> = {
  camera: 'Camera',
  screen: 'Screen',
  pip: 'Screen + camera',
  side: 'Side by side',
  slate: 'Slate',
};

/** `fit`: all of the source, bars around it; `fill`: the whole box, the source's edges cropped. */
export type Fit = 'fit' | 'fill';
export type Transition = 'cut' | 'fade';

/** A rectangle in output-frame units: 0..1 across (x, w) and down (y, h). */
export interface NRect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface LogoOverlay {
  visible: boolean;
  /** Top-left corner, normalised. */
  x: number;
  y: number;
  /** Width as a share of the frame's width; the height follows the image's aspect ratio. */
  size: number;
  /** 0..1. */
  opacity: number;
}

export interface LowerThird {
  visible: boolean;
  name: string;
  title: string;
}

export interface Program {
  scene: SceneId;
  transition: Transition;
  /** The camera's box in the picture-in-picture scene. */
  pip: NRect;
  cameraFit: Fit;
  screenFit: Fit;
  /** The slate's text ("Starting soon", "Be right back"). */
  slate: string;
  logo: LogoOverlay;
  lowerThird: LowerThird;
}

export const MAX_SLATE_CHARS = 120;
export const MAX_LOWER_THIRD_CHARS = 60;
/** The smallest picture-in-picture box, as a share of the frame's width or height. */
export const MIN_PIP = 0.08;
export const FADE_MS = 300;
/** How long the lower third takes to slide in or out. */
export const LOWER_THIRD_MS = 400;
export const PIP_MARGIN = 0.03;

export const DEFAULT_PROGRAM: Program = {
  scene: 'camera',
  transition: 'cut',
  pip: { x: 1 - PIP_MARGIN - 0.28, y: 1 - PIP_MARGIN - 0.28, w: 0.28, h: 0.28 },
  cameraFit: 'fit',
  screenFit: 'fit',
  slate: 'Starting soon',
  logo: { visible: true, x: 0.86, y: 0.04, size: 0.1, opacity: 1 },
  lowerThird: { visible: false, name: '', title: '' },
};

export type Corner = 'top-left' | 'top-right' | 'bottom-left' | 'bottom-right';

/** The picture-in-picture box moved to `corner`, its size kept. */
export function cornerRect(corner: Corner, size: Pick<NRect, 'w' | 'h'>): NRect {
  const x = corner.endsWith('left') ? PIP_MARGIN : 1 - PIP_MARGIN - size.w;
  const y = corner.startsWith('top') ? PIP_MARGIN : 1 - PIP_MARGIN - size.h;
  return { x, y, w: size.w, h: size.h };
}

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/** A picture-in-picture box kept inside the frame and at least MIN_PIP on each side. */
export function clampRect(r: NRect): NRect {
  const w = clamp(r.w, MIN_PIP, 1);
  const h = clamp(r.h, MIN_PIP, 1);
  return { x: clamp(r.x, 0, 1 - w), y: clamp(r.y, 0, 1 - h), w, h };
}

/** Moves a box by (dx, dy), kept inside the frame. */
export function moveRect(r: NRect, dx: number, dy: number): NRect {
  return clampRect({ ...r, x: r.x + dx, y: r.y + dy });
}

/**
 * Resizes a box from its bottom-right corner by `dw` across, keeping its shape (so the camera keeps
 * its aspect ratio) and never past the frame's edge.
 */
export function resizeRect(r: NRect, dw: number): NRect {
  const ratio = r.h / r.w;
  const maxW = Math.min(1 - r.x, (1 - r.y) / ratio);
  const w = clamp(r.w + dw, Math.max(MIN_PIP, MIN_PIP / ratio), maxW);
  return { x: r.x, y: r.y, w, h: w * ratio };
}

/** Where scenes that need a source fall back when it is missing, so the program never goes black by surprise. */
export function sceneFor(scene: SceneId, has: { camera: boolean; screen: boolean }): SceneId {
  if ((scene === 'pip' || scene === 'side') && !has.screen) return 'camera';
  if (scene === 'screen' && !has.screen) return 'camera';
  if ((scene === 'pip' || scene === 'side') && !has.camera) return 'screen';
  return scene;
}

// ---- Validation: what arrives from localStorage or over postMessage is not trusted.

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isUnit = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 1;
const oneOf = <T extends string>(v: unknown, values: readonly T[]): v is T => typeof v === 'string' && (values as readonly string[]).includes(v);

function text(v: unknown, max: number, fallback: string): string {
  return typeof v === 'string' ? v.slice(0, max) : fallback;
}

function rect(v: unknown, fallback: NRect): NRect {
  if (!isRecord(v) || !isUnit(v['x']) || !isUnit(v['y']) || !isUnit(v['w']) || !isUnit(v['h'])) return fallback;
  return clampRect({ x: v['x'], y: v['y'], w: v['w'], h: v['h'] });
}

/**
 * A program from untrusted data: each field that is well formed is taken (rectangles kept inside
 * the frame, texts cut to their limits), any other comes from `fallback`. Never throws.
 */
export function readProgram(v: unknown, fallback: Program = DEFAULT_PROGRAM): Program {
  if (!isRecord(v)) return fallback;
  const logo = isRecord(v['logo']) ? v['logo'] : {};
  const lt = isRecord(v['lowerThird']) ? v['lowerThird'] : {};
  const fl = fallback.logo;
  return {
    scene: oneOf(v['scene'], SCENES) ? v['scene'] : fallback.scene,
    transition: oneOf(v['transition'], ['cut', 'fade'] as const) ? v['transition'] : fallback.transition,
    pip: rect(v['pip'], fallback.pip),
    cameraFit: oneOf(v['cameraFit'], ['fit', 'fill'] as const) ? v['cameraFit'] : fallback.cameraFit,
    screenFit: oneOf(v['screenFit'], ['fit', 'fill'] as const) ? v['screenFit'] : fallback.screenFit,
    slate: text(v['slate'], MAX_SLATE_CHARS, fallback.slate),
    logo: {
      visible: typeof logo['visible'] === 'boolean' ? logo['visible'] : fl.visible,
      x: isUnit(logo['x']) ? logo['x'] : fl.x,
      y: isUnit(logo['y']) ? logo['y'] : fl.y,
      size: isUnit(logo['size']) && logo['size'] >= 0.02 ? logo['size'] : fl.size,
      opacity: isUnit(logo['opacity']) ? logo['opacity'] : fl.opacity,
    },
    lowerThird: {
      visible: typeof lt['visible'] === 'boolean' ? lt['visible'] : fallback.lowerThird.visible,
      name: text(lt['name'], MAX_LOWER_THIRD_CHARS, fallback.lowerThird.name),
      title: text(lt['title'], MAX_LOWER_THIRD_CHARS, fallback.lowerThird.title),
    },
  };
}

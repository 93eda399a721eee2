import { clockLayout, drawClock } from '../../lib/latency-clock.js';
import { leavesBars, logoRect, lowerThirdLayout, placeSource, sceneLayers, wrapText, type Picture, type SourceKind } from './layout.js';
import { DEFAULT_PROGRAM, FADE_MS, LOWER_THIRD_MS, sceneFor, type Program, type SceneId } from './program.js';

/** The part of a 2D context the compositor uses; an `OffscreenCanvasRenderingContext2D` in the worker. */
export interface CompositorContext<P extends Picture, I extends Picture> {
  fillStyle: string | CanvasGradient | CanvasPattern;
  globalAlpha: number;
  font: string;
  textBaseline: CanvasTextBaseline;
  textAlign: CanvasTextAlign;
  fillRect(x: number, y: number, w: number, h: number): void;
  fillText(text: string, x: number, y: number, maxWidth?: number): void;
  drawImage(image: P | I, sx: number, sy: number, sw: number, sh: number, dx: number, dy: number, dw: number, dh: number): void;
}

export type Sources<P> = Partial<Record<SourceKind, P>>;

const SLATE_BACKGROUND = '#101820';
const LOWER_THIRD_BAR = '#c8102e';
const LOWER_THIRD_ACCENT = '#ffffff';

/**
 * Draws the program (the scene, then the logo, then the lower third) once per output frame, on the
 * session's output clock: animations advance by frames, not by wall time, so a late worker never
 * shortens a fade and what is drawn depends only on what was asked and when.
 */
export class Compositor<P extends Picture, I extends Picture = Picture> {
  readonly #width: number;
  readonly #height: number;
  readonly #fadeFrames: number;
  readonly #lowerThirdFrames: number;
  #program: Program = DEFAULT_PROGRAM;
  #logo: I | undefined;
  /** The scene faded out of, and how many frames of the fade are drawn. */
  #fadeFrom: SceneId | undefined;
  #fadeStep = 0;
  /** The lower third's animation, 0 (hidden) .. 1 (shown). */
  #lowerThird = 0;
  /** The scene drawn last, after fallbacks for missing sources. */
  #drawn: SceneId | undefined;
  /** The canvas holds the last program drawn and nothing asked for since changes it. */
  #settled = false;

  constructor(width: number, height: number, fps: number) {
    this.#width = width;
    this.#height = height;
    this.#fadeFrames = Math.max(1, Math.round((FADE_MS * fps) / 1000));
    this.#lowerThirdFrames = Math.max(1, Math.round((LOWER_THIRD_MS * fps) / 1000));
  }

  get program(): Program {
    return this.#program;
  }

  /** A new program; a new scene starts its fade (or cut) with the next frame drawn. */
  setProgram(program: Program): void {
    const before = this.#program.scene;
    this.#program = program;
    this.#settled = false;
    if (program.scene === before) return;
    if (program.transition === 'fade' && this.#drawn !== undefined) {
      this.#fadeFrom = this.#drawn;
      this.#fadeStep = 0;
    } else {
      this.#fadeFrom = undefined;
    }
  }

  /** The logo image (owned by the caller, which closes the one it replaces). */
  setLogo(image: I | undefined): void {
    this.#logo = image;
    this.#settled = false;
  }

  /**
   * The source frame itself when it can go out as it is: one full-frame source at the output size,
   * no overlay, no fade, no clock. Saves a copy per frame in the plain camera scene.
   */
  passThrough(sources: Sources<P>, clock: boolean): P | undefined {
    if (clock || this.#fadeFrom !== undefined || this.#lowerThird > 0 || this.#logoShown()) return undefined;
    const scene = this.#sceneNow(sources);
    if (scene !== 'camera' && scene !== 'screen') return undefined;
    const src = sources[scene];
    if (src === undefined || src.displayWidth !== this.#width || src.displayHeight !== this.#height) return undefined;
    this.#drawn = scene;
    this.#settled = false;
    this.#advanceLowerThird();
    return src;
  }

  /**
   * Draws one output frame; with `clockMs` the latency clock goes on top of everything. With
   * `fresh` false (no source brought a new frame) and nothing moving or changed since the last
   * call, the canvas already holds this frame and nothing is drawn: converting a source frame is
   * most of the cost (docs/bench/studio.md). Returns whether it drew.
   */
  draw(ctx: CompositorContext<P, I>, sources: Sources<P>, clockMs?: number, fresh = true): boolean {
    const scene = this.#sceneNow(sources);
    const moving = this.#fadeFrom !== undefined || this.#lowerThird !== (this.#program.lowerThird.visible ? 1 : 0);
    if (!fresh && this.#settled && !moving && clockMs === undefined && scene === this.#drawn) return false;
    const from = this.#fadeFrom;
    if (from !== undefined) {
      this.#fadeStep++;
      this.#drawScene(ctx, from, sources);
      ctx.globalAlpha = this.#fadeStep / this.#fadeFrames;
      this.#drawScene(ctx, scene, sources);
      ctx.globalAlpha = 1;
      if (this.#fadeStep >= this.#fadeFrames) this.#fadeFrom = undefined;
    } else {
      this.#drawScene(ctx, scene, sources);
    }
    this.#drawn = scene;
    this.#drawLogo(ctx);
    this.#advanceLowerThird();
    this.#drawLowerThird(ctx);
    if (clockMs !== undefined) drawClock(ctx, clockMs, clockLayout(this.#width));
    // A clock drawn now is wrong on the next frame.
    this.#settled = clockMs === undefined;
    return true;
  }

  #sceneNow(sources: Sources<P>): SceneId {
    return sceneFor(this.#program.scene, { camera: sources.camera !== undefined, screen: sources.screen !== undefined });
  }

  #logoShown(): boolean {
    return this.#logo !== undefined && this.#program.logo.visible && this.#program.logo.opacity > 0;
  }

  #advanceLowerThird(): void {
    const target = this.#program.lowerThird.visible ? 1 : 0;
    const step = 1 / this.#lowerThirdFrames;
    this.#lowerThird = target > this.#lowerThird ? Math.min(1, this.#lowerThird + step) : Math.max(0, this.#lowerThird - step);
  }

  #drawScene(ctx: CompositorContext<P, I>, scene: SceneId, sources: Sources<P>): void {
    const W = this.#width;
    const H = this.#height;
    if (scene === 'slate') {
      this.#drawSlate(ctx);
      return;
    }
    const layers = sceneLayers(scene, this.#program, W, H);
    const placed = layers.map((l) => {
      const src = sources[l.source];
      return { layer: l, src, at: src === undefined ? undefined : placeSource(src.displayWidth, src.displayHeight, l.box, l.fit) };
    });
    // Black wherever the bottom layer leaves bars (or has no source); layers above paint their own box.
    const bottom = placed[0];
    if (bottom === undefined || bottom.at === undefined || leavesBars(bottom.at, { x: 0, y: 0, w: W, h: H })) {
      ctx.fillStyle = '#000';
      ctx.fillRect(0, 0, W, H);
    }
    for (const { layer, src, at } of placed) {
      if (src === undefined || at === undefined) {
        ctx.fillStyle = '#000';
        ctx.fillRect(layer.box.x, layer.box.y, layer.box.w, layer.box.h);
        continue;
      }
      if (layer !== bottom?.layer && leavesBars(at, layer.box)) {
        ctx.fillStyle = '#000';
        ctx.fillRect(layer.box.x, layer.box.y, layer.box.w, layer.box.h);
      }
      ctx.drawImage(src, at.sx, at.sy, at.sw, at.sh, at.dx, at.dy, at.dw, at.dh);
    }
  }

  #drawSlate(ctx: CompositorContext<P, I>): void {
    const W = this.#width;
    const H = this.#height;
    ctx.fillStyle = SLATE_BACKGROUND;
    ctx.fillRect(0, 0, W, H);
    const size = Math.round(H / 10);
    const lines = wrapText(this.#program.slate, 24);
    ctx.fillStyle = '#fff';
    ctx.font = `600 ${size}px system-ui, sans-serif`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    const top = H / 2 - ((lines.length - 1) * size * 1.2) / 2;
    lines.forEach((line, i) => ctx.fillText(line, W / 2, top + i * size * 1.2, W * 0.9));
    ctx.textAlign = 'start';
  }

  #drawLogo(ctx: CompositorContext<P, I>): void {
    const logo = this.#logo;
    if (logo === undefined || !this.#logoShown()) return;
    const r = logoRect(this.#program.logo, logo.displayWidth, logo.displayHeight, this.#width, this.#height);
    ctx.globalAlpha = this.#program.logo.opacity;
    ctx.drawImage(logo, 0, 0, logo.displayWidth, logo.displayHeight, r.x, r.y, r.w, r.h);
    ctx.globalAlpha = 1;
  }

  #drawLowerThird(ctx: CompositorContext<P, I>): void {
    if (this.#lowerThird <= 0) return;
    const { name, title } = this.#program.lowerThird;
    const l = lowerThirdLayout(this.#width, this.#height, this.#lowerThird);
    ctx.globalAlpha = l.alpha;
    ctx.fillStyle = LOWER_THIRD_BAR;
    ctx.fillRect(l.bar.x, l.bar.y, l.bar.w, l.bar.h);
    ctx.fillStyle = LOWER_THIRD_ACCENT;
    ctx.fillRect(l.accent.x, l.accent.y, l.accent.w, l.accent.h);
    ctx.textAlign = 'start';
    ctx.textBaseline = 'top';
    const maxWidth = l.bar.x + l.bar.w - l.textX - l.nameSize * 0.5;
    ctx.font = `700 ${l.nameSize}px system-ui, sans-serif`;
    ctx.fillText(name, l.textX, l.nameY, maxWidth);
    ctx.font = `400 ${l.titleSize}px system-ui, sans-serif`;
    ctx.fillText(title, l.textX, l.titleY, maxWidth);
    ctx.globalAlpha = 1;
  }
}

import { Compositor, type CompositorContext, type Sources } from './compositor.js';
import type { Picture, SourceKind } from './layout.js';
import type { Program, SceneId } from './program.js';

/** A picture on the page: a playing `<video>` or the logo's `<img>`, with the size composing needs. */
interface PagePicture extends Picture {
  readonly element: HTMLVideoElement | HTMLImageElement;
}

/** The preview's rate: the output's, whatever the display's refresh rate. */
const PREVIEW_FPS = 30;
/** Thumbnails are cues, redrawn twice a second (and held while the worker encodes). */
const THUMBNAIL_INTERVAL_MS = 500;
/** The worker's frames are the preview until none came for this long. */
const FRAMES_STALE_MS = 500;

/** The browser tells when a `<video>` shows a new frame; without it every draw counts as fresh. */
const WATCHES_FRAMES = typeof HTMLVideoElement !== 'undefined' && typeof HTMLVideoElement.prototype.requestVideoFrameCallback === 'function';

/** A 2D context drawing page pictures through their elements, for the compositor. */
function pageContext(ctx: CanvasRenderingContext2D): CompositorContext<PagePicture, PagePicture> {
  return {
    get fillStyle() {
      return ctx.fillStyle;
    },
    set fillStyle(v) {
      ctx.fillStyle = v;
    },
    get globalAlpha() {
      return ctx.globalAlpha;
    },
    set globalAlpha(v) {
      ctx.globalAlpha = v;
    },
    get font() {
      return ctx.font;
    },
    set font(v) {
      ctx.font = v;
    },
    get textBaseline() {
      return ctx.textBaseline;
    },
    set textBaseline(v) {
      ctx.textBaseline = v;
    },
    get textAlign() {
      return ctx.textAlign;
    },
    set textAlign(v) {
      ctx.textAlign = v;
    },
    fillRect: (x, y, w, h) => ctx.fillRect(x, y, w, h),
    fillText: (text, x, y, maxWidth) => ctx.fillText(text, x, y, maxWidth),
    drawImage: (p, sx, sy, sw, sh, dx, dy, dw, dh) => ctx.drawImage(p.element, sx, sy, sw, sh, dx, dy, dw, dh),
  };
}

/** One canvas showing the program: the preview (as it goes out, fades included) or one scene's thumbnail. */
interface View {
  canvas: HTMLCanvasElement;
  raw: CanvasRenderingContext2D;
  ctx: CompositorContext<PagePicture, PagePicture>;
  compositor: Compositor<PagePicture, PagePicture>;
  /** A thumbnail's scene, always cut to; none for the preview. */
  scene: SceneId | undefined;
}

/**
 * The program as viewers will see it. Off air it is composed on the page with the same compositor
 * (and the same program) as the encode worker, at the preview's size and up to 30 fps; while the
 * worker encodes, the preview shows the worker's own output frames (15 a second) instead, so the
 * program is composed once, and the page's `<video>`s pause. A thumbnail per scene is composed here
 * twice a second off air, held while encoding. Nothing here is in the media path; composing runs on animation frames,
 * so a hidden tab costs nothing.
 */
export class ProgramMonitor {
  readonly #videos = new Map<SourceKind, HTMLVideoElement>();
  readonly #views = new Set<View>();
  #program: Program;
  #logo: PagePicture | undefined;
  #logoUrl: string | undefined;
  #frame = 0;
  #lastDraw = 0;
  #lastThumbnails = 0;
  /** When the encode worker's last frame came (performance.now()). */
  #lastWorkerFrame = -Infinity;
  /** The worker's frames are the preview: the page composes nothing and its `<video>`s are paused. */
  #encoding = false;
  /** A source brought a new frame since the last draw (always, where `requestVideoFrameCallback` is missing). */
  #fresh = true;

  constructor(program: Program) {
    this.#program = program;
  }

  /** The camera and the shared screen, each playing (muted, hidden) in its own `<video>`. */
  setSources(tracks: Partial<Record<SourceKind, MediaStreamTrack>>): void {
    for (const kind of ['camera', 'screen'] as const) {
      const track = tracks[kind];
      const video = this.#videos.get(kind);
      const current = (video?.srcObject as MediaStream | null | undefined)?.getVideoTracks()[0];
      if (track === current) continue;
      if (video !== undefined) {
        video.srcObject = null;
        this.#videos.delete(kind);
      }
      if (track === undefined) continue;
      const el = document.createElement('video');
      el.muted = true;
      el.playsInline = true;
      el.srcObject = new MediaStream([track]);
      if (!this.#encoding) el.play().catch(() => undefined);
      this.#videos.set(kind, el);
      this.#watchFrames(el);
    }
  }

  setProgram(program: Program): void {
    this.#program = program;
    for (const view of this.#views) view.compositor.setProgram(this.#viewProgram(view.scene));
  }

  /** The logo from its data URL, or none. */
  setLogo(url: string | undefined): void {
    if (url === this.#logoUrl) return;
    this.#logoUrl = url;
    if (url === undefined) {
      this.#logo = undefined;
      this.#views.forEach((v) => v.compositor.setLogo(undefined));
      return;
    }
    const img = new Image();
    img.onload = () => {
      if (url !== this.#logoUrl) return;
      this.#logo = { element: img, displayWidth: img.naturalWidth, displayHeight: img.naturalHeight };
      this.#views.forEach((v) => v.compositor.setLogo(this.#logo));
    };
    img.src = url;
  }

  /**
   * An output frame from the encode worker, as encoded: while they come, the preview shows them
   * instead of composing the program a second time on the page (the worker's cores are busy
   * enough). Taken over and closed here.
   */
  showFrame(frame: VideoFrame): void {
    this.#lastWorkerFrame = performance.now();
    if (!this.#encoding) this.#setEncoding(true);
    if (document.visibilityState !== 'hidden') {
      for (const view of this.#views) {
        if (view.scene === undefined) view.raw.drawImage(frame, 0, 0, view.canvas.width, view.canvas.height);
      }
    }
    frame.close();
  }

  /** Shows the program (or, with `scene`, that scene's thumbnail) on `canvas`; returns the detach. */
  attach(canvas: HTMLCanvasElement, scene?: SceneId): () => void {
    const ctx = canvas.getContext('2d', { alpha: false });
    if (ctx === null) return () => {};
    const compositor = new Compositor<PagePicture, PagePicture>(canvas.width, canvas.height, scene === undefined ? PREVIEW_FPS : 1000 / THUMBNAIL_INTERVAL_MS);
    const view: View = { canvas, raw: ctx, ctx: pageContext(ctx), compositor, scene };
    compositor.setProgram(this.#viewProgram(scene));
    compositor.setLogo(this.#logo);
    this.#views.add(view);
    if (this.#views.size === 1) this.#frame = requestAnimationFrame(this.#draw);
    return () => {
      this.#views.delete(view);
      if (this.#views.size === 0) cancelAnimationFrame(this.#frame);
    };
  }

  destroy(): void {
    cancelAnimationFrame(this.#frame);
    this.#views.clear();
    this.setSources({});
  }

  /** Notes each new frame of `el` while it is a source, so a still program is not redrawn. */
  #watchFrames(el: HTMLVideoElement): void {
    if (!WATCHES_FRAMES) return;
    const next = (): void => {
      if (el.srcObject === null) return;
      this.#fresh = true;
      el.requestVideoFrameCallback(next);
    };
    el.requestVideoFrameCallback(next);
  }

  /** While the worker encodes, the sources' `<video>`s pause: nothing on the page reads them. */
  #setEncoding(on: boolean): void {
    this.#encoding = on;
    for (const el of this.#videos.values()) {
      if (on) el.pause();
      else el.play().catch(() => undefined);
    }
  }

  #viewProgram(scene: SceneId | undefined): Program {
    return scene === undefined ? this.#program : { ...this.#program, scene, transition: 'cut' };
  }

  /** The sources with a picture to show (a `<video>` before its first frame has none). */
  #sources(): Sources<PagePicture> {
    const sources: Sources<PagePicture> = {};
    for (const [kind, el] of this.#videos) {
      if (el.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA && el.videoWidth > 0) sources[kind] = { element: el, displayWidth: el.videoWidth, displayHeight: el.videoHeight };
    }
    return sources;
  }

  readonly #draw = (now: number): void => {
    this.#frame = requestAnimationFrame(this.#draw);
    // A little under one period, so a 60 Hz display gives every other frame, not a beat.
    if (now - this.#lastDraw < 1000 / PREVIEW_FPS - 4) return;
    this.#lastDraw = now;
    if (this.#encoding) {
      if (performance.now() - this.#lastWorkerFrame < FRAMES_STALE_MS) return;
      this.#setEncoding(false);
    }
    const thumbnails = now - this.#lastThumbnails >= THUMBNAIL_INTERVAL_MS;
    if (thumbnails) this.#lastThumbnails = now;
    const sources = this.#sources();
    const fresh = this.#fresh;
    this.#fresh = !WATCHES_FRAMES;
    for (const view of this.#views) {
      if (view.scene !== undefined && !thumbnails) continue;
      view.compositor.draw(view.ctx, sources, undefined, view.scene !== undefined || fresh);
    }
  };
}

import { describe, expect, it } from 'vitest';
import { clockLayout, clockNow, readClock } from '../../lib/latency-clock.js';
import { VIDEO_PRESETS } from '../presets.js';
import { Compositor, type CompositorContext } from './compositor.js';
import { placeSource, type Picture } from './layout.js';

type ExecFileSync = (cmd: string, args: string[], opts: { input: Uint8Array; maxBuffer: number }) => Uint8Array;

/** Node's execFileSync: the web workspace has no Node typings, vitest runs in Node, ffmpeg is the codec. */
async function execFileSync(): Promise<ExecFileSync> {
  const childProcess = 'node:child_process';
  return ((await import(/* @vite-ignore */ childProcess)) as { execFileSync: ExecFileSync }).execFileSync;
}

/** A camera picture: RGB of each pixel. */
interface Source extends Picture {
  rgb(x: number, y: number): readonly [number, number, number];
}

interface Image {
  data: Uint8ClampedArray;
  width: number;
  height: number;
}

const COLOURS: Record<string, readonly [number, number, number]> = { '#000': [0, 0, 0], '#fff': [255, 255, 255] };

/**
 * A 2D context that rasterises into RGBA as a canvas would: fillRect with the two colours the
 * camera scene and the clock use (any other throws, as do text and transparency), drawImage scaled
 * nearest-neighbour. Starts a colour neither draws, so an unpainted pixel shows.
 */
function raster(width: number, height: number): { ctx: CompositorContext<Source, Source>; image: Image } {
  const data = new Uint8ClampedArray(width * height * 4).fill(77);
  const put = (x: number, y: number, [r, g, b]: readonly [number, number, number]): void => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    data.set([r, g, b, 255], (y * width + x) * 4);
  };
  const ctx: CompositorContext<Source, Source> = {
    fillStyle: '#000',
    globalAlpha: 1,
    font: '',
    textAlign: 'start',
    textBaseline: 'top',
    fillText() {
      throw new Error('unexpected text');
    },
    fillRect(x, y, w, h) {
      if (this.globalAlpha !== 1) throw new Error(`unexpected alpha ${this.globalAlpha}`);
      const colour = COLOURS[String(this.fillStyle)];
      if (colour === undefined) throw new Error(`unexpected fill ${String(this.fillStyle)}`);
      for (let py = y; py < y + h; py++) for (let px = x; px < x + w; px++) put(px, py, colour);
    },
    drawImage(image, sx, sy, sw, sh, dx, dy, dw, dh) {
      for (let py = 0; py < dh; py++) {
        for (let px = 0; px < dw; px++) {
          put(dx + px, dy + py, image.rgb(Math.floor(sx + (px * sw) / dw), Math.floor(sy + (py * sh) / dh)));
        }
      }
    },
  };
  return { ctx, image: { data, width, height } };
}

function pixel(image: Image, x: number, y: number): number[] {
  return Array.from(image.data.subarray((y * image.width + x) * 4, (y * image.width + x) * 4 + 3));
}

/** A busy picture: 8-pixel black/white checks, the worst neighbour for a block code. */
function checks(width: number, height: number): Source {
  return { displayWidth: width, displayHeight: height, rgb: (x, y) => ((Math.floor(x / 8) + Math.floor(y / 8)) % 2 === 0 ? [255, 255, 255] : [0, 0, 0]) };
}

function flat(width: number, height: number, v: number): Source {
  return { displayWidth: width, displayHeight: height, rgb: () => [v, v, v] };
}

/** The camera scene, as the studio starts: the camera fitted on black, the clock over it when asked. */
function composeFrame(ctx: CompositorContext<Source, Source>, width: number, height: number, source: Source | undefined, clockMs?: number): void {
  new Compositor<Source, Source>(width, height, 30).draw(ctx, source === undefined ? {} : { camera: source }, clockMs);
}

describe('composing an output frame', () => {
  it('fits a picture centred: pillarbox, letterbox, exact size', () => {
    const fit = (sw: number, sh: number, w: number, h: number): number[] => {
      const p = placeSource(sw, sh, { x: 0, y: 0, w, h }, 'fit');
      return [p.dx, p.dy, p.dw, p.dh];
    };
    expect(fit(640, 480, 1280, 720)).toEqual([160, 0, 960, 720]);
    expect(fit(1920, 800, 1280, 720)).toEqual([0, 94, 1280, 533]);
    expect(fit(1280, 720, 1280, 720)).toEqual([0, 0, 1280, 720]);
    expect(fit(3840, 2160, 854, 480)).toEqual([1, 0, 853, 480]);
  });

  it('letterboxes the camera on black and leaves no pixel unpainted', () => {
    const { ctx, image } = raster(1280, 720);
    composeFrame(ctx, 1280, 720, flat(640, 480, 200));
    expect(pixel(image, 159, 360)).toEqual([0, 0, 0]);
    expect(pixel(image, 160, 360)).toEqual([200, 200, 200]);
    expect(pixel(image, 1119, 719)).toEqual([200, 200, 200]);
    expect(pixel(image, 1120, 0)).toEqual([0, 0, 0]);
    let unpainted = 0;
    for (let i = 0; i < image.data.length; i += 4) if (image.data[i] === 77) unpainted++;
    expect(unpainted).toBe(0);
  });

  it('draws no code unless asked', () => {
    const { ctx, image } = raster(1280, 720);
    composeFrame(ctx, 1280, 720, checks(1280, 720));
    expect(readClock(image, clockLayout(1280))).toBeUndefined();
  });

  it('draws the clock over the picture where a watch page reads it, at every preset size', () => {
    for (const p of VIDEO_PRESETS) {
      for (const source of [checks(p.width, p.height), flat(640, 480, 255), flat(p.width, p.height, 0), undefined]) {
        const { ctx, image } = raster(p.width, p.height);
        const ms = clockNow();
        composeFrame(ctx, p.width, p.height, source, ms);
        expect(readClock(image, clockLayout(p.width)), `${p.id} ${source === undefined ? 'no camera' : `${source.displayWidth}×${source.displayHeight}`}`).toBe(ms);
      }
    }
    const { ctx, image } = raster(1280, 720);
    composeFrame(ctx, 1280, 720, checks(1280, 720), 0xffffffff);
    expect(readClock(image, clockLayout(1280))).toBe(0xffffffff);
  });

  it('the code on a busy picture survives H.264 at the 720p preset bitrate (ffmpeg encodes and decodes)', async () => {
    const run = await execFileSync();
    const [W, H, FPS, FRAMES] = [1280, 720, 30, 30];
    // Consecutive frames one output interval apart, the picture shifting under the code, as live.
    const clocks = Array.from({ length: FRAMES }, (_, i) => 4_294_967_000 + Math.round((i * 1000) / FPS));
    const raw = new Uint8Array(W * H * 4 * FRAMES);
    clocks.forEach((ms, i) => {
      const { ctx, image } = raster(W, H);
      const busy = checks(W, H);
      composeFrame(ctx, W, H, { ...busy, rgb: (x, y) => busy.rgb(x + 3 * i, y + i) }, ms % 2 ** 32);
      raw.set(image.data, i * W * H * 4);
    });
    const encoded = run('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgba', '-s', `${W}x${H}`, '-r', String(FPS), '-i', '-',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-b:v', '2500k', '-maxrate', '2500k', '-bufsize', '2500k',
      '-pix_fmt', 'yuv420p', '-f', 'h264', '-',
    ], { input: raw, maxBuffer: 256 * 2 ** 20 });
    const decoded = run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'h264', '-i', '-', '-f', 'rawvideo', '-pix_fmt', 'rgba', '-'], {
      input: encoded,
      maxBuffer: 256 * 2 ** 20,
    });
    expect(decoded.length).toBe(W * H * 4 * FRAMES);
    const read = clocks.map((_, i) => readClock({ data: new Uint8ClampedArray(decoded.buffer, decoded.byteOffset + i * W * H * 4, W * H * 4), width: W, height: H }, clockLayout(W)));
    // Across the 2^32 wrap too.
    expect(read).toEqual(clocks.map((ms) => ms % 2 ** 32));
  });
});

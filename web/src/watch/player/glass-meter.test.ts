import { describe, expect, it } from 'vitest';
import { clockLayout, drawClock, readClock } from '../../lib/latency-clock.js';
import { GlassToGlassWindow, codeStrip } from './glass-meter.js';

/** A textured RGBA picture with the studio's clock code drawn where the studio draws it. */
function picture(width: number, height: number, ms: number): Uint8ClampedArray {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.fill((x * 7 + y * 13) % 256, (y * width + x) * 4, (y * width + x) * 4 + 4);
  const ctx = {
    fillStyle: '#000',
    fillRect(x: number, y: number, w: number, h: number) {
      const v = this.fillStyle === '#fff' ? 255 : 0;
      for (let py = y; py < y + h; py++) data.fill(v, (py * width + x) * 4, (py * width + x + w) * 4);
    },
  };
  drawClock(ctx, ms, clockLayout(width));
  return data;
}

/** What drawImage(video, 0, sy, width, sh, 0, 0, w, h) leaves in the canvas, as area averages. */
function scaleRows(src: Uint8ClampedArray, width: number, sy: number, sh: number, w: number, h: number): { data: Uint8ClampedArray; width: number; height: number } {
  const data = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const [x0, x1] = [Math.floor((x * width) / w), Math.max(Math.floor((x * width) / w) + 1, Math.floor(((x + 1) * width) / w))];
      const [y0, y1] = [sy + Math.floor((y * sh) / h), sy + Math.max(Math.floor((y * sh) / h) + 1, Math.floor(((y + 1) * sh) / h))];
      let sum = 0;
      for (let py = y0; py < y1; py++) for (let px = x0; px < x1; px++) sum += src[(py * width + px) * 4]!;
      data.fill(Math.round(sum / ((x1 - x0) * (y1 - y0))), (y * w + x) * 4, (y * w + x) * 4 + 3);
      data[(y * w + x) * 4 + 3] = 255;
    }
  }
  return { data, width: w, height: h };
}

describe('glass-to-glass meter', () => {
  it('reads the code from only its row, scaled down, at any frame width', () => {
    for (const [width, height] of [[1280, 720], [1320, 742], [640, 360], [1920, 1080], [160, 90]] as const) {
      const ms = 0x8000_0000 + width;
      const strip = codeStrip(width, height)!;
      const source = clockLayout(width);
      expect([strip.sy, strip.sh]).toEqual([source.y, source.block]);
      expect(strip.height).toBe(Math.min(8, source.block));
      expect(strip.width * strip.height).toBeLessThanOrEqual(width * 8);
      const image = scaleRows(picture(width, height, ms), width, strip.sy, strip.sh, strip.width, strip.height);
      expect(readClock(image, strip.layout)).toBe(ms);
    }
    expect(codeStrip(1280, 40)).toBeUndefined(); // too short to hold the row
    expect(codeStrip(0, 0)).toBeUndefined(); // no frame yet
  });

  it('believes codes after two good reads, keeps the median and last over 5 s, and forgets them after', () => {
    const w = new GlassToGlassWindow(5000);
    const clock = 1_000_000;
    // A lone plausible code among unreadable frames: picture content, not a clock.
    w.push(0, clock, clock - 150);
    w.push(100, clock + 100, undefined);
    expect(w.value(100)).toBeUndefined();
    // Far from the local clock: never believed.
    w.push(200, clock + 200, clock + 200 - 3_600_000);
    w.push(300, clock + 300, clock + 300 - 3_600_000);
    expect(w.value(300)).toBeUndefined();
    const latencies = [220, 180, 900, 200, 210];
    latencies.forEach((ms, i) => w.push(1000 + i * 100, clock + 1000 + i * 100, clock + 1000 + i * 100 - ms));
    // The first of the run only confirms; then every reading counts, one bad frame included.
    w.push(1500, clock + 1500, undefined);
    w.push(1600, clock + 1600, clock + 1600 - 190);
    expect(w.value(1600)).toEqual({ p50Ms: 200, lastMs: 190, samples: 5 });
    expect(w.found(1600)).toBe(true);
    // Across the 2^32 wrap of the clock.
    w.push(1700, 5, 2 ** 32 - 195);
    expect(w.value(1700)).toMatchObject({ lastMs: 200, samples: 6 });
    expect(w.value(6550)).toMatchObject({ samples: 2 });
    expect(w.value(6701)).toBeUndefined();
    expect(w.found(6701)).toBe(false);
  });
});

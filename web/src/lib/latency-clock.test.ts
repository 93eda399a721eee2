import { describe, expect, it } from 'vitest';
import { clockDelta, clockLayout, clockNow, drawClock, readClock } from './latency-clock.js';

type ExecFileSync = (cmd: string, args: string[], opts: { input: Uint8Array; maxBuffer: number }) => Uint8Array;

/** Node's execFileSync: the web workspace has no Node typings, vitest runs in Node, ffmpeg is the codec. */
async function execFileSync(): Promise<ExecFileSync> {
  const childProcess = 'node:child_process';
  return ((await import(/* @vite-ignore */ childProcess)) as { execFileSync: ExecFileSync }).execFileSync;
}

const W = 1280;
const H = 720;

/** A canvas stand-in that rasterises fillRect with '#fff'/'#000' into RGBA, like a 2D context. */
function frame(): { ctx: { fillStyle: string; fillRect(x: number, y: number, w: number, h: number): void }; image: { data: Uint8ClampedArray; width: number; height: number } } {
  const data = new Uint8ClampedArray(W * H * 4).fill(90); // a mid-grey picture around the code
  const image = { data, width: W, height: H };
  const ctx = {
    fillStyle: '#000',
    fillRect(x: number, y: number, w: number, h: number) {
      const v = this.fillStyle === '#fff' ? 255 : 0;
      for (let py = y; py < y + h; py++) data.fill(v, (py * W + x) * 4, (py * W + x + w) * 4);
    },
  };
  return { ctx, image };
}

describe('latency clock', () => {
  it('reads back what it drew, for clocks across the 32-bit range', () => {
    const layout = clockLayout(W);
    for (const ms of [0, 1, 0x80000000, 0xffffffff, 1_763_700_000_123 % 2 ** 32, clockNow()]) {
      const { ctx, image } = frame();
      drawClock(ctx, ms, layout);
      expect(readClock(image, layout)).toBe(ms);
    }
  });

  it('survives H.264 at a low bitrate (ffmpeg encodes and decodes the frame)', async () => {
    const run = await execFileSync();
    const layout = clockLayout(W);
    const ms = 3_141_592_653;
    const { ctx, image } = frame();
    drawClock(ctx, ms, layout);
    const encoded = run('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-f', 'rawvideo', '-pix_fmt', 'rgba', '-s', `${W}x${H}`, '-i', '-',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '40', '-pix_fmt', 'yuv420p', '-f', 'h264', '-',
    ], { input: new Uint8Array(image.data.buffer), maxBuffer: 64 * 2 ** 20 });
    const decoded = run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'h264', '-i', '-', '-f', 'rawvideo', '-pix_fmt', 'rgba', '-'], {
      input: encoded,
      maxBuffer: 64 * 2 ** 20,
    });
    expect(decoded.length).toBe(W * H * 4);
    expect(readClock({ data: new Uint8ClampedArray(decoded), width: W, height: H }, layout)).toBe(ms);
  });

  it('reports no code for a picture without one, a broken marker or a wrong parity', () => {
    const layout = clockLayout(W);
    expect(readClock(frame().image, layout)).toBeUndefined();
    const marker = frame();
    drawClock(marker.ctx, 12345, layout);
    marker.ctx.fillStyle = '#fff';
    marker.ctx.fillRect(layout.x + layout.block, layout.y, layout.block, layout.block); // start marker 1 0 → 1 1
    expect(readClock(marker.image, layout)).toBeUndefined();
    const parity = frame();
    drawClock(parity.ctx, 12345, layout);
    parity.ctx.fillStyle = '#fff';
    parity.ctx.fillRect(layout.x + 2 * layout.block, layout.y, layout.block, layout.block); // top bit 0 → 1
    expect(readClock(parity.image, layout)).toBeUndefined();
    expect(readClock({ data: new Uint8ClampedArray(16), width: 2, height: 2 }, layout)).toBeUndefined();
  });

  it('subtracts across the 2^32 wrap', () => {
    expect(clockDelta(5, 2 ** 32 - 10)).toBe(15);
    expect(clockDelta(2 ** 32 - 10, 5)).toBe(-15);
    expect(clockDelta(1000, 400)).toBe(600);
  });
});

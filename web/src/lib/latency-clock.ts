/**
 * A millisecond clock drawn into video frames as a row of black and white blocks, read back from
 * the picture after the trip through encoder, server, bridge and player. Blocks survive lossy
 * compression where digits would not. Both ends use the same machine clock (clockNow), so the
 * difference is the glass-to-glass latency.
 *
 * Row layout, one block per bit: 1 0 (start marker), 32 clock bits most significant first, an
 * even parity bit, 0 1 (end marker). White is 1, black is 0.
 */

export const CLOCK_BITS = 32;
const START = [1, 0] as const;
const END = [0, 1] as const;
const BLOCKS = START.length + CLOCK_BITS + 1 + END.length;

export interface ClockLayout {
  /** Top-left corner of the row, in pixels of the frame. */
  x: number;
  y: number;
  /** Side of one square block, in pixels. */
  block: number;
}

/** The row across the top of a `width`-pixel frame, blocks as large as fit with a margin. */
export function clockLayout(width: number): ClockLayout {
  const block = Math.max(4, Math.floor(width / (BLOCKS + 3)));
  return { x: block, y: block, block };
}

/** Milliseconds of the machine clock, modulo 2^32: the same on every page of this machine. */
export function clockNow(): number {
  return Math.round(performance.timeOrigin + performance.now()) % 2 ** 32;
}

/** `later − earlier` for two clockNow values, across the 2^32 wrap. */
export function clockDelta(later: number, earlier: number): number {
  const d = (later - earlier) % 2 ** 32;
  const wrapped = d < 0 ? d + 2 ** 32 : d;
  return wrapped >= 2 ** 31 ? wrapped - 2 ** 32 : wrapped;
}

function bitsOf(ms: number): number[] {
  const bits: number[] = [];
  for (let i = CLOCK_BITS - 1; i >= 0; i--) bits.push(Math.floor(ms / 2 ** i) % 2);
  const parity = bits.reduce((a, b) => a + b, 0) % 2;
  return [...START, ...bits, parity, ...END];
}

type Canvas2D = Pick<CanvasRenderingContext2D, 'fillStyle' | 'fillRect'>;

/** Draws `ms` (a clockNow value) into a frame being composed. */
export function drawClock(ctx: Canvas2D, ms: number, layout: ClockLayout): void {
  const { x, y, block } = layout;
  bitsOf(ms).forEach((bit, i) => {
    ctx.fillStyle = bit === 1 ? '#fff' : '#000';
    ctx.fillRect(x + i * block, y, block, block);
  });
}

/**
 * Reads the clock from decoded pixels (RGBA, as from getImageData of the whole frame). Undefined
 * when the markers or the parity do not check out (no code in this frame, or too damaged).
 */
export function readClock(image: { data: Uint8ClampedArray; width: number; height: number }, layout: ClockLayout): number | undefined {
  const { x, y, block } = layout;
  if (y + block > image.height || x + BLOCKS * block > image.width) return undefined;
  const bits: number[] = [];
  const inset = Math.floor(block / 4);
  for (let i = 0; i < BLOCKS; i++) {
    let sum = 0;
    let n = 0;
    for (let py = y + inset; py < y + block - inset; py++) {
      for (let px = x + i * block + inset; px < x + (i + 1) * block - inset; px++) {
        const at = (py * image.width + px) * 4;
        sum += image.data[at]! + image.data[at + 1]! + image.data[at + 2]!;
        n++;
      }
    }
    bits.push(sum / (3 * n) >= 128 ? 1 : 0);
  }
  const head = bits.slice(0, START.length);
  const tail = bits.slice(BLOCKS - END.length);
  if (head.join() !== START.join() || tail.join() !== END.join()) return undefined;
  const data = bits.slice(START.length, START.length + CLOCK_BITS);
  const parity = bits[START.length + CLOCK_BITS];
  if (data.reduce((a, b) => a + b, 0) % 2 !== parity) return undefined;
  return data.reduce((v, b) => v * 2 + b, 0);
}

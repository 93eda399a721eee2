/** Largest share by which `convert`'s `trim` may stretch or squeeze the output (0.1 %: inaudible). */
export const MAX_TRIM = 0.001;

// Two cascaded second-order sections make a 4th-order Butterworth low-pass (Q of each section).
const BUTTERWORTH_Q = [0.5411961, 1.3065630];
/** Anti-alias cutoff when downsampling, as a share of the output rate. */
const CUTOFF = 0.4;

/** One biquad low-pass section (RBJ cookbook), its state kept per channel between blocks. */
class LowPass {
  readonly #b0: number;
  readonly #b1: number;
  readonly #b2: number;
  readonly #a1: number;
  readonly #a2: number;
  #x1 = 0;
  #x2 = 0;
  #y1 = 0;
  #y2 = 0;

  constructor(cutoff: number, rate: number, q: number) {
    const w = (2 * Math.PI * cutoff) / rate;
    const alpha = Math.sin(w) / (2 * q);
    const cos = Math.cos(w);
    const a0 = 1 + alpha;
    this.#b0 = (1 - cos) / 2 / a0;
    this.#b1 = (1 - cos) / a0;
    this.#b2 = this.#b0;
    this.#a1 = (-2 * cos) / a0;
    this.#a2 = (1 - alpha) / a0;
  }

  run(x: Float32Array): Float32Array {
    const out = new Float32Array(x.length);
    let x1 = this.#x1;
    let x2 = this.#x2;
    let y1 = this.#y1;
    let y2 = this.#y2;
    for (let i = 0; i < x.length; i++) {
      const x0 = x[i]!;
      const y0 = this.#b0 * x0 + this.#b1 * x1 + this.#b2 * x2 - this.#a1 * y1 - this.#a2 * y2;
      out[i] = y0;
      x2 = x1;
      x1 = x0;
      y2 = y1;
      y1 = y0;
    }
    this.#x1 = x1;
    this.#x2 = x2;
    this.#y1 = y1;
    this.#y2 = y2;
    return out;
  }
}

/**
 * Converts planar Float32 PCM of any rate and channel count to a fixed rate and channel count:
 * linear interpolation (enough for speech and for the odd 44.1 kHz microphone) behind a 4th-order
 * low-pass when downsampling, mono duplicated, extra channels dropped. Keeps its phase between
 * blocks, interpolating across block edges, so a stream cut into blocks converts as one.
 */
export class PcmConverter {
  readonly #outRate: number;
  readonly #outChannels: number;
  #inRate = 0;
  /**
   * Position of the next output sample, in input samples relative to the current block: in
   * [-1, 0) it lies between the previous block's last sample and this block's first.
   */
  #pos = 0;
  #last: number[] = [];
  #filters: LowPass[][] = [];

  constructor(outRate: number, outChannels: number) {
    this.#outRate = outRate;
    this.#outChannels = outChannels;
  }

  /**
   * `trim` (within ±MAX_TRIM) stretches the output by that share: 0.001 gives 0.1 % more samples,
   * to bring a microphone's clock back to the session clock.
   */
  convert(planes: Float32Array[], inRate: number, trim = 0): Float32Array[] {
    const n = planes[0]?.length ?? 0;
    let mapped = Array.from({ length: this.#outChannels }, (_, c) => planes[Math.min(c, planes.length - 1)] ?? new Float32Array(n));
    if (inRate !== this.#inRate) {
      this.#inRate = inRate;
      this.#pos = 0;
      this.#last = [];
      this.#filters = inRate > this.#outRate ? mapped.map(() => BUTTERWORTH_Q.map((q) => new LowPass(CUTOFF * this.#outRate, inRate, q))) : [];
    }
    const t = Math.max(-MAX_TRIM, Math.min(MAX_TRIM, trim));
    if (inRate === this.#outRate && t === 0) {
      this.#pos = 0;
      this.#last = mapped.map((p) => p[n - 1] ?? 0);
      return mapped.map((p) => p.slice());
    }
    if (n === 0) return mapped.map(() => new Float32Array(0));
    if (this.#filters.length > 0) mapped = mapped.map((p, c) => this.#filters[c]!.reduce((x, f) => f.run(x), p));
    const step = inRate / (this.#outRate * (1 + t));
    // Positions up to n - 1 interpolate within this block; later ones wait for the next block's first sample.
    const count = Math.max(0, Math.ceil((n - 1 - this.#pos) / step));
    const out = mapped.map(() => new Float32Array(count));
    const start = this.#pos;
    for (let c = 0; c < mapped.length; c++) {
      const src = mapped[c]!;
      const dst = out[c]!;
      const last = this.#last[c] ?? src[0]!;
      for (let i = 0; i < count; i++) {
        const pos = start + i * step;
        const i0 = Math.floor(pos);
        const f = pos - i0;
        const a = i0 < 0 ? last : src[i0]!;
        const b = src[i0 + 1]!;
        dst[i] = a + (b - a) * f;
      }
    }
    this.#pos = start + count * step - n;
    this.#last = mapped.map((p) => p[n - 1]!);
    return out;
  }
}

/**
 * Converts planar Float32 PCM of any rate and channel count to a fixed rate and channel count:
 * linear interpolation (enough for speech and for the odd 44.1 kHz microphone), mono duplicated,
 * extra channels dropped. Keeps its phase between blocks so block edges do not click.
 */
export class PcmConverter {
  readonly #outRate: number;
  readonly #outChannels: number;
  #inRate = 0;
  /** Position of the next output sample, in input samples relative to the current block. */
  #pos = 0;
  #last: number[] = [];

  constructor(outRate: number, outChannels: number) {
    this.#outRate = outRate;
    this.#outChannels = outChannels;
  }

  convert(planes: Float32Array[], inRate: number): Float32Array[] {
    const n = planes[0]?.length ?? 0;
    const mapped = Array.from({ length: this.#outChannels }, (_, c) => planes[Math.min(c, planes.length - 1)] ?? new Float32Array(n));
    if (inRate === this.#outRate) return mapped.map((p) => p.slice());
    if (inRate !== this.#inRate) {
      this.#inRate = inRate;
      this.#pos = 0;
      this.#last = [];
    }
    const step = inRate / this.#outRate;
    const count = Math.max(0, Math.ceil((n - this.#pos) / step));
    const out = mapped.map(() => new Float32Array(count));
    let pos = this.#pos;
    for (let i = 0; i < count; i++, pos += step) {
      const i0 = Math.floor(pos);
      const f = pos - i0;
      for (let c = 0; c < mapped.length; c++) {
        const src = mapped[c]!;
        const a = i0 < 0 ? (this.#last[c] ?? 0) : (src[i0] ?? 0);
        const b = src[i0 + 1] ?? src[i0] ?? a;
        out[c]![i] = a + (b - a) * f;
      }
    }
    this.#pos = pos - n;
    this.#last = mapped.map((p) => p[n - 1] ?? 0);
    return out;
  }
}

/**
 * A growable big-endian byte writer. `finish()` returns a view of the written bytes.
 */
export class ByteWriter {
  #buf: Uint8Array;
  #view: DataView;
  #len = 0;

  constructor(initialCapacity = 256) {
    this.#buf = new Uint8Array(Math.max(16, initialCapacity));
    this.#view = new DataView(this.#buf.buffer);
  }

  get length(): number {
    return this.#len;
  }

  // Callers must call #reserve before reading #buf/#view: it may replace them.
  #reserve(n: number): number {
    const need = this.#len + n;
    if (need > this.#buf.length) {
      let cap = this.#buf.length * 2;
      while (cap < need) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
      this.#view = new DataView(next.buffer);
    }
    const at = this.#len;
    this.#len = need;
    return at;
  }

  u8(v: number): this {
    const at = this.#reserve(1);
    this.#buf[at] = v;
    return this;
  }

  u16(v: number): this {
    const at = this.#reserve(2);
    this.#view.setUint16(at, v);
    return this;
  }

  u24(v: number): this {
    const at = this.#reserve(3);
    this.#buf[at] = (v >>> 16) & 0xff;
    this.#buf[at + 1] = (v >>> 8) & 0xff;
    this.#buf[at + 2] = v & 0xff;
    return this;
  }

  /** Signed 24-bit two's complement (FLV composition time). */
  i24(v: number): this {
    return this.u24(v < 0 ? v + 0x1000000 : v);
  }

  u32(v: number): this {
    const at = this.#reserve(4);
    this.#view.setUint32(at, v >>> 0);
    return this;
  }

  u32le(v: number): this {
    const at = this.#reserve(4);
    this.#view.setUint32(at, v >>> 0, true);
    return this;
  }

  i16(v: number): this {
    const at = this.#reserve(2);
    this.#view.setInt16(at, v);
    return this;
  }

  f64(v: number): this {
    const at = this.#reserve(8);
    this.#view.setFloat64(at, v);
    return this;
  }

  bytes(b: Uint8Array): this {
    const at = this.#reserve(b.length);
    this.#buf.set(b, at);
    return this;
  }

  /** Overwrite a u32 already written at `at` (for sizes known only at the end). */
  patchU32(at: number, v: number): void {
    this.#view.setUint32(at, v >>> 0);
  }

  finish(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  /** Starts over in the same buffer: a view finish() returned before now sees the new bytes. */
  reset(): this {
    this.#len = 0;
    return this;
  }
}

import { ShortInputError } from '../errors.js';

/**
 * A range-checked big-endian cursor over a byte range. Every read checks the bytes left
 * and throws ShortInputError (code SHORT_INPUT) instead of reading past `end`.
 */
export class ByteReader {
  readonly bytes: Uint8Array;
  readonly end: number;
  pos: number;
  readonly #view: DataView;

  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    this.bytes = bytes;
    this.pos = start;
    this.end = end;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get left(): number {
    return this.end - this.pos;
  }

  need(n: number, what = 'input'): void {
    if (n > this.end - this.pos) throw new ShortInputError(n, this.end - this.pos, what);
  }

  u8(): number {
    this.need(1);
    return this.bytes[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.#view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  u24(): number {
    this.need(3);
    const b = this.bytes;
    const p = this.pos;
    this.pos += 3;
    return (b[p]! << 16) | (b[p + 1]! << 8) | b[p + 2]!;
  }

  /** Signed 24-bit, as FLV composition times are. */
  i24(): number {
    const v = this.u24();
    return v & 0x800000 ? v - 0x1000000 : v;
  }

  u32(): number {
    this.need(4);
    const v = this.#view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  u32le(): number {
    this.need(4);
    const v = this.#view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  i16(): number {
    this.need(2);
    const v = this.#view.getInt16(this.pos);
    this.pos += 2;
    return v;
  }

  f64(): number {
    this.need(8);
    const v = this.#view.getFloat64(this.pos);
    this.pos += 8;
    return v;
  }

  /** A view (not a copy) of the next `n` bytes. */
  bytesView(n: number, what = 'input'): Uint8Array {
    this.need(n, what);
    const v = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }
}

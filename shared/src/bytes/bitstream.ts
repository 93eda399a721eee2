import { OnairError, ShortInputError, assert } from '../errors.js';

/**
 * An MSB-first bit cursor with Exp-Golomb reads (ITU-T H.264 §9.1), for codec headers such as
 * SPS and AudioSpecificConfig. It reads the bytes it is given: strip H.264 emulation-prevention
 * bytes first (see `nalToRbsp` in codec/avc.ts).
 */
export class BitReader {
  readonly bytes: Uint8Array;
  #bit = 0;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  /** Bit position from the start. */
  get position(): number {
    return this.#bit;
  }

  get bitsLeft(): number {
    return this.bytes.length * 8 - this.#bit;
  }

  /** One bit, 0 or 1. */
  bit(): number {
    if (this.#bit >= this.bytes.length * 8) throw new ShortInputError(1, 0, 'bitstream (bits)');
    const b = this.bytes[this.#bit >>> 3]!;
    const v = (b >>> (7 - (this.#bit & 7))) & 1;
    this.#bit++;
    return v;
  }

  flag(): boolean {
    return this.bit() === 1;
  }

  /** `n` bits (0..32) as an unsigned number. */
  bits(n: number): number {
    if (n > this.bitsLeft) throw new ShortInputError(n, this.bitsLeft, 'bitstream (bits)');
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 2 + this.bit();
    return v;
  }

  skipBits(n: number): void {
    if (n > this.bitsLeft) throw new ShortInputError(n, this.bitsLeft, 'bitstream (bits)');
    this.#bit += n;
  }

  /** ue(v): unsigned Exp-Golomb. */
  ue(): number {
    let zeros = 0;
    while (this.bit() === 0) {
      // 32 leading zeros would encode a value beyond any field H.264 defines.
      if (++zeros > 31) throw new OnairError('BITSTREAM_MALFORMED', 'Exp-Golomb code longer than 32 bits');
    }
    return 2 ** zeros - 1 + this.bits(zeros);
  }

  /** se(v): signed Exp-Golomb. */
  se(): number {
    const k = this.ue();
    return k & 1 ? (k + 1) / 2 : 0 - k / 2;
  }
}

/** An MSB-first bit writer into a fixed-size buffer, for small codec headers. */
export class BitWriter {
  readonly #out: Uint8Array;
  #bit = 0;

  constructor(capacityBytes: number) {
    this.#out = new Uint8Array(capacityBytes);
  }

  bits(n: number, v: number): this {
    assert(this.#bit + n <= this.#out.length * 8, `BitWriter: ${n} bits past capacity ${this.#out.length}`);
    for (let i = n - 1; i >= 0; i--) {
      if (Math.floor(v / 2 ** i) & 1) this.#out[this.#bit >>> 3]! |= 0x80 >>> (this.#bit & 7);
      this.#bit++;
    }
    return this;
  }

  /** The written bytes, the last one zero-padded. */
  finish(): Uint8Array {
    return this.#out.slice(0, (this.#bit + 7) >>> 3);
  }
}

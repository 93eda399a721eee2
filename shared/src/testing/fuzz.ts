// Seeded mutation fuzzing for tests (not built into shared/dist).
import { cat } from './bytes.js';

/** xorshift32 (Marsaglia 2003): deterministic, so every failure replays from its seed. */
export class Rng {
  #s: number;
  constructor(seed: number, salt = 0) {
    this.#s = (seed ^ Math.imul(salt, 0x9e3779b9)) >>> 0 || 1;
  }
  next(): number {
    let x = this.#s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#s = x >>> 0;
    return this.#s;
  }
  int(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

const BOUNDARY = [0x00, 0x7f, 0x80, 0xff] as const;
const HUGE = [
  [0xff, 0xff, 0xff, 0xff],
  [0x7f, 0xff, 0xff, 0xff],
  [0x80, 0x00, 0x00, 0x00],
  [0x00, 0xff, 0xff, 0xff],
  [0x00, 0x7f, 0xff, 0xff],
] as const;

/**
 * One to four mutations of `seed`: bit flip, boundary or random byte, truncation, insertion,
 * deletion, a 1–4 byte field set huge (at a known length field when `hints` names some), or a
 * splice with another input.
 */
export function mutate(rng: Rng, seed: Uint8Array, others: readonly Uint8Array[], hints: readonly number[] = []): Uint8Array {
  let b: Uint8Array = seed.slice();
  const rounds = 1 + rng.int(4);
  for (let r = 0; r < rounds; r++) {
    const i = rng.int(b.length);
    switch (rng.int(8)) {
      case 0:
        if (b.length) b[i]! ^= 1 << rng.int(8);
        break;
      case 1:
        if (b.length) b[i] = rng.pick(BOUNDARY);
        break;
      case 2:
        if (b.length) b[i] = rng.int(256);
        break;
      case 3:
        b = b.slice(0, rng.int(b.length + 1));
        break;
      case 4: {
        const ins = Uint8Array.from({ length: 1 + rng.int(16) }, () => (rng.int(2) ? rng.pick(BOUNDARY) : rng.int(256)));
        b = cat(b.subarray(0, i), ins, b.subarray(i));
        break;
      }
      case 5:
        b = cat(b.subarray(0, i), b.subarray(i + 1 + rng.int(16)));
        break;
      case 6: {
        const at = hints.length && rng.int(2) ? rng.pick(hints) : i;
        const value = rng.pick(HUGE);
        const width = 1 + rng.int(4);
        for (let k = 0; k < width && at + k < b.length; k++) b[at + k] = value[4 - width + k]!;
        break;
      }
      case 7: {
        const other = rng.pick(others);
        b = cat(b.subarray(0, i), other.subarray(rng.int(other.length + 1)));
        break;
      }
    }
  }
  return b;
}

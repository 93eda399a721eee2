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
  /** True once in `n` draws on average. */
  oneIn(n: number): boolean {
    return this.int(n) === 0;
  }
  bytes(n: number): Uint8Array {
    return Uint8Array.from({ length: n }, () => this.int(256));
  }
}

const BOUNDARY = [0x00, 0x7f, 0x80, 0xff] as const;

/** Sorted distinct cut points within 0..length: 1 to 8 random ones. */
export function randomCuts(rng: Rng, length: number): number[] {
  const set = new Set<number>();
  const n = 1 + rng.int(8);
  for (let i = 0; i < n; i++) set.add(rng.int(length + 1));
  return [...set].sort((a, b) => a - b);
}

/** Cut points every 1 to `max` bytes: many small pushes, as a slow socket delivers. */
export function smallCuts(rng: Rng, length: number, max = 16): number[] {
  const out: number[] = [];
  for (let at = 1 + rng.int(max); at < length; at += 1 + rng.int(max)) out.push(at);
  return out;
}

/** `bytes` cut at `at`, each piece a fresh copy: a parser must not rely on pushes sharing one buffer. */
export function pieces(bytes: Uint8Array, at: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const cut of [...at, bytes.length]) {
    out.push(bytes.slice(prev, cut));
    prev = cut;
  }
  return out;
}

/** FNV-1a: compares payloads without keeping copies of every run. */
export function fnv(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}
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

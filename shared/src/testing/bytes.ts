// Helpers for tests only (not built into shared/dist): building expected bytes by hand and
// reading failures back.
import { OnairError } from '../errors.js';

/** Bytes from hex text; whitespace is ignored and `'text'` spans are ASCII. */
export function h(text: string): Uint8Array {
  const out: number[] = [];
  for (const part of text.split(/('[^']*')/)) {
    if (part.startsWith("'")) for (const c of part.slice(1, -1)) out.push(c.charCodeAt(0));
    else for (const b of part.trim().split(/\s+/).filter(Boolean)) out.push(parseInt(b, 16));
  }
  return Uint8Array.from(out);
}

export function cat(...parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The OnairError code `fn` throws (any other error as text), or undefined when it returns. */
export function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof OnairError ? err.code : String(err);
  }
  return undefined;
}

/** Hex text of (at most the first 4 KiB of) `b`, to replay a failing input. */
export function hexOf(b: Uint8Array): string {
  const shown = b.length > 4096 ? b.subarray(0, 4096) : b;
  return Array.from(shown, (x) => x.toString(16).padStart(2, '0')).join(' ') + (shown === b ? '' : ` … (${b.length} bytes)`);
}

/** RBSP to NAL unit payload: an emulation prevention byte after every 00 00 that precedes 00..03, as an encoder writes it. */
export function addEmulationPrevention(rbsp: Uint8Array): Uint8Array {
  const out: number[] = [];
  let zeros = 0;
  for (const b of rbsp) {
    if (zeros >= 2 && b <= 3) {
      out.push(3);
      zeros = 0;
    }
    out.push(b);
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return Uint8Array.from(out);
}

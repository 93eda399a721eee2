/** Bytes as people read them: 812 B, 34 kB, 1.2 MB. */
export function bytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${Math.round(n / 1e3)} kB` : `${n} B`;
}

/** Whole seconds left of a countdown in ms, never below 0. */
export function secondsLeft(ms: number | undefined): number {
  return Math.max(0, Math.ceil((ms ?? 0) / 1000));
}

/** Platforms ask for a keyframe every 2 s; above this they warn or refuse the stream. */
export const MAX_KEYFRAME_INTERVAL_S = 4;

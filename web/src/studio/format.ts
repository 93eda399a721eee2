/** Bits per second as the stats show them. */
export function kbps(bits: number): string {
  return bits >= 1e6 ? `${(bits / 1e6).toFixed(2)} Mbps` : `${Math.round(bits / 1e3)} kbps`;
}

// One formula for bytes and countdowns across the studio and the Restream view.
export { bytes, secondsLeft } from '../restream/format.js';

/** Elapsed time as hh:mm:ss. */
export function clock(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(Math.floor(s / 3600))}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}`;
}

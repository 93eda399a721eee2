/** Bits per second as the stats show them. */
export function kbps(bits: number): string {
  return bits >= 1e6 ? `${(bits / 1e6).toFixed(2)} Mbps` : `${Math.round(bits / 1e3)} kbps`;
}

export function bytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${Math.round(n / 1e3)} kB` : `${n} B`;
}

/** Elapsed time as hh:mm:ss. */
export function clock(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(Math.floor(s / 3600))}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}`;
}

import { spawnSync } from 'node:child_process';

export interface VideoPacket {
  /** Presentation time, s. */
  s: number;
  key: boolean;
}

/** The video packets of a file as ffprobe reads them, in presentation order. */
export function probeVideoPackets(file: string): VideoPacket[] {
  const out = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts_time,flags', '-of', 'json', file], { maxBuffer: 64 * 1024 * 1024, timeout: 60_000 });
  if (out.status !== 0) throw new Error(`ffprobe ${file} failed: ${out.stderr.toString('utf8')}`);
  const packets = (JSON.parse(out.stdout.toString('utf8')) as { packets: { pts_time: string; flags: string }[] }).packets;
  return packets.map((p) => ({ s: Number(p.pts_time), key: p.flags.startsWith('K') })).sort((a, b) => a.s - b.s);
}

/** ffmpeg decodes every video frame: the frames decoded and whatever it complained about. */
export function decodeVideo(file: string): { frames: number; errors: string } {
  const out = spawnSync('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-i', file, '-map', '0:v', '-f', 'framemd5', '-'], { maxBuffer: 256 * 1024 * 1024, timeout: 120_000 });
  return { frames: out.stdout.toString('utf8').split('\n').filter((l) => /^\s*0,/.test(l)).length, errors: out.stderr.toString('utf8').trim() };
}

/** Keyframe times, s. */
export function keyframeTimes(packets: readonly VideoPacket[]): number[] {
  return packets.filter((p) => p.key).map((p) => p.s);
}

/**
 * GOPs that miss frames: each GOP but the last (which ends with the stream) should hold the frames
 * its length calls for at its frame rate (the median step between its frames: a halved frame rate
 * shows as 2 / fps), within 20 % (frames the page dropped for a busy encoder). Its length runs to
 * the next keyframe, or `gopS` when the next keyframe is further (whole GOPs dropped after it). A
 * GOP whose tail was cut, or that lost frames in the middle, falls short. One line per short GOP.
 */
export function partialGops(packets: readonly VideoPacket[], fps: number, gopS = 2): string[] {
  const keys = keyframeTimes(packets);
  const short: string[] = [];
  for (let g = 0; g + 1 < keys.length; g++) {
    const inGop = packets.filter((p) => p.s >= keys[g]! && p.s < keys[g + 1]!);
    const steps = inGop
      .slice(1)
      .map((p, i) => p.s - inGop[i]!.s)
      .sort((a, b) => a - b);
    const step = Math.max(1 / fps, steps[Math.floor(steps.length / 2)] ?? 1 / fps);
    const expected = Math.min(keys[g + 1]! - keys[g]!, gopS) / step;
    if (inGop.length < 0.8 * expected) short.push(`GOP at ${keys[g]!.toFixed(2)} s: ${inGop.length} frames of ${expected.toFixed(0)}`);
  }
  return short;
}

// Real AV1 and HEVC bitstreams for the Enhanced RTMP tests: small MP4s made by ffmpeg (libaom,
// libx265) at test time, read back with mp4box. Debian's ffmpeg 5.1 cannot write Enhanced RTMP
// FLV, so the tests mux these frames themselves and judge the result with mp4box and ffprobe.
// Cached under node_modules/.cache/onair-video-seeds/ so parallel test files make each one once.
// Tests only, on Node.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readWithMp4box } from './mp4box-samples.js';

const CACHE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'node_modules', '.cache', 'onair-video-seeds');

const AV1 = ['-c:v', 'libaom-av1', '-cpu-used', '8', '-row-mt', '1', '-g', '5'];
const HEVC = (params: string): string[] => ['-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', `log-level=error:${params}`, '-tag:v', 'hvc1'];

/** What each MP4 exercises, and the ffmpeg arguments that make it. */
export const VIDEO_RECIPES = {
  // AV1 main profile, 8-bit, keyframe every 5 frames.
  av1: { fourcc: 'av01', args: ['-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=10', '-t', '1', ...AV1, '-pix_fmt', 'yuv420p'] },
  // AV1 10-bit at an odd size: the bit depth in the codec string, the size from the sequence header.
  av1_10bit: { fourcc: 'av01', args: ['-f', 'lavfi', '-i', 'testsrc2=size=170x98:rate=10', '-t', '0.6', ...AV1, '-pix_fmt', 'yuv420p10le'] },
  // HEVC Main with B-frames (composition times), odd size (conformance window).
  hevc: { fourcc: 'hvc1', args: ['-f', 'lavfi', '-i', 'testsrc2=size=170x98:rate=10', '-t', '1', ...HEVC('keyint=5:min-keyint=5:bframes=2'), '-pix_fmt', 'yuv420p'] },
  // 1080p: coded as 1088 lines, cropped by the conformance window.
  hevc_1080p: { fourcc: 'hvc1', args: ['-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=10', '-t', '0.3', ...HEVC('keyint=5:bframes=0'), '-pix_fmt', 'yuv420p'] },
  // Range extensions, 4:4:4 10-bit: another profile, compatibility flags and constraint bytes.
  hevc_444_10bit: { fourcc: 'hvc1', args: ['-f', 'lavfi', '-i', 'testsrc2=size=96x64:rate=10', '-t', '0.5', ...HEVC('keyint=5:bframes=0'), '-pix_fmt', 'yuv444p10le'] },
} as const satisfies Record<string, { fourcc: 'av01' | 'hvc1'; args: readonly string[] }>;

export type VideoSeedName = keyof typeof VIDEO_RECIPES;

export interface SeedFrame {
  /** Decode time in ms from the first frame's; composition offset in ms. */
  dtsMs: number;
  ctsMs: number;
  keyframe: boolean;
  data: Uint8Array;
}

export interface VideoSeed {
  name: VideoSeedName;
  fourcc: 'av01' | 'hvc1';
  /** The MP4 file ffmpeg made. */
  path: string;
  /** The av1C or hvcC box payload of the file. */
  config: Uint8Array;
  /** mp4box's codec string for the file. */
  codec: string;
  /** ffprobe's picture size. */
  width: number;
  height: number;
  frames: SeedFrame[];
}

/** The payload of the first `type` box in `bytes` (found by its name; the files are small). */
function boxPayload(bytes: Uint8Array, type: string): Uint8Array {
  const name = Array.from(type, (c) => c.charCodeAt(0));
  for (let i = 4; i + 4 <= bytes.length; i++) {
    if (name.every((b, j) => bytes[i + j] === b)) {
      const size = new DataView(bytes.buffer, bytes.byteOffset).getUint32(i - 4);
      return bytes.slice(i + 4, i - 4 + size);
    }
  }
  throw new Error(`no ${type} box`);
}

function mp4File(name: string, args: readonly string[]): string {
  const key = createHash('sha256').update(args.join('\0')).digest('hex').slice(0, 12);
  const file = join(CACHE, `${name}-${key}.mp4`);
  if (!existsSync(file)) {
    mkdirSync(CACHE, { recursive: true });
    // Written aside and renamed: parallel test files never read half a file.
    const partial = `${file}.${process.pid}.partial.mp4`;
    execFileSync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', ...args, '-an', partial]);
    renameSync(partial, file);
  }
  return file;
}

const seeds = new Map<VideoSeedName, VideoSeed>();

/** One seed: ffmpeg runs once per recipe, ever (cached), mp4box and ffprobe once per process. */
export function videoSeed(name: VideoSeedName): VideoSeed {
  const known = seeds.get(name);
  if (known !== undefined) return known;
  const { fourcc, args } = VIDEO_RECIPES[name];
  const path = mp4File(name, args);
  const bytes = new Uint8Array(readFileSync(path));
  const { info, samples } = readWithMp4box(bytes);
  const track = info.tracks[0]!;
  const list = samples.get(track.id)!;
  const ms = (t: number): number => Math.round((t * 1000) / track.timescale);
  const first = list[0]!.dts;
  const frames = list.map((s) => ({ dtsMs: ms(s.dts - first), ctsMs: ms(s.cts - first) - ms(s.dts - first), keyframe: s.is_sync, data: new Uint8Array(s.data!) }));
  const probe = JSON.parse(
    execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=width,height', '-of', 'json', path], { encoding: 'utf8' }),
  ) as { streams: { width: number; height: number }[] };
  const seed: VideoSeed = {
    name,
    fourcc,
    path,
    config: boxPayload(bytes, fourcc === 'av01' ? 'av1C' : 'hvcC'),
    codec: track.codec,
    width: probe.streams[0]!.width,
    height: probe.streams[0]!.height,
    frames,
  };
  seeds.set(name, seed);
  return seed;
}

/** The MD5 of every decoded picture of a file's video, in order (ffmpeg's framemd5 muxer). */
export function decodedFrameHashes(path: string): string[] {
  const out = execFileSync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-i', path, '-map', '0:v:0', '-f', 'framemd5', '-'], {
    encoding: 'utf8',
  });
  return out
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(',').pop()!.trim());
}

/**
 * What ffmpeg makes of an MP4 given as bytes (written to a temporary file, removed after): each
 * video packet's presentation and decode time in the file's timescale, and each decoded picture's
 * MD5. For tests in the web workspace, which has no Node typings: they import this module by a
 * path the type checker does not follow.
 */
export function probeMp4(mp4: Uint8Array): { packets: [pts: number, dts: number][]; hashes: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'onair-probe-'));
  try {
    const file = join(dir, 'probe.mp4');
    writeFileSync(file, mp4);
    const csv = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts,dts', '-of', 'csv=p=0', file], { encoding: 'utf8' });
    const packets = csv
      .trim()
      .split('\n')
      .map((l) => l.split(',').map(Number) as [number, number]);
    return { packets, hashes: decodedFrameHashes(file) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runChecked } from './proc.js';

// Found by looking upward rather than by a fixed depth: the benchmark runs a transpiled copy of
// the harness from node_modules/.cache.
function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'onair') return dir;
    if (dirname(dir) === dir) throw new Error(`no onair package.json above ${from}`);
  }
}

/** The repository root. */
export const REPO_ROOT = findRepoRoot(dirname(fileURLToPath(import.meta.url)));
export const FIXTURE_CACHE = join(REPO_ROOT, 'node_modules', '.cache', 'onair-fixtures');

// Bump when the recipe changes so cached files made by an older recipe are not reused.
const RECIPE = 2;

export interface FlvFixtureOptions {
  seconds: number;
  /** Shifts every timestamp (`-output_ts_offset`); sequence headers and metadata stay at 0. */
  tsOffsetSeconds?: number;
  /** Consecutive B-frames (`-bf`), 2 unless given; 0 gives frames in presentation order. */
  bFrames?: number;
}

/**
 * An FLV made by ffmpeg, as a camera encoder would: H.264 (libx264 ultrafast, B-frames
 * `-bf 2` unless `bFrames` says otherwise, testsrc2 1280x720 at 30 fps, a keyframe every 2 s,
 * ~2.5 Mbps) and AAC-LC (a sine, 48 kHz stereo, 128 kbps). Cached under node_modules/.cache/onair-fixtures/, keyed by the options.
 */
export async function flvFixture(options: FlvFixtureOptions): Promise<string> {
  const offset = options.tsOffsetSeconds ?? 0;
  const bFrames = options.bFrames ?? 2;
  const file = join(FIXTURE_CACHE, `r${RECIPE}-h264bf${bFrames}-720p30-aac48k-${options.seconds}s${offset ? `-at${offset}s` : ''}.flv`);
  if (existsSync(file)) return file;
  mkdirSync(FIXTURE_CACHE, { recursive: true });
  // Written aside and renamed so that parallel test workers never read a half-written file.
  const partial = `${file}.${process.pid}.partial`;
  await runChecked('ffmpeg', [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', String(options.seconds),
    '-map', '0:v', '-map', '1:a',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
    '-bf', String(bFrames), '-g', '60', '-keyint_min', '60', '-sc_threshold', '0',
    '-b:v', '2500k', '-maxrate', '2500k', '-bufsize', '5000k',
    '-c:a', 'aac', '-ac', '2', '-ar', '48000', '-b:a', '128k',
    ...(offset ? ['-output_ts_offset', String(offset)] : []),
    '-f', 'flv', partial,
  ], { timeoutMs: 300_000 });
  renameSync(partial, file);
  return file;
}

/** 4 s: the default for integration tests. */
export const shortFlv = (): Promise<string> => flvFixture({ seconds: 4 });

/**
 * 10 s whose media timestamps start at 16,770 s, so they pass 0xFFFFFF ms (16,777.215 s)
 * after about 7.2 s: RTMP must carry them as extended timestamps.
 */
export const lateTimestampFlv = (): Promise<string> => flvFixture({ seconds: 10, tsOffsetSeconds: 16_770 });

/** 60 s, for the benchmark. */
export const benchFlv = (): Promise<string> => flvFixture({ seconds: 60 });

/** 240 s, for the benchmark: the CPU per byte is the slope between this file and benchFlv(). */
export const benchLongFlv = (): Promise<string> => flvFixture({ seconds: 240 });

/**
 * A copy of `source` with every tag's timestamp, metadata and sequence headers included, moved
 * by `ms` (FLV tag header: type u8, size u24, timestamp u24 + extension u8; FLV spec E.4.1).
 * ffmpeg cannot make this: its FLV muxer always writes the sequence headers at 0.
 */
export function shiftedFlv(source: string, ms: number): string {
  const file = join(FIXTURE_CACHE, basename(source).replace(/\.flv$/, `-shifted${ms}ms.flv`));
  if (existsSync(file)) return file;
  const flv = readFileSync(source);
  let at = flv.readUInt32BE(5) + 4; // header, then PreviousTagSize0
  while (at + 11 <= flv.length) {
    const size = flv.readUIntBE(at + 1, 3);
    const ts = (flv.readUIntBE(at + 4, 3) | (flv.readUInt8(at + 7) << 24)) + ms;
    flv.writeUIntBE(ts & 0xffffff, at + 4, 3);
    flv.writeUInt8(ts >>> 24, at + 7);
    at += 11 + size + 4;
  }
  const partial = `${file}.${process.pid}.partial`;
  writeFileSync(partial, flv);
  renameSync(partial, file);
  return file;
}

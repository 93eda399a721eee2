// Seeds for the fuzz tests: small FLVs made by ffmpeg (libx264 and its AAC encoder), so every
// parser starts from what real encoders write. Cached under node_modules/.cache/onair-fuzz-seeds/
// so parallel test files make each one once. Tests only, on Node.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAudioSpecificConfig } from '../codec/aac.js';
import { parseAvcC } from '../codec/avc.js';
import { AacPacketType, AvcPacketType, parseAudioBody, parseVideoBody } from '../flv/flv-media.js';
import { FlvReader } from '../flv/flv-reader.js';
import { FlvTagType, type FlvTag } from '../flv/flv-tag.js';

const CACHE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'node_modules', '.cache', 'onair-fuzz-seeds');

/** What each FLV exercises, and the ffmpeg arguments that make it. */
const RECIPES: Readonly<Record<string, readonly string[]>> = {
  // High profile, odd size: frame cropping, chroma format and bit depth fields; AAC mono 22.05 kHz.
  high: [
    '-f', 'lavfi', '-i', 'testsrc2=size=170x98:rate=10', '-f', 'lavfi', '-i', 'sine=sample_rate=22050', '-t', '0.3',
    '-c:v', 'libx264', '-profile:v', 'high', '-g', '2', '-c:a', 'aac', '-ac', '1',
  ],
  // Baseline with a non-square sample aspect ratio in the VUI.
  baseline: [
    '-f', 'lavfi', '-i', 'testsrc2=size=96x64:rate=10', '-f', 'lavfi', '-i', 'sine=sample_rate=22050', '-t', '0.3',
    '-c:v', 'libx264', '-profile:v', 'baseline', '-vf', 'setsar=4/3', '-c:a', 'aac', '-ac', '1',
  ],
  // The integration fixture's recipe (bridge/test/harness/fixtures.ts) at a small size: B-frames
  // (composition times), a keyframe every 10 frames, AAC-LC 48 kHz stereo.
  bframes: [
    '-f', 'lavfi', '-i', 'testsrc2=size=128x72:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '1',
    '-map', '0:v', '-map', '1:a', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-bf', '2', '-g', '10',
    '-c:a', 'aac', '-ac', '2', '-ar', '48000', '-b:a', '64k',
  ],
  // High 4:4:4 10-bit: chroma_format_idc 3 and bit depth fields in the SPS and the avcC.
  high444: ['-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=10', '-t', '0.3', '-c:v', 'libx264', '-pix_fmt', 'yuv444p10le', '-profile:v', 'high444'],
  // Interlaced: frame_mbs_only_flag 0.
  interlaced: ['-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=10', '-t', '0.3', '-c:v', 'libx264', '-x264-params', 'interlaced=1'],
};

function flvFile(name: string, args: readonly string[]): Uint8Array {
  const key = createHash('sha256').update(args.join('\0')).digest('hex').slice(0, 12);
  const file = join(CACHE, `${name}-${key}.flv`);
  if (!existsSync(file)) {
    mkdirSync(CACHE, { recursive: true });
    const bytes = execFileSync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', ...args, '-f', 'flv', '-']);
    // Written aside and renamed: parallel test files never read half a file.
    const partial = `${file}.${process.pid}.partial`;
    writeFileSync(partial, bytes);
    renameSync(partial, file);
  }
  return new Uint8Array(readFileSync(file));
}

export interface MediaSeeds {
  /** Whole FLV files, by recipe name. */
  files: Record<string, Uint8Array>;
  /** Every file's tags, copies that own their buffers. */
  tags: Record<string, FlvTag[]>;
  avcCs: Uint8Array[];
  sps: Uint8Array[];
  ascs: Uint8Array[];
}

let seeds: MediaSeeds | undefined;

/** The seed FLVs and the codec configurations inside them (ffmpeg runs once per recipe). */
export function mediaSeeds(): MediaSeeds {
  if (seeds !== undefined) return seeds;
  const files: Record<string, Uint8Array> = {};
  const tags: Record<string, FlvTag[]> = {};
  const avcCs: Uint8Array[] = [];
  const sps: Uint8Array[] = [];
  const ascs: Uint8Array[] = [];
  for (const [name, args] of Object.entries(RECIPES)) {
    const file = flvFile(name, args);
    files[name] = file;
    const list = new FlvReader().push(file).map((t) => ({ type: t.type, timestamp: t.timestamp, data: t.data.slice() }));
    tags[name] = list;
    for (const t of list) {
      if (t.type === FlvTagType.Video) {
        const v = parseVideoBody(t.data);
        if (v.packetType === AvcPacketType.SequenceHeader) {
          avcCs.push(v.data.slice());
          sps.push(...parseAvcC(v.data).sps.map((s) => s.slice()));
        }
      } else if (t.type === FlvTagType.Audio) {
        const a = parseAudioBody(t.data);
        if (a.packetType === AacPacketType.SequenceHeader) ascs.push(a.data.slice());
      }
    }
  }
  // HE-AAC with its explicit SBR type, and an escaped object type with an explicit rate.
  ascs.push(
    buildAudioSpecificConfig({ objectType: 5, sampleRate: 24000, channels: 1 }),
    buildAudioSpecificConfig({ objectType: 42, sampleRate: 12345, channels: 8 }),
  );
  seeds = { files, tags, avcCs, sps, ascs };
  return seeds;
}

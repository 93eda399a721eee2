import { FlvReader, FlvTagType, parseAudioBody, parseVideoBody } from '@onair/shared';
import { beforeAll, describe, expect, it } from 'vitest';
import { readWithMp4box } from '../../../../shared/src/testing/mp4box-samples.js';
import { Fmp4Recording, playableLength, type RecordingFormat } from './fmp4-recording.js';

interface ExecFileSync {
  (cmd: string, args: string[], opts: { input?: Uint8Array; maxBuffer: number; encoding: 'utf8' }): string;
  (cmd: string, args: string[], opts: { input?: Uint8Array; maxBuffer: number }): Uint8Array;
}

/** Node's execFileSync: the web workspace has no Node typings, vitest runs in Node, ffmpeg and ffprobe judge. */
async function execFileSync(): Promise<ExecFileSync> {
  const childProcess = 'node:child_process';
  return ((await import(/* @vite-ignore */ childProcess)) as { execFileSync: ExecFileSync }).execFileSync;
}

const FPS = 25;
const SECONDS = 4;
const FRAME_US = 1e6 / FPS;
const MAX_BUFFER = 256 * 1024 * 1024;

interface Chunk {
  kind: 'video' | 'audio';
  data: Uint8Array;
  key: boolean;
  us: number;
}

interface Source {
  flv: Uint8Array;
  avcC: Uint8Array;
  asc: Uint8Array;
  /** In the order a realtime encoder pair would hand them over: video in decode order, audio in between. */
  chunks: Chunk[];
  keyframes: number;
}

/** H.264 (libx264) + AAC made by ffmpeg, read back from its FLV as the encoders' chunks. */
async function source(x264: string[]): Promise<Source> {
  const exec = await execFileSync();
  const flv = exec('ffmpeg', [
    '-hide_banner', '-nostdin', '-loglevel', 'error',
    '-f', 'lavfi', '-i', `testsrc2=size=320x180:rate=${FPS}`, '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', String(SECONDS), '-c:v', 'libx264', '-preset', 'veryfast', '-g', String(2 * FPS), ...x264,
    '-c:a', 'aac', '-ac', '2', '-f', 'flv', '-',
  ], { maxBuffer: MAX_BUFFER });
  let avcC: Uint8Array | undefined;
  let asc: Uint8Array | undefined;
  const chunks: Chunk[] = [];
  let audioStartMs: number | undefined;
  let audioFrames = 0;
  let keyframes = 0;
  for (const t of new FlvReader().push(new Uint8Array(flv))) {
    if (t.type === FlvTagType.Video) {
      const v = parseVideoBody(t.data);
      if (v.packetType === 0) avcC = v.data;
      else if (v.packetType === 1) {
        // FLV times are milliseconds; the encoder's are the frame clock's microseconds.
        const frame = Math.round((t.timestamp + v.cts) / (FRAME_US / 1000));
        chunks.push({ kind: 'video', data: v.data, key: v.keyframe, us: 1_000_000 + frame * FRAME_US });
        if (v.keyframe) keyframes++;
      }
    } else if (t.type === FlvTagType.Audio) {
      const a = parseAudioBody(t.data);
      if (a.packetType === 0) asc = a.data;
      else {
        audioStartMs ??= t.timestamp;
        chunks.push({ kind: 'audio', data: a.data, key: true, us: 1_000_000 + audioStartMs * 1000 + (audioFrames++ * 1024 * 1e6) / 48_000 });
      }
    }
  }
  return { flv: new Uint8Array(flv), avcC: avcC!, asc: asc!, chunks, keyframes };
}

function formatOf(s: Source): RecordingFormat {
  return { width: 320, height: 180, fps: FPS, sampleRate: 48_000, channels: 2, asc: s.asc };
}

/** Records every chunk; `pieces` are the bytes as they were handed out, one entry per append. */
function record(s: Source, newAvcCAtKeyframe = -1): { pieces: Uint8Array[]; rec: Fmp4Recording } {
  const rec = new Fmp4Recording(formatOf(s), s.avcC);
  const pieces: Uint8Array[] = [];
  let key = 0;
  for (const c of s.chunks) {
    if (c.kind === 'audio') pieces.push(...rec.audio(c.data, c.us));
    else {
      const avcC = c.key && key++ === newAvcCAtKeyframe ? s.avcC.slice() : undefined;
      pieces.push(...rec.video(c.data, c.key, c.us, avcC));
    }
  }
  pieces.push(...rec.finish());
  return { pieces, rec };
}

function cat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const mp4box = readWithMp4box;

/** ffmpeg's per-frame hashes of the decoded video, and any message it printed. */
async function decodedVideo(input: Uint8Array, format: string): Promise<string[]> {
  const exec = await execFileSync();
  const out = exec('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-xerror', '-f', format, '-i', 'pipe:0', '-map', '0:v', '-f', 'framemd5', '-'], { input, maxBuffer: MAX_BUFFER, encoding: 'utf8' });
  return out.split('\n').filter((l) => /^\s*0,/.test(l)).map((l) => l.split(',').at(-1)!.trim());
}

async function ffprobeCounts(input: Uint8Array): Promise<{ video: number; durationS: number }> {
  const exec = await execFileSync();
  const out = exec('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts_time,duration_time', '-of', 'json', '-i', 'pipe:0'], { input, maxBuffer: MAX_BUFFER, encoding: 'utf8' });
  const packets = (JSON.parse(out) as { packets?: { pts_time: string; duration_time: string }[] }).packets ?? [];
  // What a player shows: from the first picture to the end of the last (read from a pipe, ffprobe's format duration is the first fragment's).
  const starts = packets.map((p) => Number(p.pts_time));
  const ends = packets.map((p) => Number(p.pts_time) + Number(p.duration_time));
  return { video: packets.length, durationS: packets.length === 0 ? 0 : Math.max(...ends) - Math.min(...starts) };
}

for (const [name, x264] of [
  ['without B-frames', ['-bf', '0']],
  ['with B-frames (reordered output)', ['-bf', '2']],
] as const) {
  describe(`recording ffmpeg's H.264 and AAC ${name}`, () => {
    let s: Source;
    let pieces: Uint8Array[];
    let file: Uint8Array;
    let rec: Fmp4Recording;
    const videoChunks = (): Chunk[] => s.chunks.filter((c) => c.kind === 'video');

    beforeAll(async () => {
      s = await source([...x264]);
      ({ pieces, rec } = record(s));
      file = cat(pieces);
    });

    it('mp4box reads every chunk back as a sample: bytes, sync flags, decode order and presentation times', () => {
      const { info, samples } = mp4box(file);
      expect(info.tracks.map((t) => t.codec)).toEqual([expect.stringMatching(/^avc1\./), 'mp4a.40.2']);
      const video = samples.get(1)!;
      const chunks = videoChunks();
      expect(video.length).toBe(chunks.length);
      expect(rec.videoFrames).toBe(chunks.length);
      video.forEach((sample, i) => {
        const c = chunks[i]!;
        expect(sample.is_sync).toBe(c.key);
        expect(new Uint8Array(sample.data!)).toEqual(c.data);
        // Presentation time on the 90 kHz clock, from the first keyframe.
        expect(sample.cts).toBe(Math.round(((c.us - chunks[0]!.us) * 90_000) / 1e6));
        if (i > 0) expect(sample.dts).toBeGreaterThan(video[i - 1]!.dts);
        expect(sample.dts).toBeLessThanOrEqual(sample.cts);
      });
      const audio = samples.get(2)!;
      const audioChunks = s.chunks.filter((c) => c.kind === 'audio' && c.us >= chunks[0]!.us);
      expect(audio.length).toBe(audioChunks.length);
      audio.forEach((sample, i) => expect(sample.dts).toBe(Math.round(((audioChunks[i]!.us - chunks[0]!.us) * 48_000) / 1e6)));
    });

    it('ffmpeg decodes the same pictures as from its own FLV, every frame, no message', async () => {
      const ours = await decodedVideo(file, 'mp4');
      expect(ours.length).toBe(SECONDS * FPS);
      expect(ours).toEqual(await decodedVideo(s.flv, 'flv'));
      const counts = await ffprobeCounts(file);
      expect(counts.video).toBe(SECONDS * FPS);
      expect(Math.abs(rec.durationUs / 1e6 - SECONDS)).toBeLessThan(1e-6);
      expect(Math.abs(counts.durationS - SECONDS)).toBeLessThanOrEqual(0.05);
    });

    it('fragments start at keyframes and come at least every second; every prefix ending on one plays', async () => {
      const { samples } = mp4box(file);
      const video = samples.get(1)!;
      // Keyframes every 2 s, fragments at least every second: about two video fragments per GOP.
      // moof, mfhd, traf, then tfhd's track id; trun's first sample flags after its header.
      const fragments = pieces.slice(1).filter((p) => new DataView(p.buffer, p.byteOffset).getUint32(8 + 16 + 8 + 12) === 1);
      expect(fragments.length).toBeGreaterThanOrEqual(2 * s.keyframes - 1);
      const startsOnKey = fragments.filter((p) => new DataView(p.buffer, p.byteOffset).getUint32(68 + 20 + 8) === 0x02000000);
      expect(video.filter((x) => x.is_sync).length).toBe(s.keyframes);
      expect(startsOnKey.length).toBe(s.keyframes);
      let at = 0;
      const checked: number[] = [];
      for (const [i, p] of pieces.entries()) {
        at += p.length;
        if (i === 0) continue;
        const frames = mp4box(file.subarray(0, at)).samples.get(1)!.length;
        if (i % 2 !== 0) continue;
        expect((await ffprobeCounts(file.subarray(0, at))).video).toBe(frames);
        checked.push(at);
      }
      expect(checked.length).toBeGreaterThan(2);
    });

    it('a file torn inside a fragment is playable up to its last whole fragment', async () => {
      let whole = pieces[0]!.length + pieces[1]!.length + pieces[2]!.length;
      const torn = file.subarray(0, whole + Math.floor(pieces[3]!.length / 2));
      const read = (offset: number, length: number): Promise<Uint8Array> => Promise.resolve(torn.subarray(offset, offset + length));
      expect(await playableLength(torn.length, read)).toBe(whole);
      expect((await ffprobeCounts(torn.subarray(0, whole))).video).toBe(mp4box(torn.subarray(0, whole)).samples.get(1)!.length);
      // An init segment alone is playable (empty); less is nothing.
      expect(await playableLength(pieces[0]!.length - 1, read)).toBe(0);
      whole = file.length;
      expect(await playableLength(file.length, (o, l) => Promise.resolve(file.subarray(o, o + l)))).toBe(whole);
    });
  });
}

describe('recording edges', () => {
  it('waits for a keyframe; audio before it is held and only what is not older is kept', async () => {
    const s = await source(['-bf', '0']);
    const rec = new Fmp4Recording(formatOf(s), undefined);
    const video = s.chunks.filter((c) => c.kind === 'video');
    const audio = s.chunks.filter((c) => c.kind === 'audio');
    // No avcC yet: even a keyframe cannot start the file.
    expect(rec.video(video[0]!.data, true, video[0]!.us)).toEqual([]);
    for (const a of audio.slice(0, 10)) expect(rec.audio(a.data, a.us)).toEqual([]);
    // Starting at the second GOP: the earlier audio is older and dropped.
    const second = video.findIndex((c, i) => i > 0 && c.key);
    expect(rec.video(video[1]!.data, false, video[1]!.us, s.avcC)).toEqual([]);
    const out = rec.video(video[second]!.data, true, video[second]!.us);
    expect(out.length).toBe(1);
    expect(rec.audioFrames).toBe(0);
    expect(rec.videoFrames).toBe(1);
  });

  it('a keyframe with a new avcC carries its parameter sets in-band and still decodes the same', async () => {
    const s = await source(['-bf', '0']);
    const { pieces } = record(s, 1);
    const file = cat(pieces);
    const { samples } = mp4box(file);
    const keys = samples.get(1)!.filter((x) => x.is_sync);
    const key = videoKey(s, 1);
    expect(keys[1]!.size).toBeGreaterThan(key.length);
    expect(new Uint8Array(keys[1]!.data!).subarray(keys[1]!.size - key.length)).toEqual(key);
    expect(await decodedVideo(file, 'mp4')).toEqual(await decodedVideo(s.flv, 'flv'));
  });
});

function videoKey(s: Source, n: number): Uint8Array {
  return s.chunks.filter((c) => c.kind === 'video' && c.key)[n]!.data;
}

import { beforeAll, describe, expect, it } from 'vitest';
import { AvcPacketType, FlvReader, FlvTagType, flvHeader, parseFlvTag, parseVideoBody } from '@onair/shared';
import { DecodeTimes, MAX_REORDER_FRAMES, SETTLE_FRAMES } from './decode-times.js';
import { FlvMuxer } from './flv-muxer.js';
import { harness, type Harness } from './testing/harness.js';

/** The studio's output clock: frame n is stamped round(n × 1e6 / fps) µs. */
const stamp = (n: number, fps: number): number => Math.round((n * 1e6) / fps);

/**
 * Decode order of `frames` frames as an encoder with B-frames emits it: a keyframe every `gop`,
 * then mini-GOPs of an anchor followed by the B-frames before it, `bRun(k)` B-frames in the k-th
 * mini-GOP (fewer at the end of a GOP). With `pyramid`, B-frames go middle first (P8 B4 B2 b1 b3
 * B6 b5 b7), else in order (P3 B1 B2). Returns encoder frame indices (display order) with their
 * keyframe flags.
 */
function decodeOrder(frames: number, gop: number, bRun: (k: number) => number, pyramid: boolean): { frame: number; key: boolean }[] {
  const out: { frame: number; key: boolean }[] = [];
  const bs = (lo: number, hi: number): void => {
    if (lo > hi) return;
    if (!pyramid) {
      for (let i = lo; i <= hi; i++) out.push({ frame: i, key: false });
      return;
    }
    const mid = (lo + hi) >> 1;
    out.push({ frame: mid, key: false });
    bs(lo, mid - 1);
    bs(mid + 1, hi);
  };
  let k = 0;
  for (let start = 0; start < frames; start += gop) {
    const end = Math.min(start + gop, frames) - 1;
    out.push({ frame: start, key: true });
    for (let prev = start; prev < end; ) {
      const anchor = Math.min(prev + bRun(k++) + 1, end);
      out.push({ frame: anchor, key: false });
      bs(prev + 1, anchor - 1);
      prev = anchor;
    }
  }
  return out;
}

/** The reorder depth of a decode order, counted the slow way: frames decoded before, shown after. */
function depthOf(pts: readonly number[]): number {
  let depth = 0;
  pts.forEach((p, i) => (depth = Math.max(depth, pts.slice(0, i).filter((q) => q > p).length)));
  return depth;
}

/** FLV's view after a connection rebases at `originUs`: DTS and CTS in whole milliseconds. */
function flvTimes(dts: readonly number[], pts: readonly number[], originUs: number): { dtsMs: number[]; ctsMs: number[] } {
  const dtsMs = dts.map((d) => Math.round((d - originUs) / 1000));
  return { dtsMs, ctsMs: pts.map((p, i) => Math.round((p - originUs) / 1000) - dtsMs[i]!) };
}

function expectValidFlv(dts: readonly number[], pts: readonly number[], originUs: number): void {
  const { dtsMs, ctsMs } = flvTimes(dts, pts, originUs);
  for (let i = 1; i < dtsMs.length; i++) if (dtsMs[i]! <= dtsMs[i - 1]!) throw new Error(`frame ${i}: DTS ${dtsMs[i]} ms after ${dtsMs[i - 1]} ms`);
  ctsMs.forEach((c, i) => {
    if (c < 0) throw new Error(`frame ${i}: composition time ${c} ms`);
  });
}

/** Runs the encoder output (PTS in decode order) through one DecodeTimes; every frame must get a DTS. */
function derive(pts: readonly number[], keys: readonly boolean[], fps: number, reorderFrames = 0): { dts: number[]; times: DecodeTimes } {
  const times = new DecodeTimes({ frameDurationUs: 1e6 / fps, reorderFrames });
  const dts = pts.map((p, i) => {
    const d = times.next(p, keys[i]!);
    if (d === undefined) throw new Error(`frame ${i} (pts ${p} µs) got no decode time`);
    return d;
  });
  return { dts, times };
}

/** A small deterministic generator (mulberry32), so a failing case can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

describe('DecodeTimes', () => {
  it('gives DTS = PTS, at once, to an encoder that keeps presentation order', () => {
    for (const fps of [24, 30, 60, 30_000 / 1001]) {
      const pts = Array.from({ length: 300 }, (_, n) => stamp(n, fps));
      const { dts, times } = derive(pts, pts.map((_, n) => n % 60 === 0), fps);
      expect(dts).toEqual(pts);
      expect(times.reorderFrames).toBe(0);
    }
  });

  it('derives the DTS x264 would give, d frames behind, for B-frames in order, B-pyramids and deep hierarchies', () => {
    const fps = 30;
    for (const [bRun, pyramid, depth] of [[1, false, 1], [2, false, 1], [3, false, 1], [3, true, 2], [7, true, 3], [15, true, 4]] as const) {
      const order = decodeOrder(240, 60, () => bRun, pyramid);
      const pts = order.map((f) => stamp(f.frame, fps));
      const { dts, times } = derive(pts, order.map((f) => f.key), fps);
      expect(depthOf(pts), `${bRun} B-frames${pyramid ? ', pyramid' : ''}`).toBe(depth);
      expect(times.reorderFrames).toBe(depth);
      expectValidFlv(dts, pts, 0);
      expect(dts[0]).toBe(0);
      // The decode time of the i-th frame in decode order is the presentation time of the
      // (i − d)-th in presentation order (x264's DTS moved d frames later), once the first
      // frames (squeezed 1 ms apart after the keyframe) are past.
      const sorted = [...pts].sort((a, b) => a - b);
      for (let i = bRun + 2; i < pts.length; i++) expect(dts[i], `frame ${i}`).toBe(sorted[i - depth]);
      for (let i = 1; i <= depth; i++) expect(dts[i]).toBe(i * 1000);
    }
  });

  it('stays valid for any mix of mini-GOP lengths, pyramids, dropped frames and frame rates, rebased anywhere', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rnd = random(seed);
      const fps = [24, 25, 30, 30_000 / 1001, 50, 60][Math.floor(rnd() * 6)]!;
      const maxRun = Math.floor(rnd() * 8);
      const pyramid = rnd() < 0.5;
      const frames = 200 + Math.floor(rnd() * 200);
      // Frames dropped before the encoder leave gaps in the presentation times.
      const dropRate = rnd() < 0.5 ? 0 : rnd() * 0.2;
      const stamps: number[] = [];
      for (let n = 0; stamps.length < frames; n++) if (rnd() >= dropRate) stamps.push(stamp(n, fps));
      const order = decodeOrder(frames, 10 + Math.floor(rnd() * 120), () => Math.floor(rnd() * (maxRun + 1)), pyramid);
      const pts = order.map((f) => stamps[f.frame]!);
      const keys = order.map((f) => f.key);
      try {
        const { dts, times } = derive(pts, keys, fps);
        expect(times.reorderFrames).toBe(depthOf(pts));
        expectValidFlv(dts, pts, 0);
        // A connection that starts at a later keyframe rebases there, µs not ms-aligned.
        const at = keys.findIndex((k, i) => k && i > pts.length / 2);
        if (at > 0) {
          const again = derive(pts.slice(at), keys.slice(at), fps, times.reorderFrames);
          expect(again.dts[0]).toBe(pts[at]);
          expectValidFlv(again.dts, pts.slice(at), pts[at]!);
        }
      } catch (err) {
        throw new Error(`seed ${seed} (${fps} fps, B-runs up to ${maxRun}${pyramid ? ', pyramid' : ''}, drop rate ${dropRate.toFixed(2)}): ${(err as Error).message}`, { cause: err });
      }
    }
  });

  it('a connection seeded with the learned depth starts at its keyframe and squeezes only the frames after it', () => {
    const fps = 30;
    const order = decodeOrder(180, 60, () => 3, true);
    const pts = order.map((f) => stamp(f.frame, fps));
    const keys = order.map((f) => f.key);
    const at = keys.indexOf(true, 1);
    const { dts } = derive(pts.slice(at), keys.slice(at), fps, 2);
    // I60 P64 B62 b61 b63: the keyframe at its PTS, then 1 ms steps until the rule passes them.
    expect(dts.slice(0, 5).map((d) => d - pts[at]!)).toEqual([0, 1000, 2000, stamp(61, fps) - stamp(60, fps), stamp(62, fps) - stamp(60, fps)]);
  });

  it('drops frames up to the next keyframe when one reorders two places deeper at once, then goes on valid', () => {
    const fps = 30;
    // I0 P2 P4 B1 B3: B1 follows two frames it shows before; when P4 came, nothing showed depth 2.
    const frames = [0, 2, 4, 1, 3, 6, 5, 8, 7, 9, 12, 10, 11, 15, 13, 14];
    const keys = frames.map((f) => f === 9);
    const times = new DecodeTimes({ frameDurationUs: 1e6 / fps });
    const dts = frames.map((f, i) => times.next(stamp(f, fps), keys[i]!));
    expect(dts.slice(0, 3)).toEqual([0, 1000, stamp(2, fps)]);
    expect(dts.slice(3, 9)).toEqual(Array(6).fill(undefined));
    expect(times.dropped).toBe(6);
    expect(times.reorderFrames).toBe(2);
    const sent = dts.map((d, i) => [d, stamp(frames[i]!, fps)] as const).filter(([d]) => d !== undefined);
    expectValidFlv(sent.map(([d]) => d!), sent.map(([, p]) => p), 0);
    expect(dts.slice(9).every((d) => d !== undefined)).toBe(true);
  });

  it('refuses a reorder deeper than H.264 allows, and bad options', () => {
    const times = new DecodeTimes({ frameDurationUs: 33_333 });
    // I0, then frames each shown before all the ones decoded since I0: depth 0, 1, … 16, 17.
    expect(times.next(0, true)).toBe(0);
    for (let k = 0; k <= MAX_REORDER_FRAMES; k++) expect(times.next(stamp(100 - k, 30), false)).toBeDefined();
    expect(times.reorderFrames).toBe(MAX_REORDER_FRAMES);
    expect(times.next(stamp(100 - MAX_REORDER_FRAMES - 1, 30), false)).toBeUndefined();
    expect(() => new DecodeTimes({ frameDurationUs: 0 })).toThrow(RangeError);
    expect(() => new DecodeTimes({ frameDurationUs: 33_333, reorderFrames: MAX_REORDER_FRAMES + 1 })).toThrow(RangeError);
  });
});

interface Clip {
  /** Decode order, as ffprobe reads the MP4 ffmpeg wrote. */
  packets: { ptsUs: number; key: boolean; md5: string }[];
  /** The reorder depth x264 declares (SPS max_num_reorder_frames, ffprobe's has_b_frames). */
  declared: number;
  avcC: Uint8Array;
  /** ffmpeg's own FLV of the same frames (`-c copy -f flv`): its coded-frame tags, in order. */
  ref: { timestamp: number; body: Uint8Array }[];
  refFile: string;
}

const FPS = 30;
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

async function encodeClip(h: Harness, dir: string, name: string, x264: string[]): Promise<Clip> {
  const mp4 = `${dir}/${name}.mp4`;
  const refFile = `${dir}/${name}.flv`;
  const quiet = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y'];
  // Millisecond timestamps in the MP4 (timescale 1000) keep ffmpeg's FLV and ours on one grid.
  await h.runChecked('ffmpeg', [...quiet, '-f', 'lavfi', '-i', `testsrc2=size=320x240:rate=${FPS}`, '-t', '4', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', ...x264, '-g', '30', '-keyint_min', '30', '-sc_threshold', '0', '-video_track_timescale', '1000', mp4], { timeoutMs: 120_000 });
  await h.runChecked('ffmpeg', [...quiet, '-i', mp4, '-c', 'copy', '-f', 'flv', refFile]);
  const probe = JSON.parse(text(await h.runChecked('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=time_base,has_b_frames:packet=pts,flags,data_hash', '-show_data_hash', 'md5', '-of', 'json', mp4], { captureStdout: true }))) as {
    streams: { time_base: string; has_b_frames: number }[];
    packets: { pts: number; flags: string; data_hash: string }[];
  };
  const [num, den] = probe.streams[0]!.time_base.split('/').map(Number) as [number, number];
  const tags = new FlvReader().push(h.readFile(refFile)).filter((t) => t.type === FlvTagType.Video);
  const config = tags.find((t) => parseVideoBody(t.data).packetType === AvcPacketType.SequenceHeader);
  const ref = tags.filter((t) => parseVideoBody(t.data).packetType === AvcPacketType.Nalu).map((t) => ({ timestamp: t.timestamp, body: t.data }));
  if (ref.length !== probe.packets.length || config === undefined) throw new Error(`${name}: ffmpeg's FLV has ${ref.length} frames for ${probe.packets.length} packets`);
  return {
    packets: probe.packets.map((p) => ({ ptsUs: (p.pts * num * 1e6) / den, key: p.flags.includes('K'), md5: p.data_hash.replace(/^MD5:/, '') })),
    declared: probe.streams[0]!.has_b_frames,
    avcC: parseVideoBody(config.data).data,
    ref,
    refFile,
  };
}

/**
 * What the studio would send for the clip's frames from packet `from` on (a connection whose
 * first keyframe is that packet): DTS from a DecodeTimes, both times rebased to that keyframe,
 * FLV tags from FlvMuxer. The NAL units are ffmpeg's (checked against ffprobe's md5 of the MP4's).
 */
function studioTags(h: Harness, clip: Clip, from: number, reorderFrames: number): { tags: Uint8Array[]; times: DecodeTimes } {
  const times = new DecodeTimes({ frameDurationUs: 1e6 / FPS, reorderFrames });
  const muxer = new FlvMuxer();
  const origin = clip.packets[from]!.ptsUs;
  const tags = clip.packets.slice(from).map((p, i) => {
    const nal = parseVideoBody(clip.ref[from + i]!.body).data;
    expect(h.md5(nal)).toBe(p.md5);
    const dts = times.next(p.ptsUs, p.key);
    if (dts === undefined) throw new Error(`packet ${from + i} got no decode time`);
    return muxer.video(nal, p.key, dts - origin, p.ptsUs - origin).slice();
  });
  return { tags, times };
}

async function writeFlv(h: Harness, file: string, clip: Clip, tags: Uint8Array[]): Promise<string> {
  const parts = [flvHeader({ audio: false, video: true }), new FlvMuxer().videoConfig(clip.avcC), ...tags];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  h.writeFile(file, out);
  return file;
}

/** Every picture ffmpeg decodes from `file`, in presentation order: its pts (ms, the file's own) and md5. */
async function decodedPictures(h: Harness, file: string): Promise<{ pts: number; md5: string }[]> {
  const out = text(await h.runChecked('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-copyts', '-i', file, '-map', '0:v', '-fps_mode', 'passthrough', '-enc_time_base:v', '-1', '-f', 'framemd5', '-'], { captureStdout: true }));
  return out.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => {
    const f = l.split(',').map((s) => s.trim());
    return { pts: Number(f[2]), md5: f[5]! };
  });
}

interface Compared {
  /** Per frame: our PTS − ffmpeg's PTS (ms); one value when presentation matches exactly. */
  ptsShifts: Set<number>;
  /** Frames whose composition time differs from ffmpeg's. */
  ctsDiffer: number[];
}

/**
 * Tag for tag against ffmpeg's FLV from packet `from` on: FrameType|CodecID byte, AVCPacketType
 * and NAL units must be identical; DTS must increase strictly and composition times must not be
 * negative; the presentation times (DTS + composition time) are collected as shifts from
 * ffmpeg's, and the frames whose composition time differs are listed.
 */
function compareWithFfmpeg(clip: Clip, tags: Uint8Array[], from: number): Compared {
  const ptsShifts = new Set<number>();
  const ctsDiffer: number[] = [];
  let lastDts = -1;
  tags.forEach((bytes, i) => {
    const ours = parseFlvTag(bytes);
    const ref = clip.ref[from + i]!;
    const a = parseVideoBody(ours.data);
    const b = parseVideoBody(ref.body);
    expect(ours.data[0], `frame ${from + i}: FrameType|CodecID`).toBe(ref.body[0]);
    expect(ours.data[1], `frame ${from + i}: AVCPacketType`).toBe(AvcPacketType.Nalu);
    expect(ref.body[1]).toBe(AvcPacketType.Nalu);
    expect(sameBytes(a.data, b.data), `frame ${from + i}: NAL units`).toBe(true);
    expect(ours.timestamp, `frame ${from + i}: DTS`).toBeGreaterThan(lastDts);
    expect(a.cts, `frame ${from + i}: composition time`).toBeGreaterThanOrEqual(0);
    lastDts = ours.timestamp;
    ptsShifts.add(ours.timestamp + a.cts - (ref.timestamp + b.cts));
    if (a.cts !== b.cts) ctsDiffer.push(i);
  });
  return { ptsShifts, ctsDiffer };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Index of the first frame (decode order) that shows the stream's full reorder depth. */
function depthShownAt(pts: readonly number[]): number {
  const depth = depthOf(pts);
  return pts.findIndex((p, i) => pts.slice(0, i).filter((q) => q > p).length === depth);
}

describe('DecodeTimes on libx264 output (B-frames), judged against ffmpeg\'s FLV and decoder', () => {
  let h: Harness;
  let dir: string;
  const clips = new Map<string, Clip>();
  beforeAll(async () => {
    h = await harness();
    dir = h.makeTempDir('onair-reorder-');
    for (const [name, x264] of [['bf0', ['-bf', '0']], ['bf2', ['-bf', '2']], ['bf3-pyramid', ['-bf', '3', '-b-pyramid', 'normal']]] as const) {
      clips.set(name, await encodeClip(h, dir, name, [...x264]));
    }
  }, 300_000);

  /** Our FLV decodes to the same pictures as ffmpeg's, in the same order, at the same times but for one shift. */
  async function expectSamePictures(ours: string, clip: Clip, fromPtsMs = Number.NEGATIVE_INFINITY): Promise<void> {
    const [probe] = await h.ffprobeStreams(ours, { decode: true });
    const got = await decodedPictures(h, ours);
    const want = (await decodedPictures(h, clip.refFile)).filter((p, _, all) => p.pts - all[0]!.pts >= fromPtsMs);
    expect(Number(probe?.nb_read_frames)).toBe(want.length);
    expect(got.map((p) => p.md5)).toEqual(want.map((p) => p.md5));
    expect(new Set(got.map((p, i) => p.pts - want[i]!.pts)).size).toBe(1);
  }

  it('-bf 0: every tag equals ffmpeg\'s, byte for byte: DTS = PTS, composition time 0', async () => {
    const clip = clips.get('bf0')!;
    const { tags, times } = studioTags(h, clip, 0, 0);
    expect(times.reorderFrames).toBe(0);
    tags.forEach((t, i) => {
      const ours = parseFlvTag(t);
      expect(ours.timestamp).toBe(clip.ref[i]!.timestamp);
      expect(sameBytes(ours.data, clip.ref[i]!.body), `frame ${i}`).toBe(true);
      expect(parseVideoBody(ours.data).cts).toBe(0);
    });
    await expectSamePictures(await writeFlv(h, `${dir}/bf0-ours.flv`, clip, tags), clip);
  });

  for (const name of ['bf2', 'bf3-pyramid']) {
    it(`${name === 'bf2' ? '-bf 2' : '-bf 3 -b-pyramid normal'}: learns the depth from the first frames; same frames, presentation times and decoded pictures as ffmpeg's FLV`, async () => {
      const clip = clips.get(name)!;
      const pts = clip.packets.map((p) => p.ptsUs);
      const depth = depthOf(pts);
      expect(depth).toBeGreaterThan(0);
      const { tags, times } = studioTags(h, clip, 0, 0);
      expect(times.reorderFrames).toBe(depth);
      const c = compareWithFfmpeg(clip, tags, 0);
      // ffmpeg moved the whole stream by x264's initial delay so its first DTS is 0; the studio
      // starts the keyframe's PTS at 0. Presentation is otherwise identical.
      expect([...c.ptsShifts]).toHaveLength(1);
      const shift = [...c.ptsShifts][0]!;
      // From the frame that shows the full depth on, DTS is x264's, moved by that shift and by the
      // frames x264 declares but does not use (has_b_frames 2 for -bf 2, where B-frames reorder 1).
      const lag = clip.declared - depth;
      expect(lag).toBe(name === 'bf2' ? 1 : 0);
      const from = depthShownAt(pts);
      for (let i = from; i + lag < tags.length; i++) expect(parseFlvTag(tags[i]!).timestamp, `frame ${i}`).toBe(clip.ref[i + lag]!.timestamp + shift);
      if (lag === 0) expect(c.ctsDiffer.every((i) => i < from)).toBe(true);
      await expectSamePictures(await writeFlv(h, `${dir}/${name}-ours.flv`, clip, tags), clip);
    });
  }

  it('seeded with the depth x264 declares, every tag after the first d + 1 equals ffmpeg\'s, byte for byte', () => {
    for (const name of ['bf2', 'bf3-pyramid']) {
      const clip = clips.get(name)!;
      const { tags } = studioTags(h, clip, 0, clip.declared);
      const c = compareWithFfmpeg(clip, tags, 0);
      expect(c.ctsDiffer, name).toEqual(Array.from({ length: clip.declared + 1 }, (_, i) => i));
      for (let i = clip.declared + 1; i < tags.length; i++) expect(sameBytes(parseFlvTag(tags[i]!).data, clip.ref[i]!.body), `${name} frame ${i}`).toBe(true);
    }
  });

  it('a reconnect: a new connection from a later keyframe starts at 0 and decodes to the same pictures from there', async () => {
    const clip = clips.get('bf3-pyramid')!;
    const first = studioTags(h, clip, 0, 0);
    const at = clip.packets.findIndex((p, i) => p.key && i > 0);
    const { tags } = studioTags(h, clip, at, first.times.reorderFrames);
    const head = parseFlvTag(tags[0]!);
    expect([head.timestamp, parseVideoBody(head.data).cts]).toEqual([0, 0]);
    const c = compareWithFfmpeg(clip, tags, at);
    expect([...c.ptsShifts]).toHaveLength(1);
    expect(c.ctsDiffer).toEqual(Array.from({ length: first.times.reorderFrames + 1 }, (_, i) => i));
    const keyPtsMs = (clip.packets[at]!.ptsUs - clip.packets[0]!.ptsUs) / 1000;
    await expectSamePictures(await writeFlv(h, `${dir}/reconnect-ours.flv`, clip, tags), clip, keyPtsMs);
  });
});

describe('DecodeTimes for an encoder that keeps presentation order', () => {
  it('takes a gap from dropped frames as a gap once the encoder has shown it does not reorder', () => {
    const d = new DecodeTimes({ frameDurationUs: 33_333 });
    const pts = (n: number): number => Math.round(n * 33_333.33);
    for (let n = 0; n <= SETTLE_FRAMES; n++) expect(d.next(pts(n), n === 0)).toBe(pts(n));
    // Four frames dropped before the encoder: the next one keeps DTS = PTS, composition time 0.
    const after = SETTLE_FRAMES + 5;
    expect(d.next(pts(after), false)).toBe(pts(after));
    expect(d.reorderFrames).toBe(0);
  });
});

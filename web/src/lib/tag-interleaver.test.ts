import { beforeAll, describe, expect, it } from 'vitest';
import { AacPacketType, AvcPacketType, FlvReader, FlvTagType, flvHeader, flvTag, parseAudioBody, parseFlvTag, parseVideoBody } from '@onair/shared';
import { DecodeTimes } from './decode-times.js';
import { FlvMuxer } from './flv-muxer.js';
import { TagInterleaver } from './tag-interleaver.js';
import { harness, type FrameMd5, type Harness } from './testing/harness.js';

const tag = (type: number, timestamp: number, byte = 0, size = 4): Uint8Array => flvTag({ type, timestamp, data: new Uint8Array(size).fill(byte) });
const audio = (ms: number, byte = 0xaf): Uint8Array => tag(FlvTagType.Audio, ms, byte);
const video = (ms: number, byte = 0x27): Uint8Array => tag(FlvTagType.Video, ms, byte);
/** `a12` for audio at 12 ms, `v0` for video at 0, `s0` for script data. */
const names = (tags: Uint8Array[]): string[] =>
  tags.map((t) => {
    const p = parseFlvTag(t.slice());
    return `${p.type === FlvTagType.Audio ? 'a' : p.type === FlvTagType.Video ? 'v' : 's'}${p.timestamp}`;
  });

describe('TagInterleaver', () => {
  it('sends both tracks in timestamp order: audio waits for video decode times that run behind', () => {
    const il = new TagInterleaver();
    const sent: string[] = [];
    const push = (t: Uint8Array): void => void sent.push(...names(il.push(t)));
    // B-frames, 30 fps, reorder depth 1: the keyframe, then P3 B1 B2 come out together once
    // frame 3 is in, with decode times 1, 33, 67 ms; audio every 21 ms meanwhile.
    push(video(0));
    push(audio(0));
    push(audio(21));
    push(audio(43));
    push(audio(64));
    push(audio(85));
    expect(sent).toEqual(['v0', 'a0']);
    push(video(1));
    push(video(33));
    push(video(67));
    expect(sent).toEqual(['v0', 'a0', 'v1', 'a21', 'v33', 'a43', 'a64', 'v67']);
    push(audio(107));
    push(video(100));
    expect(sent.slice(8)).toEqual(['a85', 'v100']);
    expect(names(il.flush())).toEqual(['a107']);
    expect(il.held).toBe(0);
    expect(il.late).toBe(0);
  });

  it('returns a tag that can go out at once as given, and keeps a copy of one it holds', () => {
    const il = new TagInterleaver();
    expect(il.push(audio(50))).toEqual([]);
    const scratch = video(40);
    const out = il.push(scratch);
    expect(out).toHaveLength(1);
    expect(out[0]).toBe(scratch);
    // Video ahead of audio (the AAC encoder's delay): held, while the muxer reuses its buffer.
    const reused = video(80, 0x17);
    expect(names(il.push(reused))).toEqual(['a50']);
    reused.fill(0);
    const [v] = il.push(audio(90));
    expect(names([v!])).toEqual(['v80']);
    expect(parseFlvTag(v!.slice()).data[0]).toBe(0x17);
  });

  it('keeps a mid-stream sequence header in its track\'s place and lets script data through', () => {
    const il = new TagInterleaver();
    expect(names(il.push(tag(FlvTagType.Script, 0)))).toEqual(['s0']);
    il.push(audio(10));
    expect(names(il.push(video(33)))).toEqual(['a10']);
    // A new avcC is stamped 0, yet must not overtake the frame before it.
    expect(il.push(video(0, 0x17))).toEqual([]);
    expect(il.push(video(66))).toEqual([]);
    const out = il.push(audio(70));
    expect(names(out)).toEqual(['v33', 'v0', 'v66']);
    expect(parseFlvTag(out[1]!.slice()).data[0]).toBe(0x17);
  });

  it('lets a track that skips a tag move the other one on', () => {
    const il = new TagInterleaver();
    il.push(video(0));
    il.push(audio(0));
    expect(il.push(audio(21))).toEqual([]);
    // A video frame dropped for backpressure at 33 ms: nothing of video comes before it.
    expect(names(il.skip(FlvTagType.Video, 33))).toEqual(['a21']);
  });

  it('holds a bounded number of tags when the other track stalls, and counts what then comes late', () => {
    const il = new TagInterleaver({ maxHeldTags: 8, maxHeldBytes: 1 << 20 });
    il.push(audio(0));
    il.push(video(0));
    const sent: string[] = [];
    for (let i = 1; i <= 20; i++) {
      sent.push(...names(il.push(video(i * 33))));
      expect(il.held).toBeLessThanOrEqual(8);
    }
    // Each video frame past the eighth held pushes the oldest out.
    expect(sent).toEqual(Array.from({ length: 12 }, (_, i) => `v${(i + 1) * 33}`));
    // Audio comes back with a timestamp below what went out: at once, counted.
    expect(names(il.push(audio(21)))).toEqual(['a21']);
    expect(il.late).toBe(1);
    expect(names(il.push(audio(1000)))).toEqual(Array.from({ length: 8 }, (_, i) => `v${(i + 13) * 33}`));
    expect(il.late).toBe(1);
  });

  it('bounds the bytes held too', () => {
    const il = new TagInterleaver({ maxHeldTags: 100, maxHeldBytes: 10_000 });
    il.push(audio(0));
    let out = 0;
    for (let i = 0; i < 10; i++) out += il.push(tag(FlvTagType.Video, i * 33, 0x27, 3000)).length;
    // v0 and a0, then one frame out for each pushed once three (9045 bytes) are held.
    expect(out).toBe(2 + 6);
    expect(il.held).toBe(3);
  });
});

interface AvClip {
  /** Decode order, from ffprobe. */
  video: { ptsUs: number; key: boolean }[];
  audio: { ptsUs: number }[];
  /** ffmpeg's FLV of the same packets (`-c copy -f flv`): payloads and configuration. */
  nal: Uint8Array[];
  aac: Uint8Array[];
  avcC: Uint8Array;
  asc: Uint8Array;
  refFile: string;
}

const FPS = 30;
const AAC_FRAME_US = (1024 / 48_000) * 1e6;
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

async function encodeAv(h: Harness, dir: string, name: string, x264: string[]): Promise<AvClip> {
  const mp4 = `${dir}/${name}.mp4`;
  const refFile = `${dir}/${name}.flv`;
  const quiet = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y'];
  await h.runChecked('ffmpeg', [
    ...quiet, '-f', 'lavfi', '-i', `testsrc2=size=320x240:rate=${FPS}`, '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '4',
    '-map', '0:v', '-map', '1:a', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', ...x264, '-g', '30', '-keyint_min', '30', '-sc_threshold', '0', '-video_track_timescale', '1000',
    '-c:a', 'aac', '-ac', '2', '-ar', '48000', '-b:a', '128k', mp4,
  ], { timeoutMs: 120_000 });
  await h.runChecked('ffmpeg', [...quiet, '-i', mp4, '-c', 'copy', '-f', 'flv', refFile]);
  const probe = async (stream: string): Promise<{ ptsUs: number; key: boolean }[]> => {
    const p = JSON.parse(text(await h.runChecked('ffprobe', ['-v', 'error', '-select_streams', stream, '-show_entries', 'stream=time_base:packet=pts,flags', '-of', 'json', mp4], { captureStdout: true }))) as {
      streams: { time_base: string }[];
      packets: { pts: number; flags: string }[];
    };
    const [num, den] = p.streams[0]!.time_base.split('/').map(Number) as [number, number];
    return p.packets.map((x) => ({ ptsUs: (x.pts * num * 1e6) / den, key: x.flags.includes('K') }));
  };
  const tags = new FlvReader().push(h.readFile(refFile));
  const videoBodies = tags.filter((t) => t.type === FlvTagType.Video).map((t) => parseVideoBody(t.data));
  const audioBodies = tags.filter((t) => t.type === FlvTagType.Audio).map((t) => parseAudioBody(t.data));
  const clip: AvClip = {
    video: await probe('v:0'),
    audio: await probe('a:0'),
    nal: videoBodies.filter((b) => b.packetType === AvcPacketType.Nalu).map((b) => b.data),
    aac: audioBodies.filter((b) => b.packetType === AacPacketType.Raw).map((b) => b.data),
    avcC: videoBodies.find((b) => b.packetType === AvcPacketType.SequenceHeader)!.data,
    asc: audioBodies.find((b) => b.packetType === AacPacketType.SequenceHeader)!.data,
    refFile,
  };
  if (clip.nal.length !== clip.video.length || clip.aac.length !== clip.audio.length) throw new Error(`${name}: ffmpeg's FLV does not hold the MP4's packets`);
  return clip;
}

interface Live {
  /** The tags in the order the interleaver sent them. */
  wire: Uint8Array[];
  /** Type and timestamp of each tag in the order it was made. */
  arrival: [number, number][];
  /** How long each track's tags were held (ms), by the model's clock. */
  held: { audio: number[]; video: number[] };
  late: number;
}

/**
 * The studio's path for a clip delivered as a realtime encoder would: a video chunk comes out
 * once every frame it depends on is in (the largest PTS so far) plus `videoMs` of encoding, an
 * AAC packet once its 1024 samples are in plus `audioMs`. Video through DecodeTimes and FlvMuxer,
 * audio through FlvMuxer, both rebased to the first keyframe (audio before it dropped, as
 * ConnectionTimeline does), every tag through one TagInterleaver, in order of arrival.
 */
function goLive(clip: AvClip, videoMs: number, audioMs: number): Live {
  const origin = clip.video[0]!.ptsUs;
  const times = new DecodeTimes({ frameDurationUs: 1e6 / FPS });
  const muxer = new FlvMuxer();
  type Event = { atUs: number; make: () => Uint8Array };
  const events: Event[] = [];
  let newest = Number.NEGATIVE_INFINITY;
  clip.video.forEach((v, i) => {
    newest = Math.max(newest, v.ptsUs);
    events.push({
      atUs: newest - origin + videoMs * 1000,
      make: () => muxer.video(clip.nal[i]!, v.key, times.next(v.ptsUs, v.key)! - origin, v.ptsUs - origin),
    });
  });
  clip.audio.forEach((a, i) => {
    if (a.ptsUs < origin) return;
    events.push({ atUs: a.ptsUs - origin + AAC_FRAME_US + audioMs * 1000, make: () => muxer.audio(clip.aac[i]!, a.ptsUs - origin) });
  });
  events.sort((x, y) => x.atUs - y.atUs);
  const il = new TagInterleaver();
  const arrived = new Map<string, number>();
  const key = (tag: Uint8Array): string => `${tag[0]}@${parseFlvTag(tag.slice()).timestamp}`;
  const live: Live = { wire: [], arrival: [], held: { audio: [], video: [] }, late: 0 };
  const send = (tags: Uint8Array[], atUs: number): void => {
    for (const tag of tags) {
      const copy = tag.slice();
      live.wire.push(copy);
      live.held[copy[0] === FlvTagType.Audio ? 'audio' : 'video'].push((atUs - arrived.get(key(copy))!) / 1000);
    }
  };
  for (const e of events) {
    const tag = e.make();
    arrived.set(key(tag), e.atUs);
    live.arrival.push([tag[0]!, parseFlvTag(tag.slice()).timestamp]);
    send(il.push(tag), e.atUs);
  }
  send(il.flush(), events.at(-1)!.atUs);
  live.late = il.late;
  return live;
}

function flvFile(clip: AvClip, wire: Uint8Array[]): Uint8Array {
  const m = new FlvMuxer();
  const meta = { width: 320, height: 240, framerate: FPS, videoBitrate: 500_000, audioBitrate: 128_000, sampleRate: 48_000, channels: 2 };
  const parts = [flvHeader({ audio: true, video: true }), m.metadata(meta), m.audioConfig(clip.asc), m.videoConfig(clip.avcC), ...wire];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

/** Each packet's payload md5 and presentation time from the first video packet's, per track. */
function presentation(f: FrameMd5): { video: string[]; audio: string[] } {
  const type = (s: number): string | undefined => f.mediaTypes.get(s);
  const zero = f.packets.find((p) => type(p.stream) === 'video')!.pts;
  const track = (t: string): string[] => f.packets.filter((p) => type(p.stream) === t).map((p) => `${p.pts - zero} ${p.md5}`);
  return { video: track('video'), audio: track('audio') };
}

describe('TagInterleaver on a live-like stream: libx264 B-frames and AAC, judged by ffmpeg and nginx-rtmp', () => {
  let h: Harness;
  let dir: string;
  const clips = new Map<string, AvClip>();
  beforeAll(async () => {
    h = await harness();
    dir = h.makeTempDir('onair-interleave-');
    clips.set('bf3-pyramid', await encodeAv(h, dir, 'bf3-pyramid', ['-bf', '3', '-b-pyramid', 'normal']));
    clips.set('bf0', await encodeAv(h, dir, 'bf0', ['-bf', '0']));
  }, 300_000);

  /** Type and timestamp of every audio and video tag of an FLV, in file order. */
  const mediaOrder = (flv: Uint8Array): [number, number][] =>
    new FlvReader().push(flv).filter((t) => t.type !== FlvTagType.Script).map((t) => [t.type, t.timestamp]);
  const inversions = (tags: [number, number][]): number => tags.filter(([, ts], i) => i > 0 && ts < Math.max(...tags.slice(0, i).map(([, t]) => t))).length;

  for (const name of ['bf3-pyramid', 'bf0']) {
    it(`${name === 'bf0' ? '-bf 0' : '-bf 3 -b-pyramid normal'}: timestamps never go back on the wire; ffmpeg reads every packet back in sync`, async () => {
      const clip = clips.get(name)!;
      // 10 ms to encode a video frame, 20 ms for the AAC encoder once a frame's samples are in.
      const live = goLive(clip, 10, 20);
      // As made, the tracks cross: B-frames' decode times run behind the audio (or, without
      // B-frames, the AAC encoder's delay puts audio behind the video).
      expect(inversions(live.arrival)).toBeGreaterThan(20);
      const flv = flvFile(clip, live.wire);
      expect(inversions(mediaOrder(flv))).toBe(0);
      expect(live.late).toBe(0);
      // Held no longer than reordering needs. Video waits for the audio that covers its decode
      // time: up to the AAC encoder's delay plus two AAC frames, less its own encoding time. With
      // B-frames audio waits for the next burst of video (a mini-GOP of up to 4 frames, plus the
      // encoder's 10 ms); without, for the next frame.
      const max = (xs: number[]): number => Math.max(...xs);
      const frameMs = 1000 / FPS;
      expect(max(live.held.video)).toBeLessThanOrEqual(20 + (2 * AAC_FRAME_US) / 1000 - 10 + 1);
      if (name === 'bf0') {
        expect(max(live.held.audio)).toBeLessThanOrEqual(frameMs + 10);
      } else {
        expect(max(live.held.audio)).toBeGreaterThan(3 * frameMs);
        expect(max(live.held.audio)).toBeLessThanOrEqual(6 * frameMs + 10);
      }
      const file = `${dir}/${name}-studio.flv`;
      h.writeFile(file, flv);
      const streams = await h.ffprobeStreams(file, { decode: true });
      expect(streams.map((st) => `${st.codec_type} ${st.codec_name} ${st.nb_read_frames}`).sort()).toEqual([
        `audio aac ${live.held.audio.length}`,
        `video h264 ${clip.video.length}`,
      ]);
      // Every packet, with its presentation time from the first picture's, equals ffmpeg's FLV
      // of the same packets but for the AAC priming packet before the first picture.
      const ours = presentation(await h.framemd5(file));
      const ref = presentation(await h.framemd5(clip.refFile));
      expect(ours.video).toEqual(ref.video);
      expect(ours.audio).toEqual(ref.audio.filter((line) => !line.startsWith('-')));
      expect(ours.audio.length).toBe(live.held.audio.length);
    });
  }

  it('nginx-rtmp records the interleaved stream exactly, in the order sent', async () => {
    const clip = clips.get('bf3-pyramid')!;
    const file = `${dir}/published.flv`;
    h.writeFile(file, flvFile(clip, goLive(clip, 10, 20).wire));
    const nginx = await h.startNginxRtmp({ record: true });
    try {
      const r = await h.runOnair(['publish', '--fast', file, nginx.url('live', 'interleaved')], { timeoutMs: 60_000 });
      expect(r.code, r.stderr).toBe(0);
      const recording = await nginx.recordingDone('interleaved');
      const cmp = h.comparePackets(await h.framemd5(file), await h.framemd5(recording), 'exact');
      expect(cmp.equal, cmp.summary).toBe(true);
      expect(inversions(mediaOrder(h.readFile(recording)))).toBe(0);
    } finally {
      await nginx.dispose();
    }
  });
});

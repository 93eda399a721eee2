import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFile, MP4BoxBuffer, type Sample } from 'mp4box';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeAmf0 } from '../amf/amf0.js';
import { ExVideoPacketType, exVideoBody, onMetaDataBody } from '../flv/flv-media.js';
import { TagKind, tagKind } from '../flv/tag-kind.js';
import { FlvReader } from '../flv/flv-reader.js';
import type { FlvTag } from '../flv/flv-tag.js';
import { cat, errorCode as code, h } from '../testing/bytes.js';
import { readWithMp4box } from '../testing/mp4box-samples.js';
import { videoSeed, type VideoSeed } from '../testing/video-seeds.js';
import { FlvToFmp4, type RemuxEvent, type RemuxTrack } from './flv-to-fmp4.js';

// Judged by ffprobe and mp4box: the FLV ffmpeg wrote is the reference, the fMP4 we write from
// its tags must carry the same decode/presentation times (video) and a gap-free sample clock
// (audio). ffprobe honours each fragment's tfdt; mp4box reports each trun sample duration.

interface Packet {
  pts: number;
  dts: number;
  duration: number;
  size: number;
}

let dir: string;

function ffmpeg(args: string[]): void {
  execFileSync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', ...args]);
}

function packets(file: string, stream: 'v' | 'a'): Packet[] {
  const json = execFileSync('ffprobe', ['-v', 'error', '-select_streams', stream, '-show_packets', '-of', 'json', file], { encoding: 'utf8' });
  const list = (JSON.parse(json) as { packets: Record<string, string>[] }).packets;
  return list.map((p) => ({ pts: Number(p['pts']), dts: Number(p['dts']), duration: Number(p['duration']), size: Number(p['size']) }));
}

/** Per-sample trun durations, sync flags and the fragment (moof) each is in, as mp4box reads them. */
function mp4Samples(file: string): (Pick<Sample, 'duration' | 'is_sync' | 'size'> & { moof_number: number | undefined })[] {
  const bytes = readFileSync(file);
  const mp4 = createFile();
  const samples: Sample[] = [];
  mp4.onReady = (info) => {
    const track = info.tracks[0];
    if (track === undefined) throw new Error('no track');
    mp4.setExtractionOptions(track.id, null, { nbSamples: 1_000_000 });
    mp4.start();
  };
  mp4.onSamples = (_id, _user, list) => {
    samples.push(...list);
  };
  mp4.appendBuffer(MP4BoxBuffer.fromArrayBuffer(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length), 0));
  mp4.flush();
  return samples.map((s) => ({ duration: s.duration, is_sync: s.is_sync, size: s.size, moof_number: s.moof_number }));
}

function tagsOf(file: string): FlvTag[] {
  return new FlvReader().push(readFileSync(file));
}

function remux(tags: readonly FlvTag[], r = new FlvToFmp4()): RemuxEvent[] {
  return tags.flatMap((t) => r.push(t));
}

function trackFile(events: readonly RemuxEvent[], kind: 'video' | 'audio', name: string): string {
  const tracks = events.find((e) => e.kind === 'tracks');
  const track = tracks?.kind === 'tracks' ? tracks.tracks.find((t: RemuxTrack) => t.kind === kind) : undefined;
  if (track === undefined) throw new Error(`no ${kind} track`);
  const parts = [track.init, ...events.flatMap((e) => (e.kind === 'media' && e.track === kind ? [e.data] : []))];
  const file = join(dir, name);
  writeFileSync(file, Buffer.concat(parts));
  return file;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'onair-remux-'));
  const common = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '30', '-c:a', 'aac', '-b:a', '96k'];
  // B-frames, 30 fps, 48 kHz: composition offsets and a 48000 audio timescale.
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30', '-f', 'lavfi', '-i', 'sine=sample_rate=48000', '-t', '3', ...common, '-bf', '2', '-ar', '48000', join(dir, 'bf.flv')]);
  // 25 fps, 44.1 kHz: FLV's millisecond audio timestamps do not divide 1024-sample frames.
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25', '-f', 'lavfi', '-i', 'sine=sample_rate=44100', '-t', '3', ...common, '-bf', '0', '-ar', '44100', join(dir, 'a44.flv')]);
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30', '-t', '1', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', join(dir, 'video-only.flv')]);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('FlvToFmp4', () => {
  it('keeps every video decode and presentation time; B-frames go out with the frames they are shown before', () => {
    const flv = join(dir, 'bf.flv');
    const events = remux(tagsOf(flv));
    const tracks = events.find((e) => e.kind === 'tracks');
    expect(tracks?.kind === 'tracks' && tracks.tracks.map((t) => [t.kind, t.mimeType])).toEqual([
      ['video', expect.stringMatching(/^video\/mp4; codecs="avc1\.[0-9A-F]{6}"$/)],
      ['audio', 'audio/mp4; codecs="mp4a.40.2"'],
    ]);
    const ref = packets(flv, 'v');
    const file = trackFile(events, 'video', 'bf-video.mp4');
    const got = packets(file, 'v');
    const samples = mp4Samples(file);
    expect(got.length).toBe(ref.length);
    expect(samples.length).toBe(ref.length);
    const origin = Math.min(ref[0]!.dts, packets(flv, 'a')[0]!.dts);
    expect(ref.some((p) => p.pts !== p.dts)).toBe(true); // the fixture really has B-frames
    // A fragment ends where every frame in it and before it is shown before every frame after
    // it: known here from the whole file, by the remuxer from the frames so far.
    const closed = ref.map((_, i) => Math.max(...ref.slice(0, i + 1).map((p) => p.pts)) < Math.min(...ref.slice(i + 1).map((p) => p.pts)));
    expect(closed.filter((c) => !c).length).toBeGreaterThan(ref.length / 2); // most fragments hold a reference frame and its B-frames
    got.forEach((p, i) => {
      const r = ref[i]!;
      const s = samples[i]!;
      expect([p.dts, p.pts, p.size]).toEqual([r.dts - origin, r.pts - origin, r.size]);
      expect(s.is_sync).toBe(i % 30 === 0);
      const next = samples[i + 1];
      if (next !== undefined) expect(next.moof_number === s.moof_number).toBe(!closed[i]);
      // Within a fragment the decode interval to the next frame; at its end the one before.
      expect(s.duration).toBe(next?.moof_number === s.moof_number ? ref[i + 1]!.dts - r.dts : i === 0 ? 33 : r.dts - ref[i - 1]!.dts);
    });
  });

  it('sends video frames out as they come without B-frames', () => {
    const flv = join(dir, 'a44.flv');
    const samples = mp4Samples(trackFile(remux(tagsOf(flv)), 'video', 'a44-video.mp4'));
    expect(samples.length).toBe(packets(flv, 'v').length);
    expect(new Set(samples.map((s) => s.moof_number)).size).toBe(samples.length);
  });

  it('sends held video frames out before the next keyframe when a stream stops in the middle of a group', () => {
    const tags = tagsOf(join(dir, 'bf.flv'));
    const r = new FlvToFmp4();
    // The connection drops right after a reference frame, before the B-frames shown before it.
    const ref = packets(join(dir, 'bf.flv'), 'v');
    const cut = ref.findIndex((p, i) => i > 40 && p.pts - p.dts > 40);
    const video = tags.filter((t) => t.type === 9 && t.data[1] === 1);
    const stop = tags.indexOf(video[cut]!);
    const first = remux(tags.slice(0, stop + 1), r).flatMap((e) => (e.kind === 'media' && e.track === 'video' ? [e] : []));
    const origin = Math.min(ref[0]!.dts, packets(join(dir, 'bf.flv'), 'a')[0]!.dts);
    expect(first[first.length - 1]!.start).toBeLessThan((ref[cut]!.dts - origin) / 1000);
    r.discontinuity();
    const second = remux(tags.slice(0, stop + 1), r).flatMap((e) => (e.kind === 'media' && e.track === 'video' ? [e] : []));
    // The reference frame, alone, then the new session from its keyframe, after it in time.
    expect(second[0]!.start).toBe((ref[cut]!.dts - origin) / 1000);
    expect(second[0]!.keyframe).toBe(false);
    expect(second[1]!.keyframe).toBe(true);
    expect(second[1]!.start).toBeGreaterThan(second[0]!.start);
    expect(second[0]!.end).toBe(second[1]!.start);
  });

  it('gives audio 1024-sample frames on a counter that stays within a millisecond of the FLV clock', () => {
    for (const [name, rate] of [['bf.flv', 48000], ['a44.flv', 44100]] as const) {
      const flv = join(dir, name);
      const events = remux(tagsOf(flv));
      const ref = packets(flv, 'a');
      // The output timeline starts at the first media tag, whichever track it belongs to.
      const origin = Math.min(packets(flv, 'v')[0]!.dts, ref[0]!.dts);
      const file = trackFile(events, 'audio', `${name}-audio.mp4`);
      const got = packets(file, 'a');
      const samples = mp4Samples(file);
      expect(got.length).toBe(ref.length);
      got.forEach((p, i) => {
        expect(samples[i]!.duration).toBe(1024);
        expect(p.size).toBe(ref[i]!.size);
        if (i > 0) expect(p.dts).toBe(got[i - 1]!.dts + 1024);
        expect(Math.abs((p.dts / rate) * 1000 - (ref[i]!.dts - origin))).toBeLessThanOrEqual(1);
      });
    }
  });

  it('fixes the track set at once when metadata says there is no audio', () => {
    const events = remux(tagsOf(join(dir, 'video-only.flv')));
    const kinds = events.map((e) => e.kind);
    expect(kinds[0]).toBe('metadata');
    expect(kinds[1]).toBe('tracks');
    const tracks = events[1];
    expect(tracks?.kind === 'tracks' && tracks.tracks.map((t) => [t.kind, t.width, t.height])).toEqual([['video', 320, 240]]);
    expect(events.filter((e) => e.kind === 'media').length).toBe(30);
  });

  it('waits for the second configuration only as long as trackWaitMs of stream time', () => {
    const tags = tagsOf(join(dir, 'bf.flv')).filter((t) => t.type !== 18 && !(t.type === 8));
    const r = new FlvToFmp4({ trackWaitMs: 500 });
    const events = remux(tags, r);
    const fixed = events.findIndex((e) => e.kind === 'tracks');
    expect(fixed).toBeGreaterThanOrEqual(0);
    expect(r.tracks).toEqual(['video']);
    const media = events.filter((e) => e.kind === 'media');
    // Held frames are released in order once the set is fixed, starting at the keyframe.
    expect(media[0]?.kind === 'media' && media[0].keyframe && media[0].start).toBe(0);
    expect(mp4Samples(trackFile(events, 'video', 'wait-video.mp4')).length).toBe(packets(join(dir, 'bf.flv'), 'v').length);
  });

  it('measures the wait for a missing configuration in media time, not from configuration stamps', () => {
    // As nginx-rtmp sends a live stream to a new player: configurations stamped 0, media at the
    // publisher's clock, the AVC header only right before the first video frame.
    const tags = tagsOf(join(dir, 'bf.flv'));
    const videoConfig = tags.find((t) => t.type === 9 && t.data[1] === 0)!;
    const media = tags.filter((t) => t !== videoConfig && t.type !== 18 && !(t.type === 8 && t.data[1] === 0));
    const shifted = media.map((t) => ({ ...t, timestamp: t.timestamp + 2837 }));
    const firstVideo = shifted.findIndex((t) => t.type === 9);
    const firstAudio = shifted.findIndex((t) => t.type === 8);
    const ordered = [
      tags.find((t) => t.type === 8 && t.data[1] === 0)!,
      ...shifted.filter((t) => t.type === 8).slice(0, 3),
      videoConfig,
      ...shifted.slice(Math.min(firstVideo, firstAudio)).filter((t, i, all) => !(t.type === 8 && all.filter((x) => x.type === 8).indexOf(t) < 3)),
    ];
    const events = remux(ordered);
    const tracks = events.find((e) => e.kind === 'tracks');
    expect(tracks?.kind === 'tracks' && tracks.tracks.map((t) => t.kind)).toEqual(['video', 'audio']);

    // nginx-rtmp also holds video back until the next keyframe: up to a GOP of audio alone, which
    // the next test plays.
  });

  it('plays an announced video track that starts late: black frames under the sound until its first keyframe', () => {
    // As nginx-rtmp serves a new player: onMetaData, the AAC header and audio at once; the AVC
    // header only right before the next keyframe (here the one at 1 s).
    const tags = tagsOf(join(dir, 'bf.flv'));
    const meta = tags.find((t) => t.type === 18)!;
    const [aacHeader, avcHeader] = [tags.find((t) => t.type === 8 && t.data[1] === 0)!, tags.find((t) => t.type === 9 && t.data[1] === 0)!];
    const media = tags.filter((t) => t.type !== 18 && t.data[1] !== 0);
    const keyAt = media.find((t) => t.type === 9 && t.timestamp >= 1000 && t.data[0]! >> 4 === 1)!.timestamp;
    const audioFirst = media.filter((t) => t.type === 8 && t.timestamp < keyAt);
    const rest = media.filter((t) => t.timestamp >= keyAt);
    const events = remux([meta, aacHeader, ...audioFirst, avcHeader, ...rest]);

    const tracks = events.find((e) => e.kind === 'tracks');
    expect(tracks?.kind === 'tracks' && tracks.tracks.map((t) => [t.kind, t.filler])).toEqual([['video', true], ['audio', false]]);
    const video = events.filter((e) => (e.kind === 'media' && e.track === 'video') || e.kind === 'init');
    const init = video.findIndex((e) => e.kind === 'init');
    const fill = video.slice(0, init).flatMap((e) => (e.kind === 'media' ? [e] : []));
    const real = video.slice(init + 1).flatMap((e) => (e.kind === 'media' ? [e] : []));
    const audio = events.flatMap((e) => (e.kind === 'media' && e.track === 'audio' ? [e] : []));
    // The stand-in covers the sound from its first frame without a hole, until the real picture.
    expect(fill[0]!.start).toBeCloseTo(audio[0]!.start, 3);
    fill.forEach((e, i) => i > 0 && expect(e.start).toBe(fill[i - 1]!.end));
    expect(fill.every((e) => e.keyframe && e.bytes === 0)).toBe(true);
    expect(fill[fill.length - 1]!.end).toBeGreaterThanOrEqual((keyAt - audioFirst[0]!.timestamp) / 1000 - 0.03);
    // Then the stream's own configuration, and its frames from the keyframe on.
    const realInit = video[init];
    expect(realInit?.kind === 'init' && [realInit.track.filler, realInit.track.width]).toEqual([false, 320]);
    expect(real[0]!.keyframe).toBe(true);
    expect(real[0]!.start).toBeCloseTo((keyAt - audioFirst[0]!.timestamp) / 1000, 3);
    // Every audio frame went out.
    expect(audio.length).toBe(media.filter((t) => t.type === 8).length);

    // ffprobe reads both halves: the stand-in's frames, and the stream's from its keyframe.
    const fillerTrack = tracks?.kind === 'tracks' ? tracks.tracks[0]! : undefined;
    const fillFile = join(dir, 'late-fill.mp4');
    writeFileSync(fillFile, Buffer.concat([fillerTrack!.init, ...fill.map((e) => e.data)]));
    expect(packets(fillFile, 'v').length).toBe(fill.length);
    const realFile = join(dir, 'late-real.mp4');
    writeFileSync(realFile, Buffer.concat([realInit?.kind === 'init' ? realInit.track.init : new Uint8Array(), ...real.map((e) => e.data)]));
    const ref = packets(join(dir, 'bf.flv'), 'v').filter((p) => p.dts >= keyAt);
    expect(packets(realFile, 'v').map((p) => [p.dts, p.pts, p.size])).toEqual(ref.map((p) => [p.dts - audioFirst[0]!.timestamp, p.pts - audioFirst[0]!.timestamp, p.size]));
  });

  it('plays an announced audio track that starts late: silence under the picture until its first frame', () => {
    const tags = tagsOf(join(dir, 'bf.flv'));
    const meta = tags.find((t) => t.type === 18)!;
    const [aacHeader, avcHeader] = [tags.find((t) => t.type === 8 && t.data[1] === 0)!, tags.find((t) => t.type === 9 && t.data[1] === 0)!];
    const media = tags.filter((t) => t.type !== 18 && t.data[1] !== 0);
    const late = media.filter((t) => t.type === 9 || t.timestamp >= 1000);
    const at = late.findIndex((t) => t.type === 8);
    const events = remux([meta, avcHeader, ...late.slice(0, at), aacHeader, ...late.slice(at)]);
    const tracks = events.find((e) => e.kind === 'tracks');
    expect(tracks?.kind === 'tracks' && tracks.tracks.map((t) => [t.kind, t.filler, t.sampleRate, t.channels])).toEqual([
      ['video', false, undefined, undefined],
      ['audio', true, 48000, 1], // the fixture's sine is mono (onMetaData stereo: false)
    ]);
    const audio = events.filter((e) => (e.kind === 'media' && e.track === 'audio') || e.kind === 'init');
    const init = audio.findIndex((e) => e.kind === 'init');
    const silence = audio.slice(0, init).flatMap((e) => (e.kind === 'media' ? [e] : []));
    expect(silence.length).toBeGreaterThan(40);
    silence.forEach((e, i) => i > 0 && expect(e.start).toBeCloseTo(silence[i - 1]!.end, 9));
    expect(silence[silence.length - 1]!.end).toBeGreaterThanOrEqual(0.98);
    const first = audio[init + 1];
    expect(first?.kind === 'media' && first.bytes > 0 && first.start).toBeCloseTo(late[at]!.timestamp / 1000, 2);
  });

  it('rebuilds the track set at the next keyframe when a track it was not told about appears', () => {
    // No onMetaData: after a second of audio alone the set is fixed without video.
    const tags = tagsOf(join(dir, 'bf.flv'));
    const [aacHeader, avcHeader] = [tags.find((t) => t.type === 8 && t.data[1] === 0)!, tags.find((t) => t.type === 9 && t.data[1] === 0)!];
    const media = tags.filter((t) => t.type !== 18 && t.data[1] !== 0);
    // The video header arrives mid-GOP at 1.5 s; the next keyframe is at 2 s.
    const audio = media.filter((t) => t.type === 8 && t.timestamp < 1500);
    const after = media.filter((t) => t.timestamp >= 1500);
    const events = remux([aacHeader, ...audio, avcHeader, ...after]);
    const sets = events.flatMap((e, i) => (e.kind === 'tracks' ? [[i, e.tracks.map((t) => [t.kind, t.filler])] as const] : []));
    expect(sets.map(([, t]) => t)).toEqual([[['audio', false]], [['video', false], ['audio', false]]]);
    const [rebuiltAt] = sets[1]!;
    const next = events[rebuiltAt + 1];
    expect(next?.kind === 'media' && [next.track, next.keyframe, next.start]).toEqual(['video', true, 2 - audio[0]!.timestamp / 1000]);
    // No video before the rebuild, no init for the new track (the new set carries it), and the
    // sound goes on without a hole.
    expect(events.slice(0, rebuiltAt).some((e) => (e.kind === 'media' && e.track === 'video') || e.kind === 'init')).toBe(false);
    const sound = events.flatMap((e) => (e.kind === 'media' && e.track === 'audio' ? [e] : []));
    expect(sound.length).toBe(media.filter((t) => t.type === 8).length);
  });

  it('fills no track it could not play once configured', () => {
    // HEVC announced: no black H.264 stands in for it; the sound plays alone.
    const tags = tagsOf(join(dir, 'bf.flv'));
    const aacHeader = tags.find((t) => t.type === 8 && t.data[1] === 0)!;
    const meta = { type: 18, timestamp: 0, data: onMetaDataBody({ videocodecid: 12, audiocodecid: 10, width: 320, height: 240 }, false) } as FlvTag;
    const events = remux([meta, aacHeader, ...tags.filter((t) => t.type === 8 && t.data[1] === 1)]);
    const tracks = events.find((e) => e.kind === 'tracks');
    expect(tracks?.kind === 'tracks' && tracks.tracks.map((t) => [t.kind, t.filler])).toEqual([['audio', false]]);
  });

  it('continues the timeline after a discontinuity, restarting video on a keyframe', () => {
    const tags = tagsOf(join(dir, 'bf.flv'));
    const r = new FlvToFmp4();
    const first = remux(tags, r).filter((e) => e.kind === 'media');
    const lastEnd = Math.max(...first.map((e) => (e.kind === 'media' ? e.start : 0)));
    r.discontinuity();
    // A reconnect joins mid-GOP: skip the first keyframe's frames up to a P-frame.
    const midGop = tags.filter((t) => t.type !== 9 || t.timestamp > 100);
    const second = remux(midGop, r).filter((e) => e.kind === 'media');
    const video = second.filter((e) => e.kind === 'media' && e.track === 'video');
    expect(video[0]?.kind === 'media' && video[0].keyframe).toBe(true);
    for (const e of second) if (e.kind === 'media') expect(e.start).toBeGreaterThan(lastEnd);
    const starts = video.map((e) => (e.kind === 'media' ? e.start : 0));
    expect([...starts].sort((a, b) => a - b)).toEqual(starts);
  });

  it('treats a large timestamp jump in the input as a new segment', () => {
    const tags = tagsOf(join(dir, 'a44.flv'));
    const shifted = tags.map((t) => (t.timestamp > 1500 ? { ...t, timestamp: t.timestamp + 3_600_000 } : t));
    const media = remux(shifted).filter((e) => e.kind === 'media' && e.track === 'video');
    const starts = media.map((e) => (e.kind === 'media' ? e.start : 0));
    expect(Math.max(...starts)).toBeLessThan(3.2);
    for (let i = 1; i < starts.length; i++) expect(starts[i]!).toBeGreaterThan(starts[i - 1]!);
  });

  it('emits a new init only when a sequence header really changes', () => {
    const a = tagsOf(join(dir, 'bf.flv'));
    const b = tagsOf(join(dir, 'a44.flv'));
    const r = new FlvToFmp4();
    remux(a, r);
    const again = remux(a.slice(0, 3), r);
    expect(again.filter((e) => e.kind === 'init')).toEqual([]);
    r.discontinuity();
    const changed = remux(b, r).filter((e) => e.kind === 'init');
    expect(changed.map((e) => (e.kind === 'init' ? [e.track.kind, e.track.width ?? e.track.sampleRate] : []))).toEqual([
      ['video', 640],
      ['audio', 44100],
    ]);
  });
});

describe('FlvToFmp4: Enhanced RTMP video (hvc1, av01)', () => {
  /** A seed's frames as Enhanced RTMP tags, the sequence start first, from `startMs` on. */
  function exTags(seed: VideoSeed, startMs: number, frame = (data: Uint8Array): Uint8Array => data): FlvTag[] {
    const tags: FlvTag[] = [{ type: 9, timestamp: startMs, data: exVideoBody({ fourcc: seed.fourcc, keyframe: true, packetType: ExVideoPacketType.SequenceStart, data: seed.config }) }];
    for (const f of seed.frames) {
      const packetType = f.ctsMs === 0 && seed.fourcc === 'hvc1' ? ExVideoPacketType.CodedFramesX : ExVideoPacketType.CodedFrames;
      tags.push({ type: 9, timestamp: startMs + f.dtsMs, data: exVideoBody({ fourcc: seed.fourcc, keyframe: f.keyframe, packetType, cts: f.ctsMs, data: frame(f.data) }) });
    }
    return tags;
  }

  it('keeps temporal delimiters out of av01 samples, as the ISOBMFF binding asks', () => {
    const seed = videoSeed('av1');
    const events = remux(exTags(seed, 0, (data) => cat(h('12 00'), data)), new FlvToFmp4({ trackWaitMs: 0 }));
    const file = trackFile(events, 'video', 'td.mp4');
    const { samples } = readWithMp4box(new Uint8Array(readFileSync(file)));
    const got = [...samples.values()][0]!;
    expect(got.length).toBe(seed.frames.length);
    got.forEach((s, i) => expect(Buffer.from(s.data!).equals(seed.frames[i]!.data)).toBe(true));
  });

  it('a codec change mid-stream (AVC, then HEVC, then AV1): a new init of the new codec, then its frames from its first keyframe', () => {
    const avc = tagsOf(join(dir, 'video-only.flv')).filter((t) => t.type === 9);
    const end = avc[avc.length - 1]!.timestamp;
    const hevc = videoSeed('hevc');
    const av1 = videoSeed('av1');
    // The HEVC stream joins mid-GOP: its frames before the second keyframe must not play.
    const hevcTags = exTags(hevc, end + 40);
    const hevcJoin = [hevcTags[0]!, ...hevcTags.slice(2)];
    const av1Tags = exTags(av1, end + 40 + 1500);
    const events = remux([...avc, ...hevcJoin, ...av1Tags], new FlvToFmp4({ trackWaitMs: 0 }));
    const inits = events.flatMap((e, i) => (e.kind === 'init' ? [[i, e.track.codec]] as const : []));
    expect(inits.map(([, c]) => c.toLowerCase())).toEqual([hevc.codec.toLowerCase(), av1.codec.toLowerCase()]);
    const mediaAfter = (i: number): RemuxEvent | undefined => events.slice(i + 1).find((e) => e.kind === 'media');
    for (const [i] of inits) expect(mediaAfter(i)).toMatchObject({ kind: 'media', track: 'video', keyframe: true });
    const secondHevcKey = hevc.frames.findIndex((f, i) => i > 0 && f.keyframe);
    expect(mediaAfter(inits[0]![0])).toMatchObject({ start: (end + 40 + hevc.frames[secondHevcKey]!.dtsMs) / 1000 });
    // Every frame of each codec from its first keyframe on, and nothing else (fragments may hold several).
    const bytes = (tags: readonly FlvTag[]): number => tags.reduce((n, t) => n + t.data.length, 0);
    const expected = bytes(avc.filter((t) => t.data[1] === 1)) + bytes(hevcTags.slice(1 + secondHevcKey)) + bytes(av1Tags.slice(1));
    expect(events.reduce((n, e) => n + (e.kind === 'media' && e.track === 'video' ? e.bytes : 0), 0)).toBe(expected);
  });

  it('gives the first frame the duration of onMetaData\'s framerate, so MSE sees no gap before the second', () => {
    const seed = videoSeed('av1'); // 10 fps
    const first = (tags: FlvTag[]): RemuxEvent | undefined => remux(tags, new FlvToFmp4({ trackWaitMs: 0 })).find((e) => e.kind === 'media');
    const meta = (framerate: number): FlvTag => ({ type: 18, timestamp: 0, data: onMetaDataBody({ framerate, hasAudio: false }, false) });
    expect(first([meta(10), ...exTags(seed, 0)])).toMatchObject({ start: 0, end: 0.1 });
    expect(first([meta(29.97), ...exTags(seed, 0)])).toMatchObject({ start: 0, end: 0.033 });
    // Without it (or with a nonsensical one), the default: Chromium then drops frames to the next keyframe.
    expect(first([meta(0), ...exTags(seed, 0)])).toMatchObject({ start: 0, end: 0.033 });
    expect(first(exTags(seed, 0))).toMatchObject({ start: 0, end: 0.033 });
  });

  it('a stream shaped like the spec\'s sample FLVs: an empty sequence start first, colorInfo metadata as a "command" frame, temporal delimiters', () => {
    // What the AV1 files of veovera/enhanced-rtmp's e-rtmp-lab hold (read once by hand, not
    // committed): 90 'av01' with no record, then the record, then d4 'av01' (Metadata, FrameType
    // 5, ignored for Metadata) with AMF colorInfo, then coded frames that start with 12 00.
    const seed = videoSeed('av1');
    const [start, ...frames] = exTags(seed, 0, (data) => cat(h('12 00'), data));
    const empty: FlvTag = { type: 9, timestamp: 0, data: h("90 'av01'") };
    const colorInfo: FlvTag = { type: 9, timestamp: 0, data: cat(h("d4 'av01'"), encodeAmf0(['colorInfo', { colorConfig: { bitDepth: 8 } }])) };
    const tags = [empty, start!, colorInfo, ...frames];
    expect(tags.map(tagKind).slice(0, 4)).toEqual([TagKind.Other, TagKind.VideoConfig, TagKind.Other, TagKind.Keyframe]);
    const events = remux(tags, new FlvToFmp4({ trackWaitMs: 0 }));
    expect(events.filter((e) => e.kind === 'tracks').map((e) => e.kind === 'tracks' && e.tracks.map((t) => t.codec))).toEqual([[seed.codec]]);
    const { samples } = readWithMp4box(new Uint8Array(readFileSync(trackFile(events, 'video', 'lab.mp4'))));
    expect([...samples.values()][0]!.map((s) => new Uint8Array(s.data!))).toEqual(seed.frames.map((f) => f.data));
  });

  it('refuses a multitrack tag with a clear error and goes on with the next one', () => {
    const seed = videoSeed('hevc');
    const r = new FlvToFmp4({ trackWaitMs: 0 });
    const [start, ...frames] = exTags(seed, 0);
    remux([start!, frames[0]!], r);
    expect(code(() => r.push({ type: 9, timestamp: 100, data: h("96 00 'hvc1' 00 93 00 00 00") }))).toBe('FLV_UNSUPPORTED');
    expect(remux(frames.slice(1), r).filter((e) => e.kind === 'media').length).toBeGreaterThan(0);
  });
});


import { beforeAll, describe, expect, it } from 'vitest';
import {
  ExVideoPacketType,
  FlvReader,
  FlvToFmp4,
  TagKind,
  amf0Props,
  avcVideoBody,
  exVideoBody,
  flvHeader,
  flvTag,
  parseFlvTag,
  parseScriptBody,
  parseVideoBody,
  tagKind,
  type RemuxTrack,
} from '@onair/shared';
import { readWithMp4box } from '../../../shared/src/testing/mp4box-samples.js';

/** shared/src/testing/video-seeds.ts, as this test uses it (the web workspace has no Node typings). */
interface VideoSeeds {
  videoSeed(name: string): {
    fourcc: 'av01' | 'hvc1';
    path: string;
    config: Uint8Array;
    codec: string;
    width: number;
    height: number;
    frames: { dtsMs: number; ctsMs: number; keyframe: boolean; data: Uint8Array }[];
  };
  decodedFrameHashes(path: string): string[];
  probeMp4(mp4: Uint8Array): { packets: [number, number][]; hashes: string[] };
}

async function videoSeeds(): Promise<VideoSeeds> {
  const path = '../../../shared/src/testing/video-seeds.js';
  return (await import(/* @vite-ignore */ path)) as VideoSeeds;
}
import { CbrFiller, fillerFits } from './cbr-filler.js';
import { FlvMuxer } from './flv-muxer.js';

describe('FlvMuxer.video', () => {
  it('writes the same bytes as flvTag(avcVideoBody(...)), extended timestamps and large composition times included', () => {
    const m = new FlvMuxer();
    for (const [ms, key, cts] of [[0, true, 0], [33, false, 67], [0x1234567, false, 0x7fffff], [0x89abcdef, true, 0]] as const) {
      const data = Uint8Array.from({ length: 100 }, (_, i) => i);
      const a = m.video(data, key, ms * 1000, (ms + cts) * 1000);
      const b = flvTag({ type: 9, timestamp: ms, data: avcVideoBody({ keyframe: key, packetType: 1, cts, data }) });
      expect(Array.from(a)).toEqual(Array.from(b));
    }
  });

  it('appends a well-formed filler NAL unit (H.264 7.3.2.7) up to the CBR budget', () => {
    const filler = new CbrFiller(2_500_000, 30);
    const n = filler.fillerFor(1000);
    expect(n).toBe(Math.floor(2_500_000 / 8 / 30) - 1000);
    const tag = parseFlvTag(new FlvMuxer().video(new Uint8Array(1000), false, 0, 0, n));
    expect(tag.data.length).toBe(5 + 1000 + n);
    const at = 5 + 1000;
    expect(new DataView(tag.data.buffer, tag.data.byteOffset).getUint32(at)).toBe(n - 4);
    expect(tag.data[at + 4]).toBe(0x0c);
    expect(tag.data.subarray(at + 5, tag.data.length - 1).every((b) => b === 0xff)).toBe(true);
    expect(tag.data[tag.data.length - 1]).toBe(0x80);
  });

  it('pays a big keyframe back before filling again', () => {
    const filler = new CbrFiller(2_500_000, 30);
    const perFrame = 2_500_000 / 8 / 30;
    expect(filler.fillerFor(perFrame * 5)).toBe(0);
    let paid = 0;
    for (let i = 0; i < 3; i++) paid += filler.fillerFor(perFrame / 2);
    expect(paid).toBe(0);
  });

  it('fills only streams with 4-byte NAL unit lengths (avcC lengthSizeMinusOne = 3)', () => {
    // configurationVersion 1, profile 66, compatibility 0xc0, level 31, then 0xfc | lengthSizeMinusOne.
    const avcC = (lengthSizeMinusOne: number): Uint8Array => Uint8Array.of(1, 66, 0xc0, 31, 0xfc | lengthSizeMinusOne, 0xe0, 0);
    expect(fillerFits(avcC(3))).toBe(true);
    expect(fillerFits(avcC(1))).toBe(false);
    expect(fillerFits(avcC(0))).toBe(false);
    expect(fillerFits(new Uint8Array(4))).toBe(false);
  });

  it('writes CompositionTime = round(PTS) − round(DTS) in ms, for times that are not whole ms', () => {
    const m = new FlvMuxer();
    // DTS 1.4 ms → 1 ms, PTS 100.5 ms → 101 ms: 100 ms, where round(PTS − DTS) would say 99.
    const tag = parseFlvTag(m.video(new Uint8Array(10), false, 1_400, 100_500).slice());
    expect(tag.timestamp).toBe(1);
    expect(parseVideoBody(tag.data).cts).toBe(100);
  });

  it('refuses decode times that do not increase in ms, or that pass the presentation time, instead of clamping them', () => {
    const m = new FlvMuxer();
    m.video(new Uint8Array(10), true, 66_000);
    expect(() => m.video(new Uint8Array(10), false, 33_000)).toThrow(/33 ms not after 66 ms/);
    // Two decode times 0.6 ms apart round to the same millisecond.
    expect(() => m.video(new Uint8Array(10), false, 66_400)).toThrow(/66 ms not after 66 ms/);
    expect(() => m.video(new Uint8Array(10), false, 100_000, 99_000)).toThrow(/decode time 100 ms after its presentation time 99 ms/);
    // A refused frame changes nothing: the next good one follows the last written.
    expect(parseFlvTag(m.video(new Uint8Array(10), false, 67_000, 100_000).slice()).timestamp).toBe(67);
    expect(() => new FlvMuxer().video(new Uint8Array(10), true, -1_000)).toThrow(/before 0/);
  });

  it('refuses timestamps at or past 2^32 ms instead of wrapping', () => {
    expect(() => new FlvMuxer().video(new Uint8Array(10), true, 2 ** 32 * 1000)).toThrow(RangeError);
    expect(() => new FlvMuxer().audio(new Uint8Array(10), 2 ** 32 * 1000)).toThrow();
  });
});

describe('FlvMuxer: Enhanced RTMP video (hvc1, av01)', () => {
  const meta = { width: 170, height: 98, framerate: 10, videoBitrate: 1e6, audioBitrate: 128e3, sampleRate: 48000, channels: 2 };

  it('writes ex-header tags byte for byte as exVideoBody: CodedFrames with a composition time, CodedFramesX without', () => {
    const hevc = new FlvMuxer('hvc1');
    const data = Uint8Array.of(0, 0, 0, 2, 0x26, 0x01);
    const same = (a: Uint8Array, b: Uint8Array): void => expect(Array.from(a)).toEqual(Array.from(b));
    same(hevc.videoConfig(Uint8Array.of(1, 2)), flvTag({ type: 9, timestamp: 0, data: exVideoBody({ fourcc: 'hvc1', keyframe: true, packetType: ExVideoPacketType.SequenceStart, data: Uint8Array.of(1, 2) }) }));
    same(hevc.video(data, true, 0, 200_000), flvTag({ type: 9, timestamp: 0, data: exVideoBody({ fourcc: 'hvc1', keyframe: true, packetType: ExVideoPacketType.CodedFrames, cts: 200, data }) }));
    same(hevc.video(data, false, 0x1234567 * 1000), flvTag({ type: 9, timestamp: 0x1234567, data: exVideoBody({ fourcc: 'hvc1', keyframe: false, packetType: ExVideoPacketType.CodedFramesX, data }) }));
    same(hevc.videoEnd(), flvTag({ type: 9, timestamp: 0x1234567, data: exVideoBody({ fourcc: 'hvc1', keyframe: true, packetType: ExVideoPacketType.SequenceEnd, data: new Uint8Array(0) }) }));
    // Golden bytes from the spec's layout: 0x80 | FrameType 1 << 4 | CodedFrames, 'hvc1', SI24 200.
    expect(Array.from(parseFlvTag(new FlvMuxer('hvc1').video(data, true, 0, 200_000)).data.subarray(0, 8))).toEqual([0x91, 0x68, 0x76, 0x63, 0x31, 0, 0, 200]);
    const av1 = new FlvMuxer('av01');
    expect(Array.from(parseFlvTag(av1.video(data, false, 5_000)).data.subarray(0, 5))).toEqual([0xa1, 0x61, 0x76, 0x30, 0x31]);
    expect(() => av1.video(data, false, 10_000, 20_000)).toThrow(/AV1 frame with composition time 10 ms/);
    expect(() => new FlvMuxer('hvc1').video(data, false, 0, 0, 100)).toThrow(/H.264 streams only/);
    // The legacy AVC end of sequence.
    expect(Array.from(parseFlvTag(new FlvMuxer().videoEnd()).data)).toEqual([0x17, 2, 0, 0, 0]);
  });

  it('onMetaData videocodecid: the FourCC as a number for hvc1 and av01, 7 for AVC', () => {
    const id = (m: FlvMuxer): unknown => amf0Props(parseScriptBody(parseFlvTag(m.metadata(meta)).data).value)?.['videocodecid'];
    expect([id(new FlvMuxer()), id(new FlvMuxer('hvc1')), id(new FlvMuxer('av01'))]).toEqual([7, 0x68766331, 0x61763031]);
  });

  describe('real AV1 and HEVC streams: muxed, read back, remuxed to fMP4 and decoded', () => {
    let seeds: VideoSeeds;
    beforeAll(async () => {
      seeds = await videoSeeds();
    });

    it.each(['av1', 'av1_10bit', 'hevc', 'hevc_1080p', 'hevc_444_10bit'])('%s', (name) => {
      const seed = seeds.videoSeed(name);
      const m = new FlvMuxer(seed.fourcc);
      const tags: Uint8Array[] = [m.metadata(meta), m.videoConfig(seed.config)];
      for (const f of seed.frames) tags.push(m.video(f.data, f.keyframe, f.dtsMs * 1000, (f.dtsMs + f.ctsMs) * 1000).slice());
      tags.push(m.videoEnd());
      const flv = new Uint8Array(flvHeader({ audio: false, video: true }).length + tags.reduce((n, t) => n + t.length, 0));
      let at = 0;
      for (const part of [flvHeader({ audio: false, video: true }), ...tags]) {
        flv.set(part, at);
        at += part.length;
      }

      // Read back with our FLV reader and parser: every byte and flag where the muxer put it.
      const read = new FlvReader().push(flv);
      expect(read.length).toBe(seed.frames.length + 3);
      expect(amf0Props(parseScriptBody(read[0]!.data).value)?.['videocodecid']).toBe(seed.fourcc === 'av01' ? 0x61763031 : 0x68766331);
      const config = parseVideoBody(read[1]!.data);
      expect([config.fourcc, config.packetType, tagKind(read[1]!)]).toEqual([seed.fourcc, ExVideoPacketType.SequenceStart, TagKind.VideoConfig]);
      expect(Array.from(config.data)).toEqual(Array.from(seed.config));
      seed.frames.forEach((f, i) => {
        const tag = read[i + 2]!;
        const body = parseVideoBody(tag.data);
        const packetType = seed.fourcc === 'hvc1' && f.ctsMs === 0 ? ExVideoPacketType.CodedFramesX : ExVideoPacketType.CodedFrames;
        expect([tag.timestamp, body.fourcc, body.packetType, body.keyframe, body.cts]).toEqual([f.dtsMs, seed.fourcc, packetType, f.keyframe, f.ctsMs]);
        expect(tagKind(tag)).toBe(f.keyframe ? TagKind.Keyframe : TagKind.Frame);
        expect(body.data).toEqual(f.data);
      });
      const end = parseVideoBody(read[read.length - 1]!.data);
      expect([end.packetType, tagKind(read[read.length - 1]!)]).toEqual([ExVideoPacketType.SequenceEnd, TagKind.Other]);

      // The watch path: remuxed to fMP4, the init segment names the codec as mp4box does.
      const remux = new FlvToFmp4({ trackWaitMs: 0 });
      const out: Uint8Array[] = [];
      let track: RemuxTrack | undefined;
      for (const tag of read.slice(1)) {
        for (const e of remux.push(tag)) {
          if (e.kind === 'tracks') {
            track = e.tracks.find((t) => t.kind === 'video');
            out.push(track!.init);
          } else if (e.kind === 'init') out.push(e.track.init);
          else if (e.kind === 'media' && e.track === 'video') out.push(e.data);
        }
      }
      expect(track).toMatchObject({ codec: expect.stringMatching(new RegExp(`^${seed.codec.replace(/\./g, '\\.')}$`, 'i')), width: seed.width, height: seed.height, filler: false });
      expect(track!.mimeType).toBe(`video/mp4; codecs="${track!.codec}"`);
      const mp4 = new Uint8Array(out.reduce((n, b) => n + b.length, 0));
      at = 0;
      for (const b of out) {
        mp4.set(b, at);
        at += b.length;
      }
      const judged = readWithMp4box(mp4);
      expect(judged.info.tracks.map((t) => [t.codec.toLowerCase(), t.video?.width, t.video?.height])).toEqual([[seed.codec.toLowerCase(), seed.width, seed.height]]);
      const samples = judged.samples.get(judged.info.tracks[0]!.id)!;
      // mp4box adds up trun durations; ffprobe below reads each fragment's decode time.
      expect(samples.map((s) => [s.cts - s.dts, s.is_sync])).toEqual(seed.frames.map((f) => [f.ctsMs, f.keyframe]));
      samples.forEach((s, i) => expect(new Uint8Array(s.data!)).toEqual(seed.frames[i]!.data));
      const probe = seeds.probeMp4(mp4);
      expect(probe.packets).toEqual(seed.frames.map((f) => [f.dtsMs + f.ctsMs, f.dtsMs]));
      // ffmpeg decodes every frame of our fragments to the very pictures of its own file.
      expect(probe.hashes).toHaveLength(seed.frames.length);
      expect(probe.hashes).toEqual(seeds.decodedFrameHashes(seed.path));
    });
  });
});

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ISOFile, Movie, Sample } from 'mp4box';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aacCodecString, parseAudioSpecificConfig } from '../codec/aac.js';
import { avcCodecString } from '../codec/avc.js';
import { parseAudioBody, parseVideoBody } from '../flv/flv-media.js';
import { FlvReader } from '../flv/flv-reader.js';
import { FlvTagType } from '../flv/flv-tag.js';
import { readWithMp4box } from '../testing/mp4box-samples.js';
import { fragment, initSegment, type Fmp4Sample, type Fmp4Track } from './fmp4-writer.js';
import { cat as catAll, errorCode as code, h } from '../testing/bytes.js';

interface Parsed {
  file: ISOFile;
  info: Movie;
  samples: Map<number, Sample[]>;
}

const mp4box = (bytes: Uint8Array): Parsed => readWithMp4box(bytes);

describe('fMP4 writer: golden bytes (ISO/IEC 14496-12)', () => {
  it('a one-sample fragment with a 64-bit decode time', () => {
    const got = fragment({
      trackId: 1,
      sequence: 7,
      baseDecodeTime: 2 ** 32 + 5,
      samples: [{ duration: 40, size: 2, keyframe: true, cts: 80, data: h('aa bb') }],
    });
    const expected = h(`
      00 00 00 68 'moof'
        00 00 00 10 'mfhd' 00 00 00 00 00 00 00 07
        00 00 00 50 'traf'
          00 00 00 10 'tfhd' 00 02 00 00 00 00 00 01
          00 00 00 14 'tfdt' 01 00 00 00 00 00 00 01 00 00 00 05
          00 00 00 24 'trun' 00 00 0f 01 00 00 00 01 00 00 00 70
            00 00 00 28 00 00 00 02 02 00 00 00 00 00 00 50
      00 00 00 0a 'mdat' aa bb`);
    expect(got).toEqual(expected);
  });

  it('trun version 1 with a negative composition offset, non-sync flags', () => {
    const got = fragment({ trackId: 2, sequence: 1, baseDecodeTime: 0, samples: [{ duration: 1, keyframe: false, cts: -2, data: h('01') }] });
    const trun = got.subarray(0x44, 0x68);
    expect(trun).toEqual(h("00 00 00 24 'trun' 01 00 0f 01 00 00 00 01 00 00 00 70 00 00 00 01 00 00 00 01 01 01 00 00 ff ff ff fe"));
  });

  it('refuses inconsistent input', () => {
    const s: Fmp4Sample = { duration: 1, keyframe: true, cts: 0, data: h('01 02') };
    expect(code(() => fragment({ trackId: 1, sequence: 1, baseDecodeTime: 0, samples: [] }))).toBe('MP4_BAD_INPUT');
    expect(code(() => fragment({ trackId: 1, sequence: 1, baseDecodeTime: 0, samples: [{ ...s, size: 3 }] }))).toBe('MP4_BAD_INPUT');
    expect(code(() => fragment({ trackId: 1, sequence: 1, baseDecodeTime: -1, samples: [s] }))).toBe('MP4_BAD_INPUT');
    expect(code(() => fragment({ trackId: 1, sequence: 1, baseDecodeTime: 0, samples: [{ ...s, duration: -1 }] }))).toBe('MP4_BAD_INPUT');
    expect(code(() => initSegment([]))).toBe('MP4_BAD_INPUT');
  });
});

describe('fMP4 writer judged by mp4box and ffmpeg, fed with ffmpeg-made H.264 and AAC', () => {
  let dir = '';
  let flvPath = '';
  let init: Uint8Array = new Uint8Array(0);
  let fragments: Uint8Array[] = [];
  let tracks: Fmp4Track[] = [];
  const video: Array<{ dts: number; cts: number; key: boolean; data: Uint8Array }> = [];
  const audio: Uint8Array[] = [];
  let audioStart = 0;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'onair-fmp4-'));
    flvPath = join(dir, 'src.flv');
    execFileSync('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=25',
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-t', '2', '-c:v', 'libx264', '-preset', 'veryfast', '-bf', '2', '-g', '25', '-c:a', 'aac', '-ac', '2', '-f', 'flv', flvPath,
    ]);
    const tags = new FlvReader().push(new Uint8Array(readFileSync(flvPath)));
    let avcC: Uint8Array | undefined;
    let asc: Uint8Array | undefined;
    for (const t of tags) {
      if (t.type === FlvTagType.Video) {
        const v = parseVideoBody(t.data);
        if (v.packetType === 0) avcC = v.data;
        else if (v.packetType === 1) video.push({ dts: t.timestamp, cts: v.cts, key: v.keyframe, data: v.data });
      } else if (t.type === FlvTagType.Audio) {
        const a = parseAudioBody(t.data);
        if (a.packetType === 0) asc = a.data;
        else {
          if (audio.length === 0) audioStart = t.timestamp;
          audio.push(a.data);
        }
      }
    }
    const cfg = parseAudioSpecificConfig(asc!);
    tracks = [
      { kind: 'video', id: 1, timescale: 1000, width: 1280, height: 720, avcC: avcC! },
      { kind: 'audio', id: 2, timescale: cfg.sampleRate, sampleRate: cfg.sampleRate, channels: cfg.channels, asc: asc! },
    ];
    init = initSegment(tracks);
    // One fragment per video frame (as the live player does), audio in fragments of 1 and 3 frames.
    let seq = 1;
    fragments = [];
    video.forEach((v, i) => {
      const duration = (video[i + 1]?.dts ?? v.dts + 40) - v.dts;
      fragments.push(fragment({ trackId: 1, sequence: seq++, baseDecodeTime: v.dts, samples: [{ duration, size: v.data.length, keyframe: v.key, cts: v.cts, data: v.data }] }));
    });
    const base = Math.round((audioStart * cfg.sampleRate) / 1000);
    for (let i = 0; i < audio.length; ) {
      const n = i % 2 === 0 ? 1 : 3;
      const frames = audio.slice(i, i + n);
      fragments.push(
        fragment({
          trackId: 2,
          sequence: seq++,
          baseDecodeTime: base + i * 1024,
          samples: frames.map((data) => ({ duration: 1024, keyframe: true, cts: 0, data })),
        }),
      );
      i += frames.length;
    }
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('init segment: boxes, codec strings, timescales, no mehd', () => {
    const { file, info } = mp4box(init);
    expect(info.isFragmented).toBe(true);
    const video = tracks[0]!;
    const avcC = video.kind === 'video' && 'avcC' in video ? video.avcC : new Uint8Array(0);
    // mp4box prints the avcC bytes in lower-case hex; RFC 6381 hex is case-insensitive.
    expect(info.tracks.map((t) => [t.id, t.type, t.codec.toUpperCase(), t.timescale])).toEqual([
      [1, 'video', avcCodecString(avcC).toUpperCase(), 1000],
      [2, 'audio', aacCodecString({ objectType: 2 }).toUpperCase(), 48000],
    ]);
    expect(avcCodecString(avcC)).toMatch(/^avc1\.64[0-9A-F]{4}$/);
    expect(info.tracks[0]!.video).toEqual({ width: 1280, height: 720 });
    expect(info.tracks[1]!.audio).toMatchObject({ sample_rate: 48000, channel_count: 2 });
    expect(info.tracks.map((t) => t.nb_samples)).toEqual([0, 0]);
    expect(info.duration).toBe(0);
    const moov = file.moov!;
    expect(moov.mvex?.mehd).toBeUndefined();
    expect(moov.mvex?.trexs.map((t) => t.track_id)).toEqual([1, 2]);
    expect(file.ftyp?.major_brand).toBe('isom');
  });

  it('init + fragments: mp4box reports every sample with the right times, sizes, sync flags and bytes', () => {
    const { samples, file } = mp4box(catAll(init, ...fragments));
    expect(file.moofs.length).toBe(fragments.length);
    const v = samples.get(1)!;
    expect(v.length).toBe(video.length);
    v.forEach((s, i) => {
      const src = video[i]!;
      expect([s.dts, s.cts, s.size, s.is_sync, s.timescale], `video ${i}`).toEqual([src.dts, src.dts + src.cts, src.data.length, src.key, 1000]);
      expect(s.data).toEqual(src.data);
    });
    expect(v.some((s) => s.cts !== s.dts)).toBe(true);
    const a = samples.get(2)!;
    expect(a.length).toBe(audio.length);
    const base = Math.round((audioStart * 48000) / 1000);
    a.forEach((s, i) => {
      expect([s.dts, s.cts, s.duration, s.size, s.is_sync], `audio ${i}`).toEqual([base + i * 1024, base + i * 1024, 1024, audio[i]!.length, true]);
      expect(s.data).toEqual(audio[i]);
    });
  });

  it('negative composition offsets come out as pts before dts', () => {
    const { samples } = mp4box(
      catAll(
        init,
        fragment({
          trackId: 1,
          sequence: 1,
          baseDecodeTime: 1000,
          samples: video.slice(0, 3).map((f, i) => ({ duration: 40, keyframe: f.key, cts: [0, 80, -40][i]!, data: f.data })),
        }),
      ),
    );
    expect(samples.get(1)!.map((s) => [s.dts, s.cts])).toEqual([[1000, 1000], [1040, 1120], [1080, 1040]]);
  });

  it('ffprobe accepts the file and ffmpeg decodes the same video frames as from the FLV', () => {
    const mp4 = join(dir, 'out.mp4');
    writeFileSync(mp4, catAll(init, ...fragments));
    const probe = JSON.parse(
      execFileSync('ffprobe', ['-v', 'error', '-count_packets', '-show_entries', 'stream=codec_name,profile,width,height,sample_rate,channels,nb_read_packets', '-of', 'json', mp4], { encoding: 'utf8' }),
    ) as { streams: Array<Record<string, string | number>> };
    expect(probe.streams).toEqual([
      expect.objectContaining({ codec_name: 'h264', width: 1280, height: 720, nb_read_packets: String(video.length) }),
      expect.objectContaining({ codec_name: 'aac', profile: 'LC', sample_rate: '48000', channels: 2, nb_read_packets: String(audio.length) }),
    ]);
    const hashes = (path: string): string[] =>
      execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', path, '-map', '0:v', '-f', 'framemd5', '-'], { encoding: 'utf8', maxBuffer: 16 << 20 })
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => l.split(',').at(-1)!.trim());
    const fromMp4 = hashes(mp4);
    expect(fromMp4.length).toBe(video.length);
    expect(fromMp4).toEqual(hashes(flvPath));
    const errors = execFileSync('sh', ['-c', `ffmpeg -hide_banner -v error -i '${mp4}' -f null - 2>&1`], { encoding: 'utf8' });
    expect(errors).toBe('');
  });
});

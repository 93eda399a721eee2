import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAudioSpecificConfig } from '../codec/aac.js';
import { parseAvcC, parseSps } from '../codec/avc.js';
import { fragment, initSegment } from '../mp4/fmp4-writer.js';
import { BLACK_FRAME_HEIGHT, BLACK_FRAME_WIDTH, blackFrame, blackFrameAvcC, silenceConfig, silentAacFrame } from './filler.js';

// The stand-ins are judged by ffmpeg's decoders: they must decode without a single complaint,
// to a black picture and to digital silence.

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'onair-filler-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Runs ffmpeg with `-v error` on `file`, returning the decoded raw output; any message fails. */
function decode(file: string, output: string[]): Buffer {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-xerror', '-i', file, ...output, '-'], { maxBuffer: 64 * 1024 * 1024 });
  expect(r.stderr.toString()).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

function mp4(name: string, parts: Uint8Array[]): string {
  const file = join(dir, name);
  writeFileSync(file, Buffer.concat(parts));
  return file;
}

describe('black picture', () => {
  it('is a 128×72 Constrained Baseline configuration', () => {
    const c = parseAvcC(blackFrameAvcC());
    expect([c.profile, c.compat, c.level]).toEqual([66, 0xc0, 10]);
    const sps = parseSps(c.sps[0]!);
    expect([sps.width, sps.height]).toEqual([BLACK_FRAME_WIDTH, BLACK_FRAME_HEIGHT]);
  });

  it('decodes, frame after frame, to black', () => {
    const avcC = blackFrameAvcC();
    const frames = 10;
    const parts = [initSegment([{ kind: 'video', id: 1, timescale: 1000, width: BLACK_FRAME_WIDTH, height: BLACK_FRAME_HEIGHT, avcC }])];
    for (let i = 0; i < frames; i++) {
      parts.push(fragment({ trackId: 1, sequence: i + 1, baseDecodeTime: i * 21, samples: [{ duration: 21, keyframe: true, cts: 0, data: blackFrame(i) }] }));
    }
    // Both IDR variants, alternating, and nothing else: a few hundred bytes in all.
    expect(blackFrame(0)).not.toEqual(blackFrame(1));
    expect(blackFrame(2)).toEqual(blackFrame(0));
    expect(avcC.length + blackFrame(0).length + blackFrame(1).length).toBeLessThan(200);
    const raw = decode(mp4('black.mp4', parts), ['-map', '0:v', '-vsync', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'yuv420p']);
    const luma = BLACK_FRAME_WIDTH * BLACK_FRAME_HEIGHT;
    const frameBytes = luma * 1.5;
    expect(raw.length).toBe(frames * frameBytes);
    for (let i = 0; i < frames; i++) {
      const y = raw.subarray(i * frameBytes, i * frameBytes + luma);
      const uv = raw.subarray(i * frameBytes + luma, (i + 1) * frameBytes);
      // Limited-range black: luma 16, chroma neutral.
      expect([Math.min(...y), Math.max(...y)]).toEqual([16, 16]);
      expect([Math.min(...uv), Math.max(...uv)]).toEqual([128, 128]);
    }
  });
});

describe('silence', () => {
  for (const [rate, channels] of [[48000, 2], [44100, 1], [44100, 2], [22050, 1]] as const) {
    it(`decodes to digital silence: ${rate} Hz, ${channels} channel(s)`, () => {
      const asc = silenceConfig(rate, channels);
      expect(parseAudioSpecificConfig(asc)).toMatchObject({ objectType: 2, sampleRate: rate, channels });
      const frames = 20;
      const parts = [initSegment([{ kind: 'audio', id: 2, timescale: rate, sampleRate: rate, channels, asc }])];
      for (let i = 0; i < frames; i++) {
        parts.push(fragment({ trackId: 2, sequence: i + 1, baseDecodeTime: i * 1024, samples: [{ duration: 1024, keyframe: true, cts: 0, data: silentAacFrame(channels) }] }));
      }
      const pcm = decode(mp4(`silence-${rate}-${channels}.mp4`, parts), ['-map', '0:a', '-f', 's16le', '-ac', String(channels), '-ar', String(rate)]);
      const samples = new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length / 2);
      expect(samples.length).toBe(frames * 1024 * channels);
      expect(samples.every((s) => s === 0)).toBe(true);
    });
  }

  it('is 4 bytes for one channel and 6 for two', () => {
    expect(silentAacFrame(1).length).toBe(4);
    expect(silentAacFrame(2).length).toBe(6);
  });
});

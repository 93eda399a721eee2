import { readFileSync } from 'node:fs';
import { FlvReader, tagKind, TagKind, type FlvTag } from '@onair/shared';
import { describe, expect, it } from 'vitest';
import { flvFixture } from '../../test/harness/fixtures.js';
import { InputMeter } from './input-meter.js';

// The meter reads what an input carries from the tags ffmpeg made (720p30 H.264 at ~2.5 Mbps with
// a keyframe every 2 s, AAC-LC 48 kHz stereo at 128 kbps), arriving at their own timestamps.

async function fixtureTags(seconds: number): Promise<FlvTag[]> {
  const reader = new FlvReader();
  return [...reader.push(readFileSync(await flvFixture({ seconds })))];
}

describe('InputMeter', () => {
  it('reports codecs, picture size, frame rate, bitrate and keyframe interval of a real stream', async () => {
    const meter = new InputMeter();
    const tags = await fixtureTags(10);
    for (const tag of tags) meter.push(tag, tagKind(tag), tag.timestamp);
    const stats = meter.stats(tags.at(-1)!.timestamp);
    expect(stats).toMatchObject({ videoCodec: expect.stringMatching(/^avc1\.[0-9a-fA-F]{6}$/), audioCodec: 'mp4a.40.2', width: 1280, height: 720, keyframeIntervalS: 2, reconnects: 0 });
    expect(stats.fps).toBeGreaterThanOrEqual(29);
    expect(stats.fps).toBeLessThanOrEqual(31);
    expect(stats.bitrateKbps).toBeGreaterThan(2000);
    expect(stats.bitrateKbps).toBeLessThan(3500);
  });

  it('falls to zero rates when nothing arrives, and keeps the codecs', async () => {
    const meter = new InputMeter();
    const tags = await fixtureTags(4);
    for (const tag of tags) meter.push(tag, tagKind(tag), tag.timestamp);
    const stats = meter.stats(tags.at(-1)!.timestamp + 6000);
    expect(stats).toMatchObject({ bitrateKbps: 0, fps: 0, width: 1280 });
    expect(stats.videoCodec).not.toBe('');
  });

  it('never throws on headers it cannot read, and leaves their columns empty', () => {
    const meter = new InputMeter();
    const garbage: FlvTag[] = [
      { type: 9, timestamp: 0, data: new Uint8Array([0x17, 0x00, 0, 0, 0, 0xff, 0xff]) },
      { type: 8, timestamp: 0, data: new Uint8Array([0xaf, 0x00]) },
      { type: 9, timestamp: 0, data: new Uint8Array([0x90]) },
    ];
    for (const tag of garbage) meter.push(tag, tagKind(tag), 0);
    expect(meter.stats(0)).toMatchObject({ videoCodec: '', audioCodec: '', width: 0, height: 0 });
  });

  it('stays bounded under a flood of tiny tags', () => {
    const meter = new InputMeter();
    const tag: FlvTag = { type: 8, timestamp: 0, data: new Uint8Array([0xaf, 0x01, 0]) };
    for (let i = 0; i < 200_000; i++) meter.push(tag, TagKind.Audio, 1000);
    // Only the newest 20,000 are counted: 60 kB over the 5 s window.
    expect(meter.stats(1000).bitrateKbps).toBe(Math.round((20_000 * 3 * 8) / 5000));
  });
});

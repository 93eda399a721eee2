import { describe, expect, it } from 'vitest';
import { parseFlvTag } from '@onair/shared';
import { StreamTimeline, type OutTag } from './stream-timeline.js';

const META = { width: 1280, height: 720, framerate: 30, videoBitrate: 2_500_000, audioBitrate: 128_000, sampleRate: 48_000, channels: 2 };
const ASC = Uint8Array.of(0x11, 0x90); // AAC-LC, 48 kHz, stereo
const AVCC = Uint8Array.of(1, 0x4d, 0x40, 0x1f, 0xff, 0xe1, 0, 0);
const FRAME = Uint8Array.of(0, 0, 0, 1, 0x65);

/** Tag type, timestamp and the first body byte (FLV §E.4.1: 8 audio, 9 video, 18 script). */
function summary(tags: OutTag[]): [number, number, number][] {
  return tags.map((tag) => {
    const t = parseFlvTag(tag.bytes.slice());
    return [t.type, t.timestamp, t.data[0] ?? -1];
  });
}

describe('StreamTimeline', () => {
  it('opens with onMetaData and the AAC sequence header at 0; the AVC header comes with the encoder', () => {
    const t = new StreamTimeline(33_333);
    expect(summary(t.headers(META, ASC))).toEqual([[18, 0, 2], [8, 0, 0xaf]]);
    expect(t.headers(META, ASC).map((h) => h.header)).toEqual(['meta', 'audio']);
    expect(summary(t.videoConfig(AVCC))).toEqual([[9, 0, 0x17]]);
  });

  it('rebases both tracks to the first keyframe and drops what comes before it', () => {
    const t = new StreamTimeline(33_333);
    // The encoder started before the first keyframe came out (session clock at 12 s): an inter frame first.
    expect(t.video(FRAME, false, 12_000_000)).toEqual([]);
    expect(t.audio(FRAME, 12_010_000)).toEqual([]); // held: older than no keyframe yet
    expect(t.audio(FRAME, 12_040_000)).toEqual([]);
    expect(t.audio(FRAME, 12_061_333)).toEqual([]);
    expect(t.started).toBe(false);
    // The keyframe at 12.033 s becomes 0; held audio older than it goes, the rest follows it.
    expect(summary(t.video(FRAME, true, 12_033_333))).toEqual([[9, 0, 0x17], [8, 7, 0xaf], [8, 28, 0xaf]]);
    expect(t.started).toBe(true);
    expect(summary(t.video(FRAME, false, 12_066_667))).toEqual([[9, 33, 0x27]]);
    expect(summary(t.audio(FRAME, 12_082_666))).toEqual([[8, 49, 0xaf]]);
    // An AAC packet that covers time before the keyframe (encoder delay) is dropped, not clamped.
    expect(t.audio(FRAME, 12_000_000)).toEqual([]);
    expect(t.dropped).toBe(3);
  });

  it('holds a bounded amount of audio while it waits for a keyframe', () => {
    const t = new StreamTimeline(33_333, { maxHeldAudio: 4 });
    for (let i = 0; i < 10; i++) expect(t.audio(FRAME, 1_000_000 + i * 21_333)).toEqual([]);
    expect(t.dropped).toBe(6);
    const out = summary(t.video(FRAME, true, 1_000_000));
    expect(out.map(([type, ts]) => `${type}@${ts}`)).toEqual(['9@0', '8@128', '8@149', '8@171', '8@192']);
  });

  it('a broadcast that starts on a keyframe starts at 0', () => {
    const t = new StreamTimeline(33_333);
    expect(t.audio(FRAME, 0)).toEqual([]);
    expect(summary(t.video(FRAME, true, 0))).toEqual([[9, 0, 0x17], [8, 0, 0xaf]]);
  });
});

describe('StreamTimeline with an encoder that reorders frames', () => {
  it('writes decode times and composition times, and keeps audio and video in timestamp order', () => {
    const t = new StreamTimeline(33_333);
    const frameUs = 1e6 / 30;
    // I P B B P B B …: output (decode) order of a 2-B-frame encoder, presentation indexes.
    const order = [0, 3, 1, 2, 6, 4, 5, 9, 7, 8, 12, 10, 11];
    // Video tags may be views the muxer reuses: read each as it comes, as a sender would.
    const tags: ReturnType<typeof parseFlvTag>[] = [];
    const send = (out: OutTag[]): void => {
      for (const o of out) tags.push(parseFlvTag(o.bytes.slice()));
    };
    let audioUs = 0;
    for (const [i, p] of order.entries()) {
      send(t.video(FRAME, i === 0, Math.round(p * frameUs)));
      // Audio made meanwhile, up to this frame's encode time.
      while (audioUs <= (i + 1) * frameUs) {
        send(t.audio(FRAME, audioUs));
        audioUs += 21_333;
      }
    }
    send(t.flush());
    expect(t.reorderFrames).toBe(1);
    const video = tags.filter((tag) => tag.type === 9);
    expect(video.length).toBe(order.length);
    const dts = video.map((v) => v.timestamp);
    for (let i = 1; i < dts.length; i++) expect(dts[i]!).toBeGreaterThan(dts[i - 1]!);
    const pts = video.map((v) => v.timestamp + (((v.data[2]! << 16) | (v.data[3]! << 8) | v.data[4]!) << 8 >> 8));
    for (const [i, p] of order.entries()) expect(pts[i]).toBe(Math.round((p * frameUs) / 1000));
    for (let i = 0; i < video.length; i++) expect(pts[i]! - dts[i]!).toBeGreaterThanOrEqual(0);
    // On the wire, audio and video never go back in time against each other, once the reordering
    // is known (the first B-frame, the fourth frame out): before it, nothing is held.
    const from = tags.findIndex((tag) => tag.type === 9 && tag.timestamp === dts[3]);
    for (let i = from + 1; i < tags.length; i++) expect(tags[i]!.timestamp).toBeGreaterThanOrEqual(tags[i - 1]!.timestamp);
  });
});

import { describe, expect, it } from 'vitest';
import { parseFlvTag } from '@onair/shared';
import { StreamTimeline, type OutTag } from './stream-timeline.js';

const META = { width: 1280, height: 720, framerate: 30, videoBitrate: 2_500_000, audioBitrate: 128_000, sampleRate: 48_000, channels: 2 };
const ASC = Uint8Array.of(0x11, 0x90); // AAC-LC, 48 kHz, stereo
const AVCC = Uint8Array.of(1, 0x4d, 0x40, 0x1f, 0xff, 0xe1, 0, 0);
const FRAME = Uint8Array.of(0, 0, 0, 1, 0x65);

/** Tag type, timestamp and the first body byte (FLV §E.4.1: 8 audio, 9 video, 18 script). */
function summary(tags: (OutTag | undefined)[]): [number, number, number][] {
  return tags.map((tag) => {
    const t = parseFlvTag(tag!.bytes.slice());
    return [t.type, t.timestamp, t.data[0] ?? -1];
  });
}

describe('StreamTimeline', () => {
  it('opens with onMetaData and the AAC sequence header at 0; the AVC header comes with the encoder', () => {
    const t = new StreamTimeline();
    expect(summary(t.headers(META, ASC))).toEqual([[18, 0, 2], [8, 0, 0xaf]]);
    expect(t.headers(META, ASC).map((h) => h.header)).toEqual(['meta', 'audio']);
    expect(summary([t.videoConfig(AVCC)])).toEqual([[9, 0, 0x17]]);
  });

  it('rebases both tracks to the first keyframe and drops what comes before it', () => {
    const t = new StreamTimeline();
    // The encoder started before the first keyframe came out (session clock at 12 s): an inter frame first.
    expect(t.video(FRAME, false, 12_000_000)).toEqual([]);
    expect(t.audio(FRAME, 12_010_000)).toBeUndefined(); // held: older than no keyframe yet
    expect(t.audio(FRAME, 12_040_000)).toBeUndefined();
    expect(t.audio(FRAME, 12_061_333)).toBeUndefined();
    expect(t.started).toBe(false);
    // The keyframe at 12.033 s becomes 0; held audio older than it goes, the rest follows it.
    expect(summary(t.video(FRAME, true, 12_033_333))).toEqual([[9, 0, 0x17], [8, 7, 0xaf], [8, 28, 0xaf]]);
    expect(t.started).toBe(true);
    expect(summary(t.video(FRAME, false, 12_066_667))).toEqual([[9, 33, 0x27]]);
    expect(summary([t.audio(FRAME, 12_082_666)])).toEqual([[8, 49, 0xaf]]);
    // An AAC packet that covers time before the keyframe (encoder delay) is dropped, not clamped.
    expect(t.audio(FRAME, 12_000_000)).toBeUndefined();
    expect(t.dropped).toBe(3);
  });

  it('holds a bounded amount of audio while it waits for a keyframe', () => {
    const t = new StreamTimeline({ maxHeldAudio: 4 });
    for (let i = 0; i < 10; i++) expect(t.audio(FRAME, 1_000_000 + i * 21_333)).toBeUndefined();
    expect(t.dropped).toBe(6);
    const out = summary(t.video(FRAME, true, 1_000_000));
    expect(out.map(([type, ts]) => `${type}@${ts}`)).toEqual(['9@0', '8@128', '8@149', '8@171', '8@192']);
  });

  it('a broadcast that starts on a keyframe starts at 0', () => {
    const t = new StreamTimeline();
    expect(t.audio(FRAME, 0)).toBeUndefined();
    expect(summary(t.video(FRAME, true, 0))).toEqual([[9, 0, 0x17], [8, 0, 0xaf]]);
  });
});

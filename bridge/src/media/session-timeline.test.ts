import { describe, expect, it } from 'vitest';
import { TagKind } from '@onair/shared';
import { SessionTimeline } from './session-timeline.js';

describe('SessionTimeline', () => {
  it('passes the page clock through while nothing is lost', () => {
    const t = new SessionTimeline();
    expect(t.map(0, TagKind.Metadata)).toBe(0);
    expect(t.map(0, TagKind.Keyframe)).toBe(0);
    expect(t.map(21, TagKind.Audio)).toBe(21);
    expect(t.map(33, TagKind.Frame)).toBe(33);
  });

  it('after a gap: drops media up to the next keyframe and places it one frame after the last', () => {
    const t = new SessionTimeline();
    for (let ms = 0; ms <= 990; ms += 33) t.map(ms, ms === 0 ? TagKind.Keyframe : TagKind.Frame);
    t.map(1000, TagKind.Audio);
    t.gap();
    expect(t.map(4967, TagKind.Frame)).toBeUndefined();
    expect(t.map(4990, TagKind.Audio)).toBeUndefined();
    // Headers that come again after the gap go out at the current position.
    expect(t.map(0, TagKind.VideoConfig)).toBe(1000);
    expect(t.map(5000, TagKind.Keyframe)).toBe(1033);
    // Audio captured just before that keyframe would land before it: dropped.
    expect(t.map(4995, TagKind.Audio)).toBeUndefined();
    expect(t.map(5010, TagKind.Audio)).toBe(1043);
    expect(t.map(5033, TagKind.Frame)).toBe(1066);
  });

  it('a gap before anything was relayed changes nothing', () => {
    const t = new SessionTimeline();
    t.gap();
    expect(t.map(500, TagKind.Keyframe)).toBe(500);
  });
});

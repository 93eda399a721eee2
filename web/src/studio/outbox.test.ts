import { describe, expect, it } from 'vitest';
import { Outbox, TagClass } from './outbox.js';

/** A tag stand-in whose first byte names it, so frame lists read as ids. */
function tag(id: number, size = 100): Uint8Array {
  const b = new Uint8Array(size);
  b[0] = id & 0xff;
  b[1] = id >> 8;
  return b;
}
const ids = (frames: Uint8Array[]): number[] => frames.map((f) => f[0]! | (f[1]! << 8));

/** Headers (ids 1-3), then 30 fps video with a keyframe every `gop` frames from id 10 on. */
function fill(box: Outbox, frames: number, gop = 60, size = 100): void {
  box.push(tag(1), TagClass.Header, 0, 'meta');
  box.push(tag(2), TagClass.Header, 0, 'audio');
  box.push(tag(3), TagClass.Header, 0, 'video');
  for (let i = 0; i < frames; i++) box.push(tag(10 + i, size), i % gop === 0 ? TagClass.Keyframe : TagClass.Frame, Math.round((i * 1000) / 30));
}

describe('Outbox', () => {
  it('numbers frames from 1 and forgets what the bridge acknowledged', () => {
    const box = new Outbox();
    expect(box.push(tag(1), TagClass.Header, 0, 'meta')).toBe(1);
    expect(box.push(tag(2), TagClass.Keyframe, 0)).toBe(2);
    expect(box.push(tag(3), TagClass.Frame, 33)).toBe(3);
    box.ack(2);
    expect(box.size).toBe(1);
    expect(box.bytes).toBe(100);
    expect(box.acknowledgedBytes).toBe(200);
    expect(ids(box.framesFrom(3))).toEqual([3]);
    expect(box.nextSeq).toBe(4);
    // An acknowledgement repeated counts nothing twice.
    box.ack(2);
    box.ack(3);
    expect(box.acknowledgedBytes).toBe(300);
  });

  it('keeps a copy: the muxer reuses its buffer', () => {
    const box = new Outbox();
    const scratch = tag(7);
    box.push(scratch, TagClass.Keyframe, 0);
    scratch[0] = 99;
    expect(ids(box.framesFrom(1))).toEqual([7]);
  });

  it('resumes without a gap when it still holds everything after the bridge count', () => {
    const box = new Outbox();
    fill(box, 90);
    box.ack(40);
    const plan = box.resume(50);
    expect(plan.gap).toBeUndefined();
    expect(plan.frames.length).toBe(93 - 50);
    expect(ids(plan.frames)[0]).toBe(10 + 50 - 3);
    expect(box.nextSeq).toBe(94);
  });

  it('keeps at least the buffer time, dropping whole GOPs from the oldest', () => {
    const box = new Outbox({ bufferMs: 3000, maxBytes: 1 << 30 });
    fill(box, 300);
    // 10 s at 30 fps with a GOP of 2 s: the last 3 s need the GOP before them, so 4-6 s are held.
    expect(box.spanMs).toBeGreaterThanOrEqual(3000);
    expect(box.spanMs).toBeLessThan(5000);
    expect(ids(box.framesFrom(box.nextSeq - box.size))[0]! - 10).toBe(180);
  });

  it('a resume past what it holds: gap figures, then the headers and the oldest held keyframe, renumbered', () => {
    const box = new Outbox({ bufferMs: 3000, maxBytes: 1 << 30 });
    fill(box, 300);
    box.ack(30);
    const plan = box.resume(30);
    expect(plan.gap).toBeDefined();
    // Frames 28..189 (ids 37..198; frame number − 3 + 10 = id) are gone; the restart keyframe is frame 180.
    expect(plan.gap!.frames).toBe(180 - 27);
    expect(plan.gap!.ms).toBe(Math.round((180 * 1000) / 30) - Math.round((27 * 1000) / 30));
    expect(ids(plan.frames).slice(0, 4)).toEqual([1, 2, 3, 190]);
    expect(plan.frames.length).toBe(3 + 120);
    expect(box.nextSeq).toBe(31 + 3 + 120);
    // The bridge now holds 30 + these; acknowledging them empties the box.
    box.ack(30 + plan.frames.length);
    expect(box.size).toBe(0);
  });

  it('bounds bytes whatever the media time', () => {
    const box = new Outbox({ bufferMs: 60_000, maxBytes: 100_000 });
    fill(box, 600, 60, 1000);
    expect(box.bytes).toBeLessThanOrEqual(100_000);
    expect(box.bytes).toBeGreaterThan(40_000);
  });

  it('a new session: numbering from 1, headers first, then from the oldest keyframe; what came before is reported lost', () => {
    const box = new Outbox();
    fill(box, 100);
    box.ack(20);
    const plan = box.restart();
    expect(ids(plan.frames).slice(0, 4)).toEqual([1, 2, 3, 70]);
    // Frames 17..59 (ids 27..69) sat before that keyframe.
    expect(plan.gap?.frames).toBe(60 - 17);
    expect(box.nextSeq).toBe(1 + 3 + 40);
  });
});

describe('Outbox.bytesAfter', () => {
  it('counts the bytes of the frames after a number', () => {
    const box = new Outbox();
    for (let i = 0; i < 10; i++) box.push(tag(i, 10 * (i + 1)), i === 0 ? TagClass.Keyframe : TagClass.Frame, i * 33);
    box.ack(3);
    expect(box.bytesAfter(0)).toBe(box.bytes);
    expect(box.bytesAfter(3)).toBe(box.bytes);
    expect(box.bytesAfter(8)).toBe(90 + 100);
    expect(box.bytesAfter(10)).toBe(0);
  });
});

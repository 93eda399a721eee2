import { describe, expect, it } from 'vitest';
import { FrameCounter } from './frame-counter.js';

// Readings as WebKitGTK gave them every 250 ms around a playbackRate change (the lab page of
// docs/watch.md, "WebKitGTK: rate changes are seeks"), and as Chromium and Firefox count on.

const read = (counter: FrameCounter, readings: [number, number][]): FrameCounter => {
  for (const [totalVideoFrames, droppedVideoFrames] of readings) counter.update({ totalVideoFrames, droppedVideoFrames });
  return counter;
};

describe('FrameCounter', () => {
  it('follows counters that only grow', () => {
    const c = read(new FrameCounter(), [[6, 0], [14, 0], [21, 1], [29, 1]]);
    expect([c.decoded, c.dropped, c.restarts]).toEqual([29, 1, 0]);
  });

  it('adds what comes after a restart from zero to what came before', () => {
    // 59 frames, the rate set, 3 frames since the flush, then 57; then the rate set back.
    const c = read(new FrameCounter(), [[51, 0], [59, 0], [3, 0], [11, 0], [57, 0], [1, 0], [9, 0]]);
    expect([c.decoded, c.dropped, c.restarts]).toEqual([59 + 57 + 9, 0, 2]);
  });

  it('counts dropped frames on when that counter alone goes back', () => {
    const c = read(new FrameCounter(), [[100, 5], [103, 0], [106, 1]]);
    expect([c.decoded, c.dropped, c.restarts]).toEqual([106, 5 + 1, 0]);
  });

  it('counts the dropped frames after a restart from zero', () => {
    const c = read(new FrameCounter(), [[100, 5], [4, 6], [10, 7]]);
    expect([c.decoded, c.dropped, c.restarts]).toEqual([110, 5 + 7, 1]);
  });

  it('starts from what the element has counted before its first reading', () => {
    const c = read(new FrameCounter(), [[300, 2]]);
    expect([c.decoded, c.dropped, c.restarts]).toEqual([300, 2, 0]);
  });
});

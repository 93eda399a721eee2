import { describe, expect, it } from 'vitest';
import { TagClass } from '../outbox.js';
import { CostSamples, SessionStats } from './session-stats.js';

const probe = { encodeQueue: 0, stopped: false, wsBufferedBytes: 0, reconnects: 0, resendBufferBytes: 0, compose: new CostSamples() };
const tag = (cls: TagClass, size: number) => ({ bytes: new Uint8Array(size), cls, ms: 0 });

describe('CostSamples', () => {
  it('gives the median and 95th percentile of the newest 600 timings, and the mean of all', () => {
    const c = new CostSamples();
    for (let i = 0; i < 1000; i++) c.add(i < 400 ? 1000 : i - 400);
    // The first 400 (1000 ms each) have been overwritten; 0..599 are left.
    expect(c.medianP95()).toEqual([300, 570]);
    expect(c.mean).toBeCloseTo((400 * 1000 + (599 * 600) / 2) / 1000);
    expect(c.count).toBe(1000);
  });
});

describe('SessionStats', () => {
  it('turns what was sent in a period into rates, and starts the period again', () => {
    const s = new SessionStats(2_500_000);
    for (let i = 0; i < 30; i++) s.sent(tag(i === 0 ? TagClass.Keyframe : TagClass.Frame, 1000));
    for (let i = 0; i < 47; i++) s.sent(tag(TagClass.Audio, 200));
    const a = s.snapshot(1000, probe);
    expect(a.fps).toBe(30);
    expect(a.bitrate).toBe((30 * 1000 + 47 * 200) * 8);
    expect([a.framesSent, a.audioFramesSent]).toEqual([30, 47]);
    const b = s.snapshot(1000, probe);
    expect([b.fps, b.bitrate, b.framesSent]).toEqual([0, 0, 30]);
  });

  it('counts drops by reason and in total', () => {
    const s = new SessionStats(1);
    s.dropped('late', 3);
    s.dropped('backlog');
    s.dropped('encoderBusy');
    const st = s.snapshot(1000, probe);
    expect([st.framesDropped, st.droppedLate, st.droppedBacklog, st.droppedEncoderBusy]).toEqual([5, 3, 1, 1]);
  });

  it('measures the real keyframe interval and notices an encoder that places its own keyframes', () => {
    const s = new SessionStats(1);
    for (let k = 0; k < 5; k++) {
      s.submitted(k * 2_000_000, true);
      s.chunk(true, k * 2_000_000);
    }
    expect(s.snapshot(1000, probe)).toMatchObject({ keyframeIntervalMs: 2000, encoderKeyframes: false });
    for (let k = 0; k < 3; k++) s.chunk(true, 10_000_000 + k * 1_000_000);
    expect(s.snapshot(1000, probe).encoderKeyframes).toBe(true);
  });

  it('counts frames still in the encoder until it is flushed, then as dropped by it', () => {
    const s = new SessionStats(1);
    for (let i = 0; i < 10; i++) s.submitted(i, false);
    for (let i = 0; i < 7; i++) s.chunk(false, i);
    expect(s.snapshot(1000, { ...probe, encodeQueue: 1 }).framesInEncoder).toBe(2);
    expect(s.snapshot(1000, { ...probe, stopped: true }).droppedByEncoder).toBe(3);
  });
});

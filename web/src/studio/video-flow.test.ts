import { describe, expect, it } from 'vitest';
import { FramePlan, VideoFlow } from './video-flow.js';

const MB = 1024 * 1024;

/** Runs frames through plan → encode (a chunk per frame, same order) → admit; returns what was encoded as keyframes and sent. */
function run(flow: VideoFlow, from: number, to: number, buffered: (n: number) => number, queue: (n: number) => number = () => 0): { keys: number[]; sent: number[]; planned: FramePlan[] } {
  const keys: number[] = [];
  const sent: number[] = [];
  const planned: FramePlan[] = [];
  for (let n = from; n < to; n++) {
    const plan = flow.plan(n, queue(n), buffered(n));
    planned.push(plan);
    if (plan === FramePlan.Drop) continue;
    flow.encoded(n, plan === FramePlan.Key);
    if (plan === FramePlan.Key) keys.push(n);
    if (flow.admit(plan === FramePlan.Key, buffered(n))) sent.push(n);
  }
  return { keys, sent, planned };
}

describe('VideoFlow', () => {
  it('keeps the 2 s cadence with no backlog', () => {
    const { keys, sent } = run(new VideoFlow(60), 0, 300, () => 0);
    expect(keys).toEqual([0, 60, 120, 180, 240]);
    expect(sent).toHaveLength(300);
  });

  it('asks for one keyframe per drop episode, once the backlog is under the low-water mark', () => {
    const flow = new VideoFlow(60);
    run(flow, 0, 10, () => 0);
    // Backlog over 1 MB for frames 10..39, draining through 768 KB, then empty.
    const backlog = (n: number): number => (n < 40 ? 2 * MB : n < 45 ? 768 * 1024 : 0);
    const { keys, sent } = run(flow, 10, 59, backlog);
    expect(keys).toEqual([45]);
    expect(sent[0]).toBe(45);
    expect(sent).toHaveLength(59 - 45);
    // The cadence restarts from the forced keyframe.
    expect(run(flow, 59, 120, () => 0).keys).toEqual([105]);
  });

  it('drops keyframes too while the encoder queue is full, and keeps the request for later', () => {
    const flow = new VideoFlow(60);
    const { keys, planned } = run(flow, 0, 10, () => 0, (n) => (n < 5 ? 3 : 0));
    expect(planned.slice(0, 5).every((p) => p === FramePlan.Drop)).toBe(true);
    // The scheduled keyframe at 0 waited for room rather than being lost (a 2 s longer GOP).
    expect(keys).toEqual([5]);
  });

  it('a new connection waits for a keyframe and asks for one at once', () => {
    const flow = new VideoFlow(60);
    run(flow, 0, 10, () => 0);
    flow.restart();
    expect(flow.admit(false, 0)).toBe(false);
    const { keys, sent } = run(flow, 10, 20, () => 0);
    expect(keys).toEqual([10]);
    expect(sent[0]).toBe(10);
  });

  it('asks again when the requested keyframe itself meets a full socket', () => {
    const flow = new VideoFlow(60);
    run(flow, 0, 10, () => 0);
    const backlog = (n: number): number => (n < 20 ? 2 * MB : n === 20 ? 0 : n === 21 ? 2 * MB : 0);
    // 20: asked for (backlog 0 at planning) but it meets 2 MB when sent.
    const keysSeen: number[] = [];
    for (let n = 10; n < 30; n++) {
      const plan = flow.plan(n, 0, backlog(n));
      flow.encoded(n, plan === FramePlan.Key);
      if (plan === FramePlan.Key) keysSeen.push(n);
      flow.admit(plan === FramePlan.Key, n === 20 ? 2 * MB : backlog(n));
    }
    expect(keysSeen).toEqual([20, 22]);
  });
});

import { describe, expect, it } from 'vitest';
import { BitrateController, DEFAULT_FLOOR_BPS, SAMPLE_MS, type BitrateDecision } from './bitrate-controller.js';
import { DEFAULT_VIDEO_FLOW_LIMITS } from '../video-flow.js';

const AUDIO = 128_000;
const CEILING = 2_500_000;
const STEP_MS = 50;
const ACK_EVERY_MS = 200;

interface Trace {
  atMs: number;
  decision: BitrateDecision;
  backlogBytes: number;
}

/**
 * A link simulated in 50 ms steps: the page sends video at the controller's rate (half when the
 * frame rate is halved) plus audio, the link carries at most `capacity(t)` bits per second, and
 * the bridge acknowledges what arrived every 200 ms (`ackPause(t)` holds acknowledgements back,
 * as a loaded machine does). The controller is fed every SAMPLE_MS; its changes apply at once.
 */
function simulate(controller: BitrateController, durationMs: number, capacity: (t: number) => number, ackPause: (t: number) => boolean = () => false): Trace[] {
  let sent = 0;
  let delivered = 0;
  let acked = 0;
  let lastAck = 0;
  const trace: Trace[] = [];
  for (let t = STEP_MS; t <= durationMs; t += STEP_MS) {
    const d = controller.decision;
    sent += (((d.halfFrameRate ? d.bps / 2 : d.bps) + AUDIO) / 8) * (STEP_MS / 1000);
    delivered = Math.min(sent, delivered + (capacity(t) / 8) * (STEP_MS / 1000));
    if (t - lastAck >= ACK_EVERY_MS && !ackPause(t)) {
      acked = delivered;
      lastAck = t;
    }
    if (t % SAMPLE_MS === 0) {
      const decision = controller.update({ atMs: t, ackedBytes: acked, backlogBytes: sent - acked });
      trace.push({ atMs: t, decision, backlogBytes: sent - acked });
    }
  }
  return trace;
}

const changes = (trace: Trace[], fromMs = 0, toMs = Infinity): number =>
  trace.filter((x, i) => i > 0 && x.atMs >= fromMs && x.atMs < toMs && (x.decision.bps !== trace[i - 1]!.decision.bps || x.decision.halfFrameRate !== trace[i - 1]!.decision.halfFrameRate)).length;

describe('BitrateController', () => {
  it('a clear link keeps the chosen rate, even when acknowledgements come late now and then', () => {
    const c = new BitrateController({ ceiling: CEILING, audioBps: AUDIO });
    // A second without acknowledgements every 10 s (a busy bridge, a loaded machine).
    const trace = simulate(c, 60_000, () => 20_000_000, (t) => t % 10_000 < 1000);
    expect(changes(trace)).toBe(0);
    expect(trace.every((x) => x.decision.bps === CEILING && x.decision.reason === 'chosen' && !x.decision.halfFrameRate)).toBe(true);
  });

  it('the uplink cut to 1 Mbps for 20 s: below 1 Mbps within seconds, steady while cut, back to the choice after', () => {
    const c = new BitrateController({ ceiling: CEILING, audioBps: AUDIO });
    const cut = (t: number): boolean => t >= 10_000 && t < 30_000;
    const trace = simulate(c, 80_000, (t) => (cut(t) ? 1_000_000 : 20_000_000));
    const below = trace.find((x) => x.atMs >= 10_000 && x.decision.bps < 1_000_000);
    expect(below).toBeDefined();
    expect(below!.atMs - 10_000).toBeLessThanOrEqual(4000);
    expect(below!.decision.reason).toBe('congested');
    // Steady while cut: it settles under the link's capacity and probes rarely.
    const settled = trace.filter((x) => x.atMs >= 20_000 && x.atMs < 30_000);
    const mean = settled.reduce((n, x) => n + x.decision.bps, 0) / settled.length;
    expect(mean + AUDIO).toBeLessThan(1_000_000);
    expect(mean).toBeGreaterThan(DEFAULT_FLOOR_BPS);
    expect(changes(trace, 10_000, 30_000)).toBeLessThanOrEqual(8);
    // The backlog stays within a few seconds of media: far from where the page drops frames.
    expect(Math.max(...trace.filter((x) => cut(x.atMs)).map((x) => x.backlogBytes))).toBeLessThan(DEFAULT_VIDEO_FLOW_LIMITS.highWater / 2);
    // Back to 2 Mbps within 30 s of the restore, and to the choice in the end, never above it.
    const back = trace.find((x) => x.atMs >= 30_000 && x.decision.bps >= 2_000_000);
    expect(back).toBeDefined();
    expect(back!.atMs - 30_000).toBeLessThanOrEqual(30_000);
    expect(trace.find((x) => x.atMs > 30_000 && x.atMs < back!.atMs)?.decision.reason).toBe('recovering');
    expect(trace.at(-1)!.decision).toEqual({ bps: CEILING, reason: 'chosen', halfFrameRate: false });
    expect(Math.max(...trace.map((x) => x.decision.bps))).toBe(CEILING);
  });

  it('a link slower than the floor: the floor, then half the frame rate; the frame rate comes back first', () => {
    const c = new BitrateController({ ceiling: CEILING, audioBps: AUDIO });
    const trace = simulate(c, 60_000, (t) => (t >= 5000 && t < 30_000 ? 350_000 : 20_000_000));
    const half = trace.find((x) => x.decision.halfFrameRate);
    expect(half).toBeDefined();
    expect(half!.decision.bps).toBe(DEFAULT_FLOOR_BPS);
    expect(half!.atMs).toBeLessThan(15_000);
    // Half the floor plus audio fits in 350 kbps: the backlog drains and it stays there.
    const during = trace.filter((x) => x.atMs >= 20_000 && x.atMs < 30_000);
    expect(during.every((x) => x.decision.halfFrameRate && x.decision.bps === DEFAULT_FLOOR_BPS)).toBe(true);
    const after = trace.filter((x) => x.atMs >= 30_000);
    const firstChange = after.findIndex((x, i) => i > 0 && x.decision !== after[i - 1]!.decision && (x.decision.bps !== after[i - 1]!.decision.bps || x.decision.halfFrameRate !== after[i - 1]!.decision.halfFrameRate));
    expect(after[firstChange]!.decision).toMatchObject({ bps: DEFAULT_FLOOR_BPS, halfFrameRate: false, reason: 'recovering' });
  });

  it('a new choice by the streamer is the new ceiling, applied at once', () => {
    const c = new BitrateController({ ceiling: CEILING, audioBps: AUDIO });
    simulate(c, 15_000, (t) => (t >= 5000 ? 1_000_000 : 20_000_000));
    expect(c.decision.reason).toBe('congested');
    c.setCeiling(1_500_000);
    expect(c.decision).toEqual({ bps: 1_500_000, reason: 'chosen', halfFrameRate: false });
    const trace = simulate(c, 40_000, () => 20_000_000);
    expect(Math.max(...trace.map((x) => x.decision.bps))).toBe(1_500_000);
  });
});

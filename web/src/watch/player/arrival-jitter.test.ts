import { describe, expect, it } from 'vitest';
import { ArrivalJitter, DEFAULT_TARGET_OPTIONS, targetBufferS } from './arrival-jitter.js';

// A live source as a player sees it: 30 fps video and 48 kHz AAC (1024-sample frames), each
// sent when its media time comes (plus `sendAt` offsets), delivered by `deliver` (the network
// and the server: on time, in bursts, late). The estimator gets the playable edge — the least
// of the two tracks' ends — at every arrival, as the player feeds it.

interface Packet {
  sentS: number;
  track: 'audio' | 'video';
  endS: number;
}

function source(fromS: number, toS: number, mediaOffsetS = 0): Packet[] {
  const out: Packet[] = [];
  for (let t = Math.ceil(fromS * 30) / 30; t < toS; t += 1 / 30) out.push({ sentS: t, track: 'video', endS: t + 1 / 30 + mediaOffsetS });
  for (let n = Math.ceil((fromS * 48000) / 1024); (n * 1024) / 48000 < toS; n++) {
    const t = (n * 1024) / 48000;
    out.push({ sentS: t, track: 'audio', endS: t + 1024 / 48000 + mediaOffsetS });
  }
  return out;
}

/** A small deterministic noise in [0, maxS). */
function noise(maxS: number): () => number {
  let x = 12345;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return (x / 2 ** 31) * maxS;
  };
}

/** Feeds the packets, delivered at `deliver(p)`, in arrival order; returns the estimator. */
function play(packets: Packet[], deliver: (p: Packet) => number, j = new ArrivalJitter(), probe?: (nowS: number, j: ArrivalJitter) => void): ArrivalJitter {
  const arrivals = packets.map((p) => ({ ...p, at: deliver(p) })).sort((a, b) => a.at - b.at || a.sentS - b.sentS);
  const ends = { audio: -Infinity, video: -Infinity };
  for (const a of arrivals) {
    ends[a.track] = Math.max(ends[a.track], a.endS);
    const edge = Math.min(ends.audio, ends.video);
    if (edge > -Infinity) j.arrive(a.at, edge);
    probe?.(a.at, j);
  }
  return j;
}

const onTime = (n = noise(0.01)) => (p: Packet): number => p.sentS + 0.03 + n();
const bursts = (everyS: number) => (p: Packet): number => Math.ceil((p.sentS + 0.03) / everyS) * everyS;

describe('ArrivalJitter', () => {
  it('sees a smooth source as a frame interval and a little noise: a target of 0.1–0.2 s', () => {
    const j = play(source(0, 20), onTime());
    const jitter = j.jitterS(20);
    expect(jitter).toBeGreaterThan(0.02);
    expect(jitter).toBeLessThan(0.06);
    const target = targetBufferS(jitter);
    expect(target).toBeGreaterThanOrEqual(0.1);
    expect(target).toBeLessThanOrEqual(0.2);
    // The earliest edge: 30 ms transport, and an audio frame's end ahead of the sender's clock.
    expect(20 - j.expectedEdge(20)!).toBeCloseTo(0.03 - 1024 / 48000, 2);
  });

  it('sees 350 ms bursts as 350 ms: the target sits just above the burst', () => {
    const j = play(source(0, 20), bursts(0.35));
    const jitter = j.jitterS(20);
    expect(jitter).toBeGreaterThanOrEqual(0.35);
    expect(jitter).toBeLessThan(0.4);
    expect(targetBufferS(jitter)).toBeCloseTo(jitter + DEFAULT_TARGET_OPTIONS.marginS, 9);
  });

  it('comes back down within the window once arrival smooths out, and rises within a second of bursts starting', () => {
    const packets = source(0, 40);
    let sawBurstAt: number | undefined;
    const j = play(
      packets,
      (p) => (p.sentS >= 10 && p.sentS < 20 ? bursts(0.35)(p) : onTime()(p)),
      new ArrivalJitter(),
      (now, j) => {
        if (sawBurstAt === undefined && now >= 10 && j.jitterS(now) >= 0.35) sawBurstAt = now;
      },
    );
    expect(sawBurstAt! - 10).toBeLessThan(1);
    expect(j.jitterS(32)).toBeLessThan(0.06);
  });

  it('keeps the stalest edge where it is when one arrival comes unusually early', () => {
    // The target distance is jitter + margin behind the expected edge: that difference, the edge
    // at its stalest, must not move because some media got through faster than ever before.
    const stalest = (j: ArrivalJitter, now: number): number => now - j.expectedEdge(now)! + j.jitterS(now);
    const packets = source(0, 12);
    const steady = (p: Packet): number => (p.sentS < 8 ? bursts(0.35)(p) : p.sentS + 0.03);
    const usual = play(packets, steady);
    // Media of 9.0–9.1 s arrives the moment it is sent, 30 ms sooner than anything else.
    const early = play(packets, (p) => (p.sentS >= 9 && p.sentS < 9.1 ? p.sentS : steady(p)));
    expect(usual.jitterS(12)).toBeGreaterThan(0.3);
    expect(Math.abs(stalest(early, 12) - stalest(usual, 12))).toBeLessThan(0.001);
  });

  it('ignores a joining viewer catching up on a cached GOP', () => {
    // Two seconds of media arrive at once at 10 s, then the stream flows live.
    const j = play(source(8, 20), (p) => Math.max(10, onTime()(p)));
    expect(j.jitterS(20)).toBeLessThan(0.06);
    expect(20 - j.expectedEdge(20)!).toBeLessThan(0.03);
  });

  it('lets one hiccup pass but not two', () => {
    // Everything sent during 300 ms from each `at` arrives at its end.
    const hiccups = (at: number[]) => (p: Packet): number => {
      const held = at.find((t) => p.sentS >= t && p.sentS < t + 0.3);
      return held === undefined ? onTime()(p) : held + 0.3 + 0.03;
    };
    expect(play(source(0, 20), hiccups([15])).jitterS(20)).toBeLessThan(0.06);
    expect(play(source(0, 20), hiccups([12, 15])).jitterS(20)).toBeGreaterThan(0.25);
  });

  it('counts a hiccup and its catch-up, spread over a quarter second of arrivals, as one', () => {
    // 400 ms of media held, then released over 250 ms: late arrivals in two buckets.
    const spread = (p: Packet): number => (p.sentS >= 15 && p.sentS < 15.4 ? 15.43 + (p.sentS - 15) * 0.625 : onTime()(p));
    const j = play(source(0, 20), spread);
    expect(j.jitterS(20)).toBeLessThan(0.06);
  });

  it('does not count its first second: a page starting up delays its own arrivals', () => {
    // The first second arrives in 300 ms lumps (the page busy compiling and decoding), then the
    // stream flows smoothly.
    const j = play(source(0, 5), (p) => (p.sentS < 1 ? Math.ceil((p.sentS + 0.03) / 0.3) * 0.3 : onTime()(p)));
    expect(j.jitterS(5)).toBeLessThan(0.06);
    // Bursts that go on past the first second are counted.
    expect(play(source(0, 5), bursts(0.35)).jitterS(5)).toBeGreaterThanOrEqual(0.35);
  });

  it('starts afresh after an outage, on the timeline that follows it', () => {
    // The publisher stops for 5 s; its next session continues the timeline where it left off
    // (as the bridge does), so its media now arrive 5 s later than before.
    const before = source(0, 10);
    const after = source(15, 25, -5);
    const j = play([...before, ...after], onTime());
    expect(j.outages).toBe(1);
    expect(j.jitterS(25)).toBeLessThan(0.06);
    expect(25 - j.expectedEdge(25)!).toBeCloseTo(5 + 0.03 - 1024 / 48000, 1);
  });

  it('keeps its memory bounded and its baseline through silence', () => {
    const j = play(source(0, 600), onTime());
    expect(j.jitterS(600)).toBeLessThan(0.06);
    // No arrivals for a minute: the last bucket stays, so the edge can still be predicted.
    expect(j.expectedEdge(660)).toBeCloseTo(660 - 0.03 + 1024 / 48000, 1);
  });
});

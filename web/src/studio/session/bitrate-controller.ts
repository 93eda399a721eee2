/**
 * Adaptive bitrate for the studio's uplink (the WebSocket to the bridge, which every destination
 * shares). Sans-I/O: fed every SAMPLE_MS with what the link measures, it says which video bitrate
 * the encoder should run at and why. Congestion steps down at once to what the link really
 * carried; a clear link climbs back slowly to the streamer's choice, never above it. The bitrate
 * changes land at keyframes (EncodeSession.setBitrate), so a step never breaks a GOP.
 */

/** Why the encoder runs at the rate it does (shown on the page in plain words). */
export type BitrateReason = 'chosen' | 'congested' | 'recovering';

/** Why the encoder runs at its rate now, in the streamer's words (BitrateControl, StatsPanel). */
export function bitrateWhy(decision: { bitrateReason: BitrateReason; frameRateHalved: boolean }): string {
  const halved = decision.frameRateHalved ? '; half the frame rate, the bitrate is at its floor' : '';
  switch (decision.bitrateReason) {
    case 'chosen':
      return 'your choice';
    case 'congested':
      return `lowered, the connection to the bridge is congested${halved}`;
    case 'recovering':
      return `climbing back to your choice, the connection cleared${halved}`;
  }
}

/** What the link measured at one moment. */
export interface LinkSample {
  /** performance.now(), ms. */
  atMs: number;
  /** Bytes the bridge acknowledged since the stream started (grows). */
  ackedBytes: number;
  /** Bytes sent and not yet acknowledged: the link's backlog. */
  backlogBytes: number;
}

export interface BitrateDecision {
  /** Video bitrate for the encoder, bits per second. */
  bps: number;
  reason: BitrateReason;
  /** At the floor and still congested: only every other output frame is encoded. */
  halfFrameRate: boolean;
}

export interface BitrateControllerOptions {
  /** The streamer's choice, bits per second: the ceiling. */
  ceiling: number;
  /** The audio's bitrate, which shares the link and never adapts. */
  audioBps: number;
  /** Lowest video bitrate before the frame rate is halved. */
  floor?: number;
}

/** How often the controller is fed, ms. */
export const SAMPLE_MS = 500;
export const DEFAULT_FLOOR_BPS = 300_000;
/** Backlog, in ms of media at the current rate, that is congestion once it lasts HIGH_HOLD_MS. */
const HIGH_MS = 1000;
const HIGH_HOLD_MS = 1000;
/**
 * Below this the link is clear; between it and the congestion marks the rate holds (hysteresis).
 * The bridge acknowledges every 200 ms, so a healthy link always shows about that much.
 */
const CLEAR_MS = 400;
/**
 * A backlog above this that stayed above CLEAR_MS for GROW_HOLD_MS and grew over it is congestion
 * too: one late acknowledgement clears within the hold, a slow link does not.
 */
const GROWING_MS = 500;
const GROW_HOLD_MS = 1000;
/** The link must stay clear this long before the first step up, and between steps. */
const CLEAR_HOLD_MS = 3000;
const CLIMB_EVERY_MS = 2000;
/** Each step up: +15 %, at least 50 kbps. */
const CLIMB_FACTOR = 1.15;
const CLIMB_MIN_BPS = 50_000;
/**
 * Up to a rate that was congested recently, the climb probes slowly: a link that failed at a rate
 * is tried at it again only after this much clear time. Past it, the climb is fast again.
 */
const PROBE_EVERY_MS = 4000;
const CONGESTED_MEMORY_MS = 30_000;
/** A step down aims at this share of the measured throughput (headroom for the backlog to drain). */
const THROUGHPUT_SHARE = 0.8;
/** A step down also drains the backlog over this long, with at most DRAIN_SHARE of the throughput. */
const DRAIN_S = 5;
const DRAIN_SHARE = 0.25;
/** After a step down, the next waits this long (the change lands at the next keyframe). */
const STEP_HOLD_MS = 2000;
/** Throughput is measured over this window of samples, ms. */
const THROUGHPUT_WINDOW_MS = 2000;
/** Samples kept: enough for the throughput window and the growth test. */
const MAX_SAMPLES = 16;

export class BitrateController {
  #ceiling: number;
  readonly #audioBps: number;
  readonly #floor: number;
  #bps: number;
  #reason: BitrateReason = 'chosen';
  #half = false;
  readonly #samples: LinkSample[] = [];
  /** When the backlog went over HIGH_MS (undefined: it is not). */
  #highSince: number | undefined;
  /** When the link became clear, or busy (above CLEAR_MS); one of them is set once sampled. */
  #clearSince: number | undefined;
  #busySince: number | undefined;
  #lastChangeAt = -Infinity;
  /** The rate that was congested last, and when. */
  #congestedBps = 0;
  #congestedAt = -Infinity;

  constructor(opts: BitrateControllerOptions) {
    this.#ceiling = opts.ceiling;
    this.#bps = opts.ceiling;
    this.#audioBps = opts.audioBps;
    this.#floor = Math.min(opts.floor ?? DEFAULT_FLOOR_BPS, opts.ceiling);
  }

  get decision(): BitrateDecision {
    return { bps: this.#bps, reason: this.#reason, halfFrameRate: this.#half };
  }

  /** The streamer chose a rate: it is the new ceiling, and the encoder goes to it at once. */
  setCeiling(bps: number): void {
    this.#ceiling = bps;
    this.#bps = bps;
    this.#reason = 'chosen';
    this.#half = false;
    this.#congestedAt = -Infinity;
    this.#highSince = undefined;
    this.#clearSince = undefined;
    this.#samples.length = 0;
  }

  /** One measurement; returns the decision (changed or not). */
  update(sample: LinkSample): BitrateDecision {
    const samples = this.#samples;
    samples.push(sample);
    if (samples.length > MAX_SAMPLES) samples.shift();
    const now = sample.atMs;
    const mediaBps = (this.#half ? this.#bps / 2 : this.#bps) + this.#audioBps;
    const backlogMs = (sample.backlogBytes * 8 * 1000) / mediaBps;

    if (backlogMs > HIGH_MS) this.#highSince ??= now;
    else this.#highSince = undefined;
    if (backlogMs < CLEAR_MS) {
      this.#clearSince ??= now;
      this.#busySince = undefined;
    } else {
      this.#busySince ??= now;
      this.#clearSince = undefined;
    }

    const high = this.#highSince !== undefined && now - this.#highSince >= HIGH_HOLD_MS;
    const growing = backlogMs > GROWING_MS && this.#busySince !== undefined && now - this.#busySince >= GROW_HOLD_MS && this.#grewOver(now, GROW_HOLD_MS);
    const congested = high || growing;
    if (congested) {
      if (now - this.#lastChangeAt >= STEP_HOLD_MS && this.#grewOver(now, 1000, true)) this.#stepDown(now, sample.backlogBytes);
      return this.decision;
    }
    if (this.#clearSince !== undefined && now - this.#clearSince >= CLEAR_HOLD_MS) this.#climb(now);
    return this.decision;
  }

  #stepDown(now: number, backlogBytes: number): void {
    this.#congestedBps = this.#bps;
    this.#congestedAt = now;
    this.#lastChangeAt = now;
    this.#clearSince = undefined;
    const throughput = this.#throughput();
    // Before the first throughput is known (a link that backs up at once), halve.
    const aim = throughput === undefined ? this.#bps / 2 : THROUGHPUT_SHARE * throughput - this.#audioBps - Math.min((backlogBytes * 8) / DRAIN_S, DRAIN_SHARE * throughput);
    const bps = Math.round(Math.max(this.#floor, Math.min(aim, this.#bps * 0.85)));
    if (bps === this.#bps && this.#bps <= this.#floor) this.#half = true;
    this.#bps = bps;
    this.#reason = 'congested';
  }

  #climb(now: number): void {
    if (this.#bps >= this.#ceiling && !this.#half) return;
    const next = this.#half ? this.#bps : Math.min(this.#ceiling, Math.round(Math.max(this.#bps * CLIMB_FACTOR, this.#bps + CLIMB_MIN_BPS)));
    const nearCongested = now - this.#congestedAt < CONGESTED_MEMORY_MS && this.#bps < this.#congestedBps && next >= 0.9 * this.#congestedBps;
    const wait = nearCongested ? PROBE_EVERY_MS : CLIMB_EVERY_MS;
    if (now - this.#lastChangeAt < wait) return;
    this.#lastChangeAt = now;
    if (this.#half) this.#half = false;
    else this.#bps = next;
    this.#reason = this.#bps >= this.#ceiling && !this.#half ? 'chosen' : 'recovering';
  }

  /** The backlog grew (or `orHeld`: did not shrink) over the last `ms`; a shrinking one needs no step down, the rate is below what the link carries. */
  #grewOver(now: number, ms: number, orHeld = false): boolean {
    const last = this.#samples.at(-1)!;
    const before = this.#samples.findLast((x) => now - x.atMs >= ms);
    if (before === undefined) return false;
    return orHeld ? last.backlogBytes >= before.backlogBytes : last.backlogBytes > before.backlogBytes;
  }

  /** What the bridge acknowledged per second over the last THROUGHPUT_WINDOW_MS, bits per second. */
  #throughput(): number | undefined {
    const last = this.#samples.at(-1)!;
    const first = this.#samples.find((x) => last.atMs - x.atMs <= THROUGHPUT_WINDOW_MS);
    if (first === undefined || last.atMs - first.atMs < SAMPLE_MS) return undefined;
    return ((last.ackedBytes - first.ackedBytes) * 8 * 1000) / (last.atMs - first.atMs);
  }
}

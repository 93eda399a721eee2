export interface JitterOptions {
  /** Seconds of arrivals remembered: one late burst keeps the estimate up this long. */
  windowS: number;
  /** Arrivals are summarised per bucket of this many seconds (bounded memory). */
  bucketS: number;
  /**
   * Lateness beyond this is an outage (the source stopped, or its timeline moved), not jitter:
   * the estimate starts afresh from the next arrival.
   */
  outageS: number;
  /**
   * Late buckets this close together may be one event (a hiccup and the catch-up after it):
   * the estimate is the lateness that two buckets further apart than this both reach.
   */
  eventS: number;
  /**
   * Lateness in the first seconds after a (re)start is not counted: a page starting up
   * (compiling, laying out, decoding its first frames) delays its own arrivals.
   */
  warmupS: number;
}

export const DEFAULT_JITTER_OPTIONS: JitterOptions = { windowS: 10, bucketS: 0.25, outageS: 2, eventS: 0.3, warmupS: 1 };

export interface TargetOptions {
  /** Least distance behind the expected live edge, seconds. */
  minTargetS: number;
  /** Most distance behind it, whatever the jitter. */
  maxTargetS: number;
  /** Room kept between the playhead and the edge at its latest. */
  marginS: number;
}

export const DEFAULT_TARGET_OPTIONS: TargetOptions = { minTargetS: 0.15, maxTargetS: 2, marginS: 0.12 };

/** How far behind the expected live edge to play for a source with this arrival jitter. */
export function targetBufferS(jitterS: number, opts: TargetOptions = DEFAULT_TARGET_OPTIONS): number {
  return Math.min(opts.maxTargetS, Math.max(opts.minTargetS, jitterS + opts.marginS));
}

interface Bucket {
  startS: number;
  /** Least `now − edge` right after an arrival: the edge at its earliest. */
  minAfter: number;
  /** Largest lateness of the edge seen just before an arrival, against the earliest before it. */
  late: number;
  /** The earliest `now − edge` that lateness was measured against. */
  lateBase: number;
}

/**
 * How late the stream's playable end arrives, measured without the DOM: every time the end
 * moves, `arrive(now, edge)`. `now − edge` is smallest for media that arrived as early as it
 * can; the edge is late by how much more it is. Just before an arrival the edge is at its
 * stalest, so a playhead kept that far behind the earliest possible edge never runs dry. A
 * smooth source shows a frame interval and scheduling noise (tens of ms); SRS's merged writes
 * show their 350 ms. The estimate is the lateness reached twice in the window, by buckets
 * apart enough to be two events, so one hiccup does not hold the target up; lateness only
 * counts against arrivals before it, so a joining viewer's catch-up burst (old media arriving
 * at once) is not jitter.
 */
export class ArrivalJitter {
  readonly #opts: JitterOptions;
  #buckets: Bucket[] = [];
  #edge: number | undefined;
  #since: number | undefined;
  outages = 0;

  constructor(opts: Partial<JitterOptions> = {}) {
    this.#opts = { ...DEFAULT_JITTER_OPTIONS, ...opts };
  }

  /** The playable end of the stream moved to `edgeS` (media seconds) at `nowS` (local seconds). */
  arrive(nowS: number, edgeS: number): void {
    const last = this.#edge;
    if (last !== undefined && edgeS <= last) return;
    this.#edge = edgeS;
    this.#since ??= nowS;
    this.#expire(nowS);
    const base = this.#earliest();
    let late = 0;
    if (last !== undefined && base !== undefined && nowS - this.#since >= this.#opts.warmupS) {
      late = nowS - last - base;
      if (late > this.#opts.outageS) {
        this.#buckets = [];
        this.#since = nowS;
        this.outages++;
        late = 0;
      }
    }
    let b = this.#buckets[this.#buckets.length - 1];
    if (b === undefined || nowS >= b.startS + this.#opts.bucketS) {
      b = { startS: nowS, minAfter: Infinity, late: 0, lateBase: Infinity };
      this.#buckets.push(b);
    }
    if (late > b.late || b.lateBase === Infinity) {
      b.late = Math.max(0, late);
      b.lateBase = base ?? nowS - edgeS;
    }
    b.minAfter = Math.min(b.minAfter, nowS - edgeS);
  }

  /** Forgets everything: the timeline that follows is not comparable (a new connection). */
  reset(): void {
    this.#buckets = [];
    this.#edge = undefined;
    this.#since = undefined;
  }

  /** Seconds by which the edge can be late; 0 until arrivals say otherwise. */
  jitterS(nowS: number): number {
    return this.#worst(nowS)?.late ?? 0;
  }

  /**
   * Where the edge would be now had everything arrived as early as the earliest arrival. The
   * earliest is the one the jitter was measured against, not a later and luckier one: then
   * `expectedEdge − jitter` is the edge at its stalest, exactly, and a single early arrival does
   * not move the playhead's target.
   */
  expectedEdge(nowS: number): number | undefined {
    const w = this.#worst(nowS);
    const base = w === undefined || w.lateBase === Infinity ? this.#earliest() : w.lateBase;
    return base === undefined ? undefined : nowS - base;
  }

  /**
   * The bucket whose lateness stands for the window: of the latest buckets, the first with a
   * later one more than `eventS` away from it (the lesser of the two events); the worst while
   * the window is too short to hold two.
   */
  #worst(nowS: number): Bucket | undefined {
    this.#expire(nowS);
    const sorted = [...this.#buckets].sort((x, y) => y.late - x.late);
    for (let k = 1; k < sorted.length; k++) {
      const b = sorted[k]!;
      for (let i = 0; i < k; i++) if (Math.abs(sorted[i]!.startS - b.startS) > this.#opts.eventS) return b;
    }
    return sorted[0];
  }

  #earliest(): number | undefined {
    let base = Infinity;
    for (const b of this.#buckets) base = Math.min(base, b.minAfter);
    return base === Infinity ? undefined : base;
  }

  #expire(nowS: number): void {
    const from = nowS - this.#opts.windowS;
    let n = 0;
    while (n < this.#buckets.length - 1 && this.#buckets[n]!.startS + this.#opts.bucketS <= from) n++;
    if (n > 0) this.#buckets.splice(0, n);
  }
}

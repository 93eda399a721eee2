import {
  TagKind,
  tagKind,
  type Backoff,
  type DestinationStatus,
  type FlvTag,
  type RestreamDestinationStatus,
  type RestreamInputState,
  type RestreamInputStats,
} from '@onair/shared';
import { GopCache, type GopCacheLimits } from '../media/gop-cache.js';
import { SessionTimeline } from '../media/session-timeline.js';
import { DestinationRelay, type DestinationPolicy, type KindedTag } from '../relay/destination-relay.js';
import { redactUrl } from '../rtmp/url.js';
import { InputMeter } from './input-meter.js';

export interface RestreamOptions {
  /** For logs. */
  name: string;
  /** How long destinations stay published while the input is away. */
  graceMs: number;
  policy: DestinationPolicy;
  /** Something in status() changed (state, a destination's state). */
  onChange: () => void;
  log?: (line: string) => void;
  retry?: Backoff;
  maxBufferedBytes?: number;
  gop?: Partial<GopCacheLimits>;
}

/** A returning input whose first media continues within this much of its pause was stalled, not restarted. */
const CONTINUITY_SLACK_MS = 1000;

interface Destination {
  readonly id: string;
  /** Holds the stream key: never log or show it. */
  readonly url: string;
  autoStart: boolean;
  /** The running relay, or the last one (stopped or failed) for its final status. */
  relay: DestinationRelay | undefined;
  running: boolean;
  /** A stop in progress: start() waits for it so one server never sees two publishers. */
  stopping: Promise<void> | undefined;
}

/**
 * One input relayed to its destinations, payloads byte for byte. The input (an encoder on the
 * embedded server, or any RTMP source) comes and goes; this keeps one broadcast going through it:
 * while the input is away, destinations stay published for the grace period, and media from its
 * return continues the same timeline (SessionTimeline) at its first keyframe, so every platform
 * sees one stream. Past the grace period destinations unpublish cleanly, and those marked
 * autoStart publish again when the input is live. The caller feeds it: push() for every tag,
 * away() when the input connection ended or went silent.
 */
export class Restream {
  readonly #opts: RestreamOptions;
  readonly #timeline = new SessionTimeline();
  readonly #cache: GopCache<KindedTag>;
  readonly #meter = new InputMeter();
  readonly #destinations = new Map<string, Destination>();
  #state: RestreamInputState = 'waiting';
  #reason: string | undefined = 'no encoder is publishing yet';
  #awayAt = 0;
  #grace: NodeJS.Timeout | undefined;
  /** Source timestamp of the last media tag, to tell a stall from a restart on return. */
  #lastMediaIn: number | undefined;
  #checkReturn = false;
  #closed = false;

  constructor(opts: RestreamOptions) {
    this.#opts = opts;
    this.#cache = new GopCache<KindedTag>(opts.gop);
  }

  get state(): RestreamInputState {
    return this.#state;
  }

  /** One tag from the input, in arrival order. */
  push(tag: FlvTag): void {
    if (this.#closed) return;
    const kind = tagKind(tag);
    const now = performance.now();
    if (this.#state !== 'live') this.#returned(now);
    this.#meter.push(tag, kind, now);
    const media = kind === TagKind.Keyframe || kind === TagKind.Frame || kind === TagKind.Audio;
    if (media) {
      if (this.#checkReturn) {
        this.#checkReturn = false;
        // An encoder that started again counts from 0 (or a server shifted it anywhere): continue
        // at its first keyframe. One that only stalled picks up where it was.
        const last = this.#lastMediaIn;
        const pause = now - this.#awayAt;
        if (last === undefined || tag.timestamp < last || tag.timestamp > last + pause + CONTINUITY_SLACK_MS) this.#timeline.gap();
      }
      this.#lastMediaIn = tag.timestamp;
    }
    const timestamp = this.#timeline.map(tag.timestamp, kind);
    if (timestamp === undefined) return;
    const out: KindedTag = { type: tag.type, timestamp, data: tag.data, kind };
    this.#cache.push(out, kind);
    for (const d of this.#destinations.values()) if (d.running) d.relay?.push(out);
  }

  /** The input connection ended or went silent: destinations hold for the grace period. */
  away(reason: string): void {
    if (this.#closed || this.#state !== 'live') return;
    this.#state = 'reconnecting';
    this.#reason = reason;
    this.#awayAt = performance.now();
    // Frames from before the pause must not start a destination that (re)connects meanwhile.
    this.#cache.dropGop();
    const seconds = this.#opts.graceMs / 1000;
    this.#opts.log?.(`${this.#opts.name}: input away (${reason}); destinations stay published for ${seconds} s`);
    this.#grace = setTimeout(() => this.#expire(), this.#opts.graceMs);
    this.#grace.unref();
    this.#opts.onChange();
  }

  #returned(now: number): void {
    const was = this.#state;
    clearTimeout(this.#grace);
    this.#grace = undefined;
    this.#state = 'live';
    this.#reason = undefined;
    if (was === 'reconnecting' || was === 'ended') {
      this.#meter.reconnects++;
      this.#meter.restart();
      this.#checkReturn = true;
      this.#opts.log?.(`${this.#opts.name}: input back after ${((now - this.#awayAt) / 1000).toFixed(1)} s`);
    }
    for (const d of this.#destinations.values()) if (d.autoStart && !d.running) this.#startRelay(d);
    this.#opts.onChange();
  }

  #expire(): void {
    this.#grace = undefined;
    if (this.#state !== 'reconnecting') return;
    const seconds = this.#opts.graceMs / 1000;
    this.#state = 'ended';
    this.#reason = `the input was away longer than ${seconds} s: destinations unpublished${[...this.#destinations.values()].some((d) => d.autoStart) ? '; those set to start with the input publish again when it is back' : ''}`;
    this.#opts.log?.(`${this.#opts.name}: input away longer than ${seconds} s; unpublishing`);
    for (const d of this.#destinations.values()) this.#stopRelay(d).catch(() => undefined);
    this.#cache.clear();
    this.#opts.onChange();
  }

  status(): { state: RestreamInputState; reason?: string; graceLeftMs?: number; stats: RestreamInputStats; destinations: RestreamDestinationStatus[] } {
    const now = performance.now();
    const out: ReturnType<Restream['status']> = { state: this.#state, stats: this.#meter.stats(now), destinations: [] };
    if (this.#reason !== undefined) out.reason = this.#reason;
    if (this.#state === 'reconnecting') out.graceLeftMs = Math.max(0, Math.round(this.#awayAt + this.#opts.graceMs - now));
    for (const d of this.#destinations.values()) out.destinations.push({ ...this.#destinationStatus(d), autoStart: d.autoStart });
    return out;
  }

  #destinationStatus(d: Destination): DestinationStatus {
    if (d.relay !== undefined) return d.relay.status();
    return { id: d.id, url: redactUrl(d.url), state: 'stopped', bytes: 0, dropped: 0, bufferedBytes: 0 };
  }

  has(id: string): boolean {
    return this.#destinations.has(id);
  }

  get destinationCount(): number {
    return this.#destinations.size;
  }

  /** Adds a destination, stopped unless autoStart and the input is live. */
  add(id: string, url: string, autoStart: boolean): void {
    if (this.#destinations.has(id)) throw new Error(`destination ${id} exists`);
    const d: Destination = { id, url, autoStart, relay: undefined, running: false, stopping: undefined };
    this.#destinations.set(id, d);
    if (autoStart && this.#state === 'live') this.#startRelay(d);
    this.#opts.onChange();
  }

  setAutoStart(id: string, autoStart: boolean): void {
    const d = this.#destinations.get(id);
    if (d === undefined) return;
    d.autoStart = autoStart;
    if (autoStart && this.#state === 'live' && !d.running) this.#startRelay(d);
    this.#opts.onChange();
  }

  /** Publishes to the destination now (it waits for the input's next keyframe). */
  start(id: string): void {
    const d = this.#destinations.get(id);
    if (d !== undefined && !d.running) this.#startRelay(d);
  }

  /** Unpublishes cleanly; resolves once the server was told. */
  async stop(id: string): Promise<void> {
    const d = this.#destinations.get(id);
    if (d !== undefined) await this.#stopRelay(d);
  }

  async remove(id: string): Promise<void> {
    const d = this.#destinations.get(id);
    if (d === undefined) return;
    this.#destinations.delete(id);
    await this.#stopRelay(d);
    this.#opts.onChange();
  }

  startAll(): void {
    for (const d of this.#destinations.values()) if (!d.running) this.#startRelay(d);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.#destinations.values()].map((d) => this.#stopRelay(d)));
  }

  #startRelay(d: Destination): void {
    if (this.#closed) return;
    d.running = true;
    const previous = d.stopping;
    const begin = (): void => {
      if (!d.running || this.#closed || !this.#destinations.has(d.id)) return;
      d.relay = new DestinationRelay({
        id: d.id,
        url: d.url,
        policy: this.#opts.policy,
        streamStart: () => this.#cache.snapshot(),
        onChange: () => this.#opts.onChange(),
        ...(this.#opts.maxBufferedBytes !== undefined ? { maxBufferedBytes: this.#opts.maxBufferedBytes } : {}),
        ...(this.#opts.retry !== undefined ? { retry: this.#opts.retry } : {}),
        ...(this.#opts.log !== undefined ? { log: this.#opts.log } : {}),
      });
    };
    if (previous === undefined) begin();
    else previous.then(begin, begin);
    this.#opts.onChange();
  }

  #stopRelay(d: Destination): Promise<void> {
    if (!d.running) return d.stopping ?? Promise.resolve();
    d.running = false;
    const relay = d.relay;
    const stopping = (relay?.stop() ?? Promise.resolve()).finally(() => {
      if (d.stopping === stopping) d.stopping = undefined;
    });
    d.stopping = stopping;
    this.#opts.onChange();
    return stopping;
  }

  /** Every destination unpublishes (bounded wait each); the input is not fed any more. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearTimeout(this.#grace);
    await this.stopAll();
    this.#closed = true;
    this.#cache.clear();
  }

  /** Ends at once without the polite unpublish (process exit). */
  destroy(): void {
    this.#closed = true;
    clearTimeout(this.#grace);
    for (const d of this.#destinations.values()) d.relay?.destroy();
  }

  /** The destinations' results, for a command's summary. */
  results(): DestinationStatus[] {
    return [...this.#destinations.values()].map((d) => this.#destinationStatus(d));
  }
}

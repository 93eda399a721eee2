import { timingSafeEqual } from 'node:crypto';
import {
  CloseCode,
  FlvTagType,
  MAX_STUDIO_BINARY_BYTES,
  parseFlvTag,
  sanitizeMetadata,
  tagKind,
  type DestinationState,
  type StudioDestination,
  type StudioGapMessage,
  type StudioGaps,
  type StudioServerMessage,
  type StudioStatusMessage,
} from '@onair/shared';
import { GopCache, type GopCacheLimits } from '../media/gop-cache.js';
import { DestinationRelay, type DestinationRelayOptions, type KindedTag, type StreamStart } from '../relay/destination-relay.js';
import { SessionTimeline } from '../media/session-timeline.js';

/** The socket a session is attached to, as the session sees it. */
export interface SessionLink {
  send(msg: StudioServerMessage): void;
  close(code: CloseCode, reason: string): void;
}

export interface StudioSessionOptions {
  policy: DestinationRelayOptions['policy'];
  log?: (line: string) => void;
  /** How long the session waits for its page to come back after the socket dropped. */
  graceMs: number;
  /** Status is pushed at least this often while attached, and soon after any state change. */
  statusIntervalMs?: number;
  /** Acknowledgements go out this often while binary frames arrive. */
  ackIntervalMs?: number;
  maxBufferedBytes?: number;
  retry?: DestinationRelayOptions['retry'];
  gop?: Partial<GopCacheLimits>;
  /** Session events for the operator's log (`--log-format json`); URLs in them are redacted. */
  onEvent?: (event: StudioEvent) => void;
}

/** What happens to studio sessions, as the bridge's log tells it (docs/operations.md). */
export type StudioEvent =
  | { event: 'studio.session.start'; session: string; client: string; destinations: number }
  | { event: 'studio.session.resume'; session: string; received: number }
  | { event: 'studio.session.end'; session: string; frames: number; bytes: number }
  | { event: 'studio.destination'; session: string; destination: string; url: string; state: DestinationState; reason?: string };

export interface StudioSessionInit {
  id: string;
  token: string;
  /** The client's address, for per-client limits and logs. */
  client: string;
  destinations: readonly StudioDestination[];
}

const STATUS_DEBOUNCE_MS = 100;
const DEFAULT_STATUS_INTERVAL_MS = 1000;
const DEFAULT_ACK_INTERVAL_MS = 200;

/**
 * One broadcast from one studio page: the session, not the socket, is its unit. It owns the
 * destination relays and what a (re)connecting destination needs (metadata, sequence headers and
 * the GOP); a socket attaches to it, and when the socket drops the destinations stay published for
 * the grace period while the page resumes on a new one. Binary frames are counted across sockets;
 * that count is what the page's resend picks up from.
 */
export class StudioSession {
  readonly id: string;
  readonly client: string;
  readonly #token: Buffer;
  readonly #opts: StudioSessionOptions;
  readonly #onEnd: (session: StudioSession) => void;
  readonly #relays: DestinationRelay[];
  readonly #cache: GopCache<KindedTag>;
  readonly #timeline = new SessionTimeline();
  #link: SessionLink | undefined;
  #received = { bytes: 0, tags: 0 };
  #acked = 0;
  #gaps: StudioGaps = { count: 0, frames: 0, ms: 0 };
  #statusTimer: NodeJS.Timeout;
  #ackTimer: NodeJS.Timeout;
  #debounce: NodeJS.Timeout | undefined;
  #grace: NodeJS.Timeout | undefined;
  #ended = false;
  /** Each destination's state as last reported, to tell changes and count reconnects. */
  readonly #states = new Map<string, DestinationState>();
  #reconnects = 0;
  /** Resolves once every destination has unpublished. */
  readonly done: Promise<void>;
  #resolveDone!: () => void;

  constructor(init: StudioSessionInit, opts: StudioSessionOptions, onEnd: (session: StudioSession) => void) {
    this.id = init.id;
    this.client = init.client;
    this.#token = Buffer.from(init.token);
    this.#opts = opts;
    this.#onEnd = onEnd;
    this.#cache = new GopCache<KindedTag>(opts.gop);
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
    this.#relays = init.destinations.map(
      (d) =>
        new DestinationRelay({
          id: d.id,
          url: d.url,
          policy: opts.policy,
          streamStart: () => this.#streamStart(),
          onChange: () => {
            this.#statusSoon();
            this.#noteStates();
          },
          ...(opts.maxBufferedBytes !== undefined ? { maxBufferedBytes: opts.maxBufferedBytes } : {}),
          ...(opts.retry !== undefined ? { retry: opts.retry } : {}),
          ...(opts.log !== undefined ? { log: opts.log } : {}),
        }),
    );
    this.#statusTimer = setInterval(() => this.#sendStatus(), opts.statusIntervalMs ?? DEFAULT_STATUS_INTERVAL_MS);
    this.#ackTimer = setInterval(() => this.#sendAck(), opts.ackIntervalMs ?? DEFAULT_ACK_INTERVAL_MS);
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Binary frames received since the session started: the number of the last one. */
  get received(): number {
    return this.#received.tags;
  }

  get attached(): boolean {
    return this.#link !== undefined;
  }

  /** Times a destination of this session lost its connection and began retrying. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** True when `token` is this session's resume token (constant time). */
  owns(token: string): boolean {
    const t = Buffer.from(token);
    return t.length === this.#token.length && timingSafeEqual(t, this.#token);
  }

  /** The page's socket for this session from now on; a previous one (half-open, say) is closed. */
  attach(link: SessionLink): void {
    if (this.#ended) return;
    const old = this.#link;
    this.#link = link;
    clearTimeout(this.#grace);
    this.#grace = undefined;
    if (old !== undefined && old !== link) old.close(CloseCode.Superseded, 'the page resumed this session on a new connection');
    this.#acked = this.#received.tags;
  }

  /** The socket `link` is gone: destinations stay published for the grace period. */
  detach(link: SessionLink): void {
    if (this.#link !== link || this.#ended) return;
    this.#link = undefined;
    const ms = this.#opts.graceMs;
    this.#opts.log?.(`studio session ${this.id}: page disconnected, keeping its destinations for ${ms / 1000} s`);
    this.#grace = setTimeout(() => {
      this.#opts.log?.(`studio session ${this.id}: the page did not come back within ${ms / 1000} s; ending it`);
      this.end().catch((err: unknown) => this.#opts.log?.(`studio session ${this.id}: ending failed: ${String(err)}`));
    }, ms);
    this.#grace.unref();
  }

  /**
   * One binary frame from `link`: exactly one FLV tag. Throws OnairError for a frame that is not
   * one (the caller ends the session). Frames from a superseded socket are ignored.
   */
  onFrame(link: SessionLink, bytes: Uint8Array): void {
    if (link !== this.#link || this.#ended) return;
    this.#received.tags++;
    this.#received.bytes += bytes.length;
    const parsed = parseFlvTag(bytes, MAX_STUDIO_BINARY_BYTES);
    // Servers decode script data with their own AMF readers: they only ever see ours.
    const data = parsed.type === FlvTagType.Script ? sanitizeMetadata(parsed.data) : parsed.data;
    const tag = { type: parsed.type, timestamp: parsed.timestamp, data };
    const kind = tagKind(tag);
    const timestamp = this.#timeline.map(tag.timestamp, kind);
    if (timestamp === undefined) return;
    const out: KindedTag = { type: tag.type, timestamp, data, kind };
    this.#cache.push(out, kind);
    for (const relay of this.#relays) relay.push(out);
  }

  /** The page could not resend everything: the timeline continues at the next keyframe. */
  onGap(link: SessionLink, gap: StudioGapMessage): void {
    if (link !== this.#link || this.#ended) return;
    this.#timeline.gap();
    this.#gaps = { count: this.#gaps.count + 1, frames: this.#gaps.frames + gap.frames, ms: this.#gaps.ms + gap.ms };
    this.#opts.log?.(`studio session ${this.id}: the page lost ${gap.frames} frames (${(gap.ms / 1000).toFixed(1)} s); continuing at its next keyframe`);
    this.#statusSoon();
  }

  /** Ends the broadcast: every destination unpublishes; the last status goes to the page. */
  async stop(link: SessionLink): Promise<void> {
    if (link !== this.#link) return;
    await this.end();
    link.send(this.status());
  }

  status(): StudioStatusMessage {
    return { type: 'status', destinations: this.#relays.map((r) => r.status()), received: { ...this.#received }, gaps: { ...this.#gaps } };
  }

  /** Retries at once every destination waiting to reconnect to `matches` (a server known to be back). */
  retryNow(matches: (url: string) => boolean): void {
    for (const relay of this.#relays) if (matches(relay.url)) relay.retryNow();
  }

  #streamStart(): StreamStart {
    const { headers, gop } = this.#cache.snapshot();
    return { headers, gop };
  }

  #noteStates(): void {
    // Relays report their first 'connecting' while the constructor makes them, before #relays is set.
    for (const relay of (this.#relays as DestinationRelay[] | undefined) ?? []) {
      const s = relay.status();
      if (s.state === (this.#states.get(s.id) ?? 'connecting')) continue;
      this.#states.set(s.id, s.state);
      if (s.state === 'retrying') this.#reconnects++;
      this.#opts.onEvent?.({ event: 'studio.destination', session: this.id, destination: s.id, url: s.url, state: s.state, ...(s.reason !== undefined ? { reason: s.reason } : {}) });
    }
  }

  #statusSoon(): void {
    if (this.#debounce !== undefined || this.#ended) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.#sendStatus();
    }, STATUS_DEBOUNCE_MS);
  }

  #sendStatus(): void {
    this.#link?.send(this.status());
  }

  #sendAck(): void {
    if (this.#link === undefined || this.#received.tags === this.#acked) return;
    this.#acked = this.#received.tags;
    this.#link.send({ type: 'ack', received: this.#acked });
  }

  /** Unpublishes every destination (bounded wait) and forgets the session. */
  async end(): Promise<void> {
    if (this.#ended) return this.done;
    this.#ended = true;
    clearInterval(this.#statusTimer);
    clearInterval(this.#ackTimer);
    clearTimeout(this.#debounce);
    clearTimeout(this.#grace);
    this.#onEnd(this);
    await Promise.all(this.#relays.map((r) => r.stop()));
    this.#cache.clear();
    this.#resolveDone();
    return this.done;
  }

  /** Ends at once without the polite unpublish (process exit). */
  destroy(): void {
    this.#ended = true;
    clearInterval(this.#statusTimer);
    clearInterval(this.#ackTimer);
    clearTimeout(this.#debounce);
    clearTimeout(this.#grace);
    for (const r of this.#relays) r.destroy();
    this.#onEnd(this);
    this.#resolveDone();
  }
}

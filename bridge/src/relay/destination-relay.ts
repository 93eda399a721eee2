import {
  OnairError,
  TagKind,
  backoffMs,
  capReason,
  type Backoff,
  type DestinationState,
  type DestinationStatus,
  type ErrorCode,
  type FlvTag,
} from '@onair/shared';
import { RtmpPublisher, type RtmpMove } from '../rtmp/publisher.js';
import type { RtmpClientOptions } from '../rtmp/session.js';
import { redactUrl } from '../rtmp/url.js';

/** A tag on the session's timeline with its class (tagKind). */
export interface KindedTag extends FlvTag {
  readonly kind: TagKind;
}

/** What every new connection needs before media. */
export interface StreamStart {
  /** Metadata and the sequence headers. */
  headers: readonly KindedTag[];
  /** Tags since the last video keyframe (keyframe first), replayed on the first connection. */
  gop: readonly KindedTag[];
}

/** OBS's schedule: 2 s, then ×1.5 up to 30 s, plus up to 20 %. */
export const DEFAULT_RETRY: Backoff = { baseMs: 2000, factor: 1.5, maxMs: 30_000, jitter: 0.2 };

/**
 * Where destinations may point (ServerPolicy): checked by URL first, then on the address dialled
 * (connectOptions' checkAddress), and the session options every connection gets.
 */
export interface DestinationPolicy {
  isAllowed(url: string): Promise<void> | void;
  /** Options for the connection to `url` (the embedded server is exempt from the address checks). */
  connectOptions(url?: string): Omit<RtmpClientOptions, 'signal'>;
}

export interface DestinationRelayOptions {
  id: string;
  url: string;
  policy: DestinationPolicy;
  streamStart: () => StreamStart;
  onChange: () => void;
  /** RTMP send queue above which the next GOP is dropped (twice it: video mid-GOP and audio too). */
  maxBufferedBytes?: number;
  /**
   * How long a written frame may wait without the server taking it (acknowledging it, where it
   * acknowledges) before the next GOP is dropped, ms.
   */
  maxBehindMs?: number;
  retry?: Backoff;
  log?: (line: string) => void;
}

export const DEFAULT_MAX_BUFFERED_BYTES = 3 * 1024 * 1024;
/**
 * A frame waiting this long for its server (a GOP and a half): the destination drops the next GOP
 * rather than fall further behind (a slow server or a slow path to it), so its viewers stay near
 * live and the others never wait.
 */
export const DEFAULT_MAX_BEHIND_MS = 3000;
/** While a GOP was dropped this recently, the status says the destination is falling behind. */
const FALLING_BEHIND_SHOWN_MS = 10_000;
/** Written video tags remembered to tell how far behind the server is (about a minute at 30 fps). */
const MAX_MARKS = 2048;const END_TIMEOUT_MS = 3000;

/** Error codes after which retrying cannot help. */
const PERMANENT: ReadonlySet<ErrorCode> = new Set(['DESTINATION_REFUSED', 'RTMP_BAD_URL']);
/**
 * The server answered, and said no: a wrong key or application. Retried a few times (a publisher
 * that just left may still hold the stream for a moment), then given up with advice.
 */
const REFUSALS: ReadonlyMap<ErrorCode, string> = new Map<ErrorCode, string>([
  ['RTMP_PUBLISH_BADNAME', "the server refused the stream key: check it in the platform's dashboard, and that no other encoder is publishing with it"],
  ['RTMP_PUBLISH_FAILED', "the server refused to publish: check the stream key in the platform's dashboard"],
  ['RTMP_CONNECT_REJECTED', 'the server rejected the connection: check the server URL and its application name'],
]);
/** Consecutive refusals before a destination is marked failed. */
export const MAX_REFUSALS = 4;

function errorCode(err: unknown): ErrorCode | undefined {
  return err instanceof OnairError ? err.code : undefined;
}

/**
 * One destination of a studio session: owns its RtmpPublisher, reconnects with backoff, rebases
 * timestamps to 0 on every connection and drops video to the next keyframe when the connection
 * falls behind. Never throws into the session; it reports through `status()` and `onChange`.
 */
export class DestinationRelay {
  readonly id: string;
  /** The destination URL, stream key included: never log or show it (status() has the redacted one). */
  readonly url: string;
  readonly #redacted: string;
  readonly #key: string;
  readonly #opts: DestinationRelayOptions;
  readonly #maxBuffered: number;
  readonly #maxBehindMs: number;
  readonly #retry: Backoff;

  #state: DestinationState = 'connecting';
  #reason: string | undefined;
  #retryAt = 0;
  #attempt = 0;
  #publisher: RtmpPublisher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopping = false;
  /** Aborts a connection attempt in progress when the relay stops. */
  readonly #abort = new AbortController();
  #bytes = 0;
  #dropped = 0;
  /** Whole GOPs dropped because the destination fell behind, and when the last one was. */
  #droppedGops = 0;
  #gopDroppedAt = -Infinity;
  /**
   * Video tags written on this connection: the connection's byte count after each and when it was
   * written (performance.now()), oldest first, until the server has taken them. How far behind
   * the destination is = how long the oldest it has not taken has waited. Wall time, not media
   * time: a burst of media (the page resending after a dropped socket) is not a slow server.
   */
  #marks: { sent: number; at: number }[] = [];
  #marksHead = 0;
  /** Source timestamp that maps to 0 on the current connection. */
  #base: number | undefined;
  #waitKeyframe = true;
  #lastOut = [-1, -1];
  #wasLive = false;
  #refusals = 0;
  /** Moves at a server's request (reconnect requests) since the session started. */
  #moves = 0;
  /** The newest header of each kind that could not go out while the connection was backed up. */
  readonly #pendingHeaders = new Map<TagKind, KindedTag>();

  constructor(opts: DestinationRelayOptions) {
    this.id = opts.id;
    this.url = opts.url;
    this.#redacted = redactUrl(opts.url);
    this.#key = opts.url.slice(opts.url.lastIndexOf('/') + 1);
    this.#opts = opts;
    this.#maxBuffered = opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.#maxBehindMs = opts.maxBehindMs ?? DEFAULT_MAX_BEHIND_MS;
    this.#retry = opts.retry ?? DEFAULT_RETRY;
    this.#dial();
  }

  get state(): DestinationState {
    return this.#state;
  }

  status(): DestinationStatus {
    const s: DestinationStatus = {
      id: this.id,
      url: this.#redacted,
      state: this.#state,
      bytes: this.#bytes,
      dropped: this.#dropped,
      bufferedBytes: this.#publisher?.bufferedBytes ?? 0,
    };
    if (this.#reason !== undefined) s.reason = this.#reason;
    else if (this.#state === 'live' && performance.now() - this.#gopDroppedAt < FALLING_BEHIND_SHOWN_MS) {
      s.reason = `falling behind: dropping video to keep up (${this.#droppedGops} ${this.#droppedGops === 1 ? 'GOP' : 'GOPs'})`;
    }
    if (this.#droppedGops > 0) s.droppedGops = this.#droppedGops;
    if (this.#state === 'retrying') s.retryInMs = Math.max(0, Math.round(this.#retryAt - performance.now()));
    const at = this.#publisher?.url;
    if (at !== undefined && at !== this.#redacted) s.movedTo = at;
    if (this.#moves > 0) s.moves = this.#moves;
    return s;
  }

  /**
   * Forwards one tag on the session's timeline. Video is dropped by whole GOPs: a keyframe that
   * finds the destination behind (a frame written more than maxBehindMs ago not yet taken by the
   * server, or more than maxBufferedBytes queued) is dropped with the frames after it, and a GOP once started
   * goes out whole; only past twice the byte limit, the bound on memory, is a GOP cut. Headers
   * count against the same budget as media: past twice the limit the newest of each kind waits
   * and goes out just before the next keyframe.
   */
  push(tag: KindedTag): void {
    const publisher = this.#publisher;
    if (this.#state !== 'live' || publisher === undefined) return;
    const buffered = publisher.bufferedBytes;
    switch (tag.kind) {
      case TagKind.Metadata:
      case TagKind.AudioConfig:
      case TagKind.VideoConfig:
        if (buffered > 2 * this.#maxBuffered) {
          this.#pendingHeaders.set(tag.kind, tag);
          return;
        }
        // A mid-stream change (encoder reconfigured) applies from here on.
        this.#write(publisher, tag, this.#base === undefined ? 0 : Math.max(0, tag.timestamp - this.#base));
        return;
      case TagKind.Keyframe:
        if (buffered > this.#maxBuffered || this.#behindMs(publisher) > this.#maxBehindMs) {
          this.#waitKeyframe = true;
          this.#dropped++;
          // A connection's first keyframe waits for room without counting as a GOP lost.
          if (this.#base !== undefined) {
            this.#droppedGops++;
            this.#gopDroppedAt = performance.now();
          }
          return;
        }
        this.#waitKeyframe = false;
        this.#base ??= tag.timestamp;
        for (const header of this.#pendingHeaders.values()) this.#write(publisher, header, Math.max(0, tag.timestamp - this.#base));
        this.#pendingHeaders.clear();
        break;
      case TagKind.Frame:
      case TagKind.Other:
        if (this.#waitKeyframe || buffered > 2 * this.#maxBuffered) {
          if (tag.kind === TagKind.Frame) this.#waitKeyframe = true;
          this.#dropped++;
          return;
        }
        break;
      case TagKind.Audio:
        // Audio waits for the first keyframe so both tracks start together; beyond twice the
        // limit even audio goes, so memory stays bounded whatever the network does.
        if (this.#base === undefined || tag.timestamp < this.#base || buffered > 2 * this.#maxBuffered) {
          if (this.#base !== undefined) this.#dropped++;
          return;
        }
        break;
    }
    this.#write(publisher, tag, tag.timestamp - (this.#base ?? tag.timestamp));
  }

  #write(publisher: RtmpPublisher, tag: KindedTag, timestamp: number): void {
    const kind = tag.kind;
    const track = kind === TagKind.Audio || kind === TagKind.AudioConfig ? 0 : 1;
    // Per-track monotonic timestamps whatever the page sent: servers drop or reorder otherwise.
    const ts = kind === TagKind.Metadata ? timestamp : Math.max(timestamp, this.#lastOut[track] ?? 0);
    if (kind !== TagKind.Metadata) this.#lastOut[track] = ts;
    const out: FlvTag = { type: tag.type, timestamp: ts, data: tag.data };
    try {
      publisher.write(out);
      this.#bytes += tag.data.length;
      if (kind === TagKind.Keyframe || kind === TagKind.Frame) this.#mark(publisher.stats.bytesSent);
    } catch (err) {
      this.#lost(publisher, err);
    }
  }

  #mark(sent: number): void {
    const last = this.#marks[this.#marks.length - 1];
    // Fewer bytes than before: another connection (a move at the server's request) counts anew.
    if (last !== undefined && sent < last.sent) this.#clearMarks();
    this.#marks.push({ sent, at: performance.now() });
    if (this.#marks.length - this.#marksHead > MAX_MARKS) this.#marksHead++;
    if (this.#marksHead > 1024 && this.#marksHead * 2 > this.#marks.length) {
      this.#marks = this.#marks.slice(this.#marksHead);
      this.#marksHead = 0;
    }
  }

  #clearMarks(): void {
    this.#marks = [];
    this.#marksHead = 0;
  }

  /**
   * How long the oldest frame the server has not taken has waited since it was written, ms (0:
   * it has taken everything). Where the server acknowledges (nginx-rtmp,
   * SRS: from its second acknowledgement on), taken is what it acknowledged plus one window (it
   * acknowledges only every window's worth, so the estimate errs towards keeping GOPs): the kernel
   * buffers on the way, megabytes on a fast machine, count as behind. node-media-server sends no
   * acknowledgements: what left the socket is all there is to go by.
   */
  #behindMs(publisher: RtmpPublisher): number {
    const stats = publisher.stats;
    const left = stats.bytesSent - publisher.bufferedBytes;
    const acked = stats.acksReceived >= 2 ? stats.bytesAcknowledged : undefined;
    // Marks the server surely has are forgotten; the others stay for a later, better estimate.
    const surely = acked ?? left;
    while (this.#marksHead < this.#marks.length && this.#marks[this.#marksHead]!.sent <= surely) this.#marksHead++;
    const taken = acked === undefined ? left : Math.min(left, acked + stats.ackSpacing);
    let i = this.#marksHead;
    while (i < this.#marks.length && this.#marks[i]!.sent <= taken) i++;
    const oldest = this.#marks[i];
    return oldest === undefined ? 0 : performance.now() - oldest.at;
  }

  /** Starts a connection attempt; a fault in it that escaped every handler still only retries. */
  #dial(): void {
    this.#connect().catch((err: unknown) => {
      this.#opts.log?.(`${this.#redacted}: connection attempt failed unexpectedly (${this.#describe(err)})`);
      if (!this.#stopping && this.#publisher === undefined && this.#timer === undefined) this.#scheduleRetry(err);
    });
  }

  async #connect(): Promise<void> {
    this.#setState('connecting', undefined);
    let publisher: RtmpPublisher;
    try {
      await this.#opts.policy.isAllowed(this.url);
      publisher = await RtmpPublisher.connect(this.url, {
        ...this.#opts.policy.connectOptions(this.url),
        signal: this.#abort.signal,
        // Where a server sends us (a redirect, a reconnect request) passes the same policy.
        checkUrl: (url) => this.#opts.policy.isAllowed(url),
        onMove: (move) => this.#moved(move),
      });
    } catch (err) {
      if (this.#stopping) return;
      const code = errorCode(err);
      if (code !== undefined && PERMANENT.has(code)) {
        this.#setState('failed', this.#describe(err));
        return;
      }
      const advice = code === undefined ? undefined : REFUSALS.get(code);
      this.#refusals = advice === undefined ? 0 : this.#refusals + 1;
      if (advice !== undefined && this.#refusals >= MAX_REFUSALS) {
        this.#setState('failed', capReason(`${advice} (${this.#describe(err)})`));
        return;
      }
      this.#scheduleRetry(err);
      return;
    }
    if (this.#stopping) {
      publisher.destroy();
      return;
    }
    this.#publisher = publisher;
    publisher.closed.then(
      () => this.#lost(publisher, new OnairError('CONNECTION_CLOSED', 'the server closed the connection')),
      (err: unknown) => this.#lost(publisher, err),
    );
    this.#base = undefined;
    this.#lastOut = [-1, -1];
    this.#waitKeyframe = true;
    this.#pendingHeaders.clear();
    this.#clearMarks();
    this.#refusals = 0;
    this.#setState('live', undefined);
    this.#opts.log?.(`${this.#redacted}: live${publisher.url === this.#redacted ? '' : ` (redirected to ${publisher.url})`}`);
    this.#sendStart(publisher, !this.#wasLive);
    this.#wasLive = true;
    this.#attempt = 0;
  }

  #sendStart(publisher: RtmpPublisher, replayGop: boolean): void {
    const start = this.#opts.streamStart();
    for (const header of start.headers) this.#write(publisher, header, 0);
    // The first connection replays the current GOP so nothing from the session start is lost;
    // a reconnect starts at the next keyframe instead of bursting stale frames.
    if (replayGop) for (const tag of start.gop) this.push(tag);
  }

  /** A server asked the connection to move: it did, between two frames, or it stayed where it was. */
  #moved(move: RtmpMove): void {
    if (this.#stopping) return;
    if (move.error !== undefined) {
      this.#opts.log?.(`${this.#redacted}: the server asked to reconnect to ${move.to || 'an unusable URL'}; staying (${this.#describe(move.error)})`);
      return;
    }
    this.#moves++;
    // The new connection counts its bytes from 0.
    this.#clearMarks();
    const why = move.description === '' ? '' : ` (${this.#describe(move.description)})`;
    this.#opts.log?.(
      `${this.#redacted}: moved from ${move.from} to ${move.to} at the server's request${why}; ${move.heldTags ?? 0} tags held for ${move.switchMs ?? 0} ms`,
    );
    this.#opts.onChange();
  }

  #lost(publisher: RtmpPublisher, err: unknown): void {
    if (this.#publisher !== publisher) return;
    this.#publisher = undefined;
    publisher.destroy();
    if (this.#stopping) return;
    this.#opts.log?.(`${this.#redacted}: lost (${this.#describe(err)})`);
    this.#scheduleRetry(err);
  }

  #scheduleRetry(err: unknown): void {
    const delay = backoffMs(this.#attempt, this.#retry);
    this.#attempt++;
    this.#retryAt = performance.now() + delay;
    this.#setState('retrying', this.#describe(err));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#dial();
    }, delay);
  }

  /** An error message safe to show and log: the stream key never appears in it, and it is never long. */
  #describe(err: unknown): string {
    let text = err instanceof Error ? err.message : String(err);
    if (this.#key.length >= 3) text = text.split(this.#key).join('***');
    const code = errorCode(err);
    return capReason(code === undefined ? text : `${text} [${code}]`);
  }

  /** Retries at once when waiting for the next attempt (the server is known to be back). */
  retryNow(): void {
    if (this.#stopping || this.#state !== 'retrying' || this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#dial();
  }

  #setState(state: DestinationState, reason: string | undefined): void {
    this.#state = state;
    this.#reason = reason;
    this.#opts.onChange();
  }

  /** Unpublishes cleanly (bounded wait) and stops retrying. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    clearTimeout(this.#timer);
    const publisher = this.#publisher;
    // Aborting ends a live session too; a live one is ended politely below instead.
    if (publisher === undefined) this.#abort.abort();
    this.#publisher = undefined;
    if (publisher !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          publisher.end(),
          new Promise((resolve) => {
            timer = setTimeout(resolve, END_TIMEOUT_MS);
          }),
        ]);
      } catch {
        // Ending is best effort; the socket is destroyed below either way.
      } finally {
        clearTimeout(timer);
        publisher.destroy();
      }
    }
    if (this.#state !== 'failed') this.#setState('stopped', undefined);
  }

  destroy(): void {
    this.#stopping = true;
    clearTimeout(this.#timer);
    this.#abort.abort();
    this.#publisher?.destroy();
    this.#publisher = undefined;
  }
}

import { backoffMs, capReason, flvTag, OnairError, type Backoff, type FlvTag } from '@onair/shared';
import { redactKey } from '../rtmp/url.js';
import type { WatchState, WatchStatusMessage } from '@onair/shared';
import { GopCache, type GopCacheLimits } from '../media/gop-cache.js';
import { TagKind, tagKind } from '@onair/shared';
import { ViewerGate, type ViewerLimits } from './viewer-gate.js';

/** An upstream play session: tags until the publisher ends, then the iterator finishes. */
export interface TagSource extends AsyncIterable<FlvTag> {
  /** Closes the session; a pending iteration ends (throwing `err` when given). */
  destroy(err?: Error): void;
}

export type ConnectSource = (url: string) => Promise<TagSource>;

/** One viewer's connection (WebSocket or HTTP-FLV), as the relay sees it. */
export interface ViewerSink {
  readonly kind: 'ws' | 'flv';
  /** Bytes queued in the connection, not yet sent. */
  bufferedBytes(): number;
  /** One tag in FLV file form, shared by every viewer: do not modify. */
  sendTag(bytes: Uint8Array): void;
  sendStatus(status: WatchStatusMessage): void;
  /** Ends the connection (the relay closed); `reason` never contains a stream key. */
  close(reason: string): void;
}

export interface StreamRelayOptions {
  /** How long the upstream stays open after the last viewer left. */
  lingerMs: number;
  /** Retry schedule after the upstream ended or failed; restarts once media flowed. */
  retry: Backoff;
  /** Media silence after which viewers are told `waiting` while the session stays open. */
  silenceMs: number;
  /**
   * Media silence after which the upstream session is closed and opened again (absent: never):
   * a connection that went half-open, or a server that stopped sending, never ends by itself.
   */
  reopenMs?: number;
  gop: Partial<GopCacheLimits>;
  viewer: ViewerLimits;
}

export interface StreamStats {
  source: string;
  state: WatchState;
  upstreamConnected: boolean;
  /** Upstream play sessions opened so far. */
  upstreamSessions: number;
  viewers: { ws: number; flv: number };
  /** Held open without viewers (an embedded-server stream being published), its GOP cache filling. */
  warm: boolean;
  /** The longest send queue among the viewers right now, in bytes. */
  maxViewerBufferedBytes: number;
  bytesIn: number;
  tagsIn: number;
  bytesOut: number;
  droppedTags: number;
  skips: number;
}

interface Attached {
  sink: ViewerSink;
  gate: ViewerGate;
  /** The newest header of each kind that met a full queue: it goes out before the next keyframe. */
  pending: Map<TagKind, RelayedTag>;
}

/** A relayed tag with its FLV file form, encoded once and shared by every viewer and joiner. */
interface RelayedTag extends FlvTag {
  kind: TagKind;
  bytes: Uint8Array;
}

// The gap left between the last tag of one upstream session and the first of the next, so the
// shifted timeline never repeats a timestamp.
const SESSION_GAP_MS = 40;
// A media timestamp this far behind the last one means the publisher restarted within a session.
const BACKWARD_JUMP_MS = 1000;

/**
 * One upstream RTMP play session shared by every viewer of the same source URL: a GOP cache for
 * joiners, a gate per viewer, retries while anyone watches, and a single timeline across upstream
 * sessions. Closed by its owner after the last viewer has gone for `lingerMs`.
 */
export class StreamRelay {
  readonly url: string;
  readonly source: string;
  readonly #connect: ConnectSource;
  readonly #opts: StreamRelayOptions;
  readonly #onIdle: () => void;
  readonly #cache: GopCache<RelayedTag>;
  readonly #viewers = new Set<Attached>();
  #holds = 0;
  #state: WatchState = 'connecting';
  #reason: string | undefined;
  #retryInMs: number | undefined;
  #upstream: TagSource | undefined;
  #running = false;
  #closed = false;
  #linger: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | undefined;
  #silence: ReturnType<typeof setTimeout> | undefined;
  #reopen: ReturnType<typeof setTimeout> | undefined;
  #hasVideo = false;
  // Output timestamp = upstream timestamp + offset; recomputed at the first media tag of a session.
  #offset: number | undefined;
  #lastOut: number | undefined;
  #stats = { upstreamSessions: 0, bytesIn: 0, tagsIn: 0, bytesOut: 0, droppedTags: 0, skips: 0 };

  constructor(url: string, source: string, connect: ConnectSource, opts: StreamRelayOptions, onIdle: () => void) {
    this.url = url;
    this.source = source;
    this.#connect = connect;
    this.#opts = opts;
    this.#onIdle = onIdle;
    this.#cache = new GopCache(opts.gop);
  }

  get closed(): boolean {
    return this.#closed;
  }

  get viewerCount(): number {
    return this.#viewers.size;
  }

  add(sink: ViewerSink): void {
    if (this.#closed) throw new OnairError('WATCH_CLOSED', 'the stream relay is closed');
    this.#cancelLinger();
    const viewer: Attached = { sink, gate: new ViewerGate(this.#opts.viewer), pending: new Map() };
    this.#viewers.add(viewer);
    this.#broadcastStatus();
    const { headers, gop } = this.#cache.snapshot();
    for (const tag of [...headers, ...gop]) this.#deliver(viewer, tag, true);
    if (!this.#running) this.#start();
  }

  remove(sink: ViewerSink): void {
    for (const v of this.#viewers) if (v.sink === sink) this.#viewers.delete(v);
    if (this.#closed) return;
    this.#broadcastStatus();
    this.#lingerIfUnwanted();
  }

  /**
   * Keeps the upstream open with nobody watching, so the GOP cache is full when the first viewer
   * arrives. Returns the release; the relay then lingers and closes like after its last viewer.
   */
  hold(): () => void {
    if (this.#closed) throw new OnairError('WATCH_CLOSED', 'the stream relay is closed');
    this.#holds++;
    this.#cancelLinger();
    if (!this.#running) this.#start();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holds--;
      if (!this.#closed) this.#lingerIfUnwanted();
    };
  }

  /** Ends the wait before the next upstream attempt, if the relay is waiting to retry. */
  retryNow(): void {
    this.#wake?.();
  }

  get #wanted(): boolean {
    return this.#viewers.size > 0 || this.#holds > 0;
  }

  #cancelLinger(): void {
    if (this.#linger !== undefined) clearTimeout(this.#linger);
    this.#linger = undefined;
  }

  #lingerIfUnwanted(): void {
    if (this.#wanted || this.#linger !== undefined) return;
    this.#linger = setTimeout(() => {
      this.#linger = undefined;
      if (!this.#wanted) this.#onIdle();
    }, this.#opts.lingerMs);
    this.#linger.unref?.();
  }

  stats(): StreamStats {
    let ws = 0;
    let flv = 0;
    let maxViewerBufferedBytes = 0;
    for (const v of this.#viewers) {
      maxViewerBufferedBytes = Math.max(maxViewerBufferedBytes, v.sink.bufferedBytes());
      if (v.sink.kind === 'ws') ws++;
      else flv++;
    }
    return {
      source: this.source,
      state: this.#state,
      upstreamConnected: this.#upstream !== undefined,
      viewers: { ws, flv },
      warm: this.#holds > 0,
      maxViewerBufferedBytes,
      ...this.#stats,
    };
  }

  /** Closes the upstream and every viewer. */
  close(reason = 'the stream relay closed'): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#linger !== undefined) clearTimeout(this.#linger);
    clearTimeout(this.#silence);
    clearTimeout(this.#reopen);
    this.#upstream?.destroy();
    this.#upstream = undefined;
    this.#wake?.();
    for (const v of this.#viewers) v.sink.close(reason);
    this.#viewers.clear();
  }

  /** Runs the upstream loop; a fault that escaped it ends this relay, never the process. */
  #start(): void {
    this.#run().catch((err: unknown) => {
      this.#running = false;
      this.close(`the stream relay failed: ${err instanceof Error ? err.message : String(err)}`);
    });
  }

  async #run(): Promise<void> {
    this.#running = true;
    let attempt = 0;
    while (!this.#closed && this.#wanted) {
      this.#setState('connecting');
      let reason = 'the publisher ended the stream';
      let gotMedia = false;
      try {
        const upstream = await this.#connect(this.url);
        if (this.#closed) {
          upstream.destroy();
          break;
        }
        this.#upstream = upstream;
        this.#stats.upstreamSessions++;
        this.#startSession();
        for await (const tag of upstream) {
          if (this.#closed) break;
          if (!this.#onTag(tag)) continue;
          if (!gotMedia) {
            gotMedia = true;
            attempt = 0;
          }
          this.#mediaArrived();
        }
      } catch (err) {
        reason = redactKey(err instanceof Error ? err.message : String(err), this.url);
        if (err instanceof OnairError && err.code === 'DESTINATION_REFUSED') {
          this.#setState('failed', reason);
          this.close(reason);
          break;
        }
      } finally {
        clearTimeout(this.#silence);
        clearTimeout(this.#reopen);
        this.#upstream?.destroy();
        this.#upstream = undefined;
      }
      if (this.#closed || !this.#wanted) break;
      const delay = backoffMs(attempt, this.#opts.retry);
      attempt++;
      this.#setState('waiting', reason, delay);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
    this.#running = false;
  }

  // Some servers (node-media-server) keep a player's session open when the publisher leaves and
  // resume it when one returns: silence says `waiting` there, where nginx-rtmp ends the session.
  #mediaArrived(): void {
    clearTimeout(this.#silence);
    if (this.#state !== 'live') this.#setState('live');
    const ms = this.#opts.silenceMs;
    this.#silence = setTimeout(() => this.#setState('waiting', `no media from the source for ${ms / 1000} s`), ms);
    this.#silence.unref?.();
    this.#armReopen();
  }

  #armReopen(): void {
    clearTimeout(this.#reopen);
    const ms = this.#opts.reopenMs;
    if (ms === undefined) return;
    const upstream = this.#upstream;
    this.#reopen = setTimeout(() => upstream?.destroy(new OnairError('WATCH_FAILED', `no media from the source for ${ms / 1000} s: reopening`)), ms);
    this.#reopen.unref?.();
  }

  #startSession(): void {
    this.#cache.clear();
    this.#hasVideo = false;
    this.#offset = undefined;
    this.#armReopen();
  }

  /** Returns true for a media (audio/video frame) tag. */
  #onTag(upstreamTag: FlvTag): boolean {
    const kind = tagKind(upstreamTag);
    this.#stats.tagsIn++;
    this.#stats.bytesIn += upstreamTag.data.length;
    const media = kind === TagKind.Keyframe || kind === TagKind.Frame || kind === TagKind.Audio;
    let timestamp: number;
    if (media) {
      if (this.#offset !== undefined && this.#lastOut !== undefined && upstreamTag.timestamp + this.#offset < this.#lastOut - BACKWARD_JUMP_MS) {
        this.#offset = undefined;
      }
      if (this.#offset === undefined) {
        this.#offset = this.#lastOut === undefined ? 0 : this.#lastOut + SESSION_GAP_MS - upstreamTag.timestamp;
      }
      timestamp = Math.max(0, upstreamTag.timestamp + this.#offset);
      this.#lastOut = Math.max(this.#lastOut ?? 0, timestamp);
    } else {
      timestamp = this.#lastOut ?? 0;
    }
    if (kind === TagKind.VideoConfig) this.#hasVideo = true;
    const out = { type: upstreamTag.type, timestamp, data: upstreamTag.data };
    const tag: RelayedTag = { ...out, kind, bytes: flvTag(out) };
    this.#cache.push(tag, kind);
    for (const v of this.#viewers) this.#deliver(v, tag, false);
    return media;
  }

  #deliver(v: Attached, tag: RelayedTag, joining: boolean): void {
    // The cached GOP goes out in one burst on join; only live tags are subject to the limit.
    const buffered = joining ? 0 : v.sink.bufferedBytes();
    const header = tag.kind === TagKind.Metadata || tag.kind === TagKind.VideoConfig || tag.kind === TagKind.AudioConfig;
    // Headers count against the same budget as media: a source that sends nothing but script
    // tags must not grow a slow viewer's queue either.
    if (header && buffered > 2 * this.#opts.viewer.maxBufferedBytes) {
      v.pending.set(tag.kind, tag);
      this.#stats.droppedTags++;
      return;
    }
    const skipsBefore = v.gate.skips;
    if (!v.gate.admit(tag.kind, buffered, this.#hasVideo)) {
      this.#stats.droppedTags++;
      if (v.gate.skips !== skipsBefore) this.#stats.skips++;
      return;
    }
    const startsOver = tag.kind === TagKind.Keyframe || (!this.#hasVideo && tag.kind === TagKind.Audio);
    if (startsOver && v.pending.size > 0) {
      for (const h of v.pending.values()) this.#send(v, h);
      v.pending.clear();
    }
    this.#send(v, tag);
  }

  #send(v: Attached, tag: RelayedTag): void {
    v.sink.sendTag(tag.bytes);
    this.#stats.bytesOut += tag.bytes.length;
  }

  #setState(state: WatchState, reason?: string, retryInMs?: number): void {
    this.#state = state;
    this.#reason = reason === undefined ? undefined : capReason(reason);
    this.#retryInMs = retryInMs;
    this.#broadcastStatus();
  }

  #broadcastStatus(): void {
    const status: WatchStatusMessage = { type: 'status', state: this.#state, viewers: this.#viewers.size };
    if (this.#reason !== undefined) status.reason = this.#reason;
    if (this.#retryInMs !== undefined) status.retryInMs = this.#retryInMs;
    for (const v of this.#viewers) v.sink.sendStatus(status);
  }
}

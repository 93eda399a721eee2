import { OnairError, backoffMs, type Backoff, type DestinationState, type DestinationStatus, type FlvTag } from '@onair/shared';
import { RtmpPublisher } from '../rtmp/publisher.js';
import type { RtmpAddressOptions } from '../rtmp/session.js';
import { redactUrl } from '../rtmp/url.js';
import { TagRole } from './tags.js';

/** What every new connection needs before media: metadata and the two sequence headers. */
export interface StreamStart {
  metadata: FlvTag | undefined;
  audioConfig: FlvTag | undefined;
  videoConfig: FlvTag | undefined;
  /** Tags since the last video keyframe (keyframe first), replayed on the first connection. */
  gop: readonly { tag: FlvTag; role: TagRole }[];
}

/** OBS's schedule: 2 s, then ×1.5 up to 30 s, plus up to 20 %. */
export const DEFAULT_RETRY: Backoff = { baseMs: 2000, factor: 1.5, maxMs: 30_000, jitter: 0.2 };

/** Where destinations may point (ServerPolicy): checked by URL first, then on the address dialled. */
export interface DestinationPolicy {
  isAllowed(url: string): Promise<void> | void;
  connectOptions(): RtmpAddressOptions;
}

export interface DestinationRelayOptions {
  id: string;
  url: string;
  policy: DestinationPolicy;
  streamStart: () => StreamStart;
  onChange: () => void;
  /** RTMP send queue above which video is dropped until the next keyframe. */
  maxBufferedBytes?: number;
  retry?: Backoff;
  log?: (line: string) => void;
}

export const DEFAULT_MAX_BUFFERED_BYTES = 3 * 1024 * 1024;
const END_TIMEOUT_MS = 3000;

/** Error codes after which retrying cannot help. */
const PERMANENT = new Set(['DESTINATION_REFUSED', 'RTMP_BAD_URL']);

function errorCode(err: unknown): string | undefined {
  return err instanceof OnairError ? err.code : undefined;
}

/**
 * One destination of a studio session: owns its RtmpPublisher, reconnects with backoff, rebases
 * timestamps to 0 on every connection and drops video to the next keyframe when the connection
 * falls behind. Never throws into the session; it reports through `status()` and `onChange`.
 */
export class DestinationRelay {
  readonly id: string;
  readonly #url: string;
  readonly #redacted: string;
  readonly #key: string;
  readonly #opts: DestinationRelayOptions;
  readonly #maxBuffered: number;
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
  /** Source timestamp that maps to 0 on the current connection. */
  #base: number | undefined;
  #waitKeyframe = true;
  #lastOut = [-1, -1];
  #wasLive = false;

  constructor(opts: DestinationRelayOptions) {
    this.id = opts.id;
    this.#url = opts.url;
    this.#redacted = redactUrl(opts.url);
    this.#key = opts.url.slice(opts.url.lastIndexOf('/') + 1);
    this.#opts = opts;
    this.#maxBuffered = opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.#retry = opts.retry ?? DEFAULT_RETRY;
    void this.#connect();
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
    if (this.#state === 'retrying') s.retryInMs = Math.max(0, Math.round(this.#retryAt - performance.now()));
    return s;
  }

  /** Forwards one tag from the page (source timestamps). */
  push(tag: FlvTag, role: TagRole): void {
    const publisher = this.#publisher;
    if (this.#state !== 'live' || publisher === undefined) return;
    const buffered = publisher.bufferedBytes;
    switch (role) {
      case TagRole.Metadata:
      case TagRole.AudioConfig:
      case TagRole.VideoConfig:
        // A mid-stream change (encoder reconfigured) applies from here on.
        this.#write(publisher, tag, role, this.#base === undefined ? 0 : Math.max(0, tag.timestamp - this.#base));
        return;
      case TagRole.VideoKey:
        if (buffered > this.#maxBuffered) {
          this.#waitKeyframe = true;
          this.#dropped++;
          return;
        }
        this.#waitKeyframe = false;
        this.#base ??= tag.timestamp;
        break;
      case TagRole.Video:
        if (this.#waitKeyframe || buffered > this.#maxBuffered) {
          this.#waitKeyframe = true;
          this.#dropped++;
          return;
        }
        break;
      case TagRole.Audio:
        // Audio waits for the first keyframe so both tracks start together; beyond twice the
        // limit even audio goes, so memory stays bounded whatever the network does.
        if (this.#base === undefined || tag.timestamp < this.#base || buffered > 2 * this.#maxBuffered) {
          if (this.#base !== undefined) this.#dropped++;
          return;
        }
        break;
      default:
        return;
    }
    this.#write(publisher, tag, role, tag.timestamp - (this.#base ?? tag.timestamp));
  }

  #write(publisher: RtmpPublisher, tag: FlvTag, role: TagRole, timestamp: number): void {
    const track = role === TagRole.Audio || role === TagRole.AudioConfig ? 0 : 1;
    // Per-track monotonic timestamps whatever the page sent: servers drop or reorder otherwise.
    const ts = role === TagRole.Metadata ? timestamp : Math.max(timestamp, this.#lastOut[track] ?? 0);
    if (role !== TagRole.Metadata) this.#lastOut[track] = ts;
    const out: FlvTag = { type: tag.type, timestamp: ts, data: tag.data };
    try {
      publisher.write(out);
      this.#bytes += tag.data.length;
    } catch (err) {
      this.#lost(publisher, err);
    }
  }

  async #connect(): Promise<void> {
    this.#setState('connecting', undefined);
    let publisher: RtmpPublisher;
    try {
      await this.#opts.policy.isAllowed(this.#url);
      publisher = await RtmpPublisher.connect(this.#url, { ...this.#opts.policy.connectOptions(), signal: this.#abort.signal });
    } catch (err) {
      if (this.#stopping) return;
      if (PERMANENT.has(errorCode(err) ?? '')) {
        this.#setState('failed', this.#describe(err));
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
    this.#setState('live', undefined);
    this.#opts.log?.(`${this.#redacted}: live`);
    this.#sendStart(publisher, !this.#wasLive);
    this.#wasLive = true;
    this.#attempt = 0;
  }

  #sendStart(publisher: RtmpPublisher, replayGop: boolean): void {
    const start = this.#opts.streamStart();
    if (start.metadata !== undefined) this.#write(publisher, start.metadata, TagRole.Metadata, 0);
    if (start.audioConfig !== undefined) this.#write(publisher, start.audioConfig, TagRole.AudioConfig, 0);
    if (start.videoConfig !== undefined) this.#write(publisher, start.videoConfig, TagRole.VideoConfig, 0);
    // The first connection replays the current GOP so nothing from the session start is lost;
    // a reconnect starts at the next keyframe instead of bursting stale frames.
    if (replayGop) for (const { tag, role } of start.gop) this.push(tag, role);
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
      void this.#connect();
    }, delay);
  }

  /** An error message safe to show and log: the stream key never appears in it. */
  #describe(err: unknown): string {
    let text = err instanceof Error ? err.message : String(err);
    if (this.#key.length >= 3) text = text.split(this.#key).join('***');
    const code = errorCode(err);
    return code === undefined ? text : `${text} [${code}]`;
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

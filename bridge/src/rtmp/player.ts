import { OnairError } from '@onair/shared';
import type { RtmpClientEvent } from './client-core.js';
import type { FlvTag } from '@onair/shared';
import { DEFAULT_CONNECT_TIMEOUT_MS, RtmpConnection, type RtmpClientOptions } from './session.js';

export interface RtmpPlayerOptions extends RtmpClientOptions {
  /** Tags held for a slow consumer before the socket is paused (TCP then slows the server). */
  maxQueuedTags?: number;
  /** Bytes of tag data held before the socket is paused, whichever limit comes first. */
  maxQueuedBytes?: number;
  /**
   * End the stream when no tag arrived for this long once tags have flowed (off by default).
   * node-media-server tells players nothing when its publisher leaves.
   */
  idleEndMs?: number;
}

export interface RtmpPlayerStats {
  bytesReceived: number;
  tagsReceived: number;
  queuedTags: number;
  queuedBytes: number;
}

/**
 * Plays a live RTMP or RTMPS stream. Iterate it (once) with `for await` to get FLV tags as they
 * arrive; the iteration ends when the publisher stops (UnpublishNotify, StreamEOF, Play.Stop)
 * and throws if the session fails. Leaving the loop early destroys the player.
 */
export class RtmpPlayer implements AsyncIterable<FlvTag> {
  readonly #conn: RtmpConnection;
  readonly #highWater: number;
  readonly #highWaterBytes: number;
  #queuedBytes = 0;
  readonly #queue: FlvTag[] = [];
  #head = 0;
  #paused = false;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  #iterating = false;
  #tagsReceived = 0;
  #lastTagAt = 0;
  #idleTimer: NodeJS.Timeout | undefined;

  private constructor(url: string, opts: RtmpPlayerOptions) {
    this.#highWater = Math.max(1, opts.maxQueuedTags ?? 1024);
    this.#highWaterBytes = Math.max(1, opts.maxQueuedBytes ?? 8 * 1024 * 1024);
    this.#conn = new RtmpConnection('play', url, opts, (e) => this.#event(e));
    this.#conn.closed.then(
      () => this.#finish(undefined),
      (err: Error) => this.#finish(err),
    );
    const idle = opts.idleEndMs;
    if (idle !== undefined && idle > 0) {
      this.#idleTimer = setInterval(() => {
        // A paused socket is our consumer's doing, not the server going quiet.
        if (this.#lastTagAt > 0 && !this.#paused && Date.now() - this.#lastTagAt >= idle) this.#event({ type: 'ended', reason: 'idle' });
      }, Math.max(10, Math.min(1000, idle / 4)));
      this.#idleTimer.unref();
    }
  }

  /** Connects and resolves once the server answered NetStream.Play.Start. */
  static async connect(url: string, opts: RtmpPlayerOptions = {}): Promise<RtmpPlayer> {
    const player = new RtmpPlayer(url, opts);
    try {
      await player.#conn.started(opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    } catch (err) {
      player.#conn.destroy();
      throw err;
    }
    return player;
  }

  get url(): string {
    return this.#conn.url.redacted;
  }

  get stats(): RtmpPlayerStats {
    return {
      bytesReceived: this.#conn.core.stats.bytesReceived,
      tagsReceived: this.#tagsReceived,
      queuedTags: this.#queue.length - this.#head,
      queuedBytes: this.#queuedBytes,
    };
  }

  get closed(): Promise<void> {
    return this.#conn.closed;
  }

  destroy(err?: Error): void {
    this.#conn.destroy(err);
  }

  #event(e: RtmpClientEvent): void {
    if (e.type === 'tag') {
      this.#tagsReceived++;
      this.#lastTagAt = Date.now();
      this.#queue.push(e.tag);
      this.#queuedBytes += e.tag.data.length;
      if (!this.#paused && (this.#queue.length - this.#head >= this.#highWater || this.#queuedBytes >= this.#highWaterBytes)) {
        this.#paused = true;
        this.#conn.socket.pause();
      }
      this.#wake?.();
    } else if (e.type === 'ended') {
      if (this.#ended) return;
      this.#ended = true;
      clearInterval(this.#idleTimer);
      this.#wake?.();
      // The publisher is gone: say goodbye (deleteStream) and close.
      this.#conn.end().catch(() => undefined);
    }
  }

  #finish(err: Error | undefined): void {
    clearInterval(this.#idleTimer);
    this.#ended = true;
    this.#error = err;
    this.#wake?.();
  }

  async #next(): Promise<IteratorResult<FlvTag>> {
    for (;;) {
      if (this.#head < this.#queue.length) {
        const tag = this.#queue[this.#head]!;
        this.#queue[this.#head++] = undefined as unknown as FlvTag;
        if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
          this.#queue.splice(0, this.#head);
          this.#head = 0;
        }
        this.#queuedBytes -= tag.data.length;
        if (this.#paused && this.#queue.length - this.#head <= this.#highWater >> 1 && this.#queuedBytes <= this.#highWaterBytes / 2) {
          this.#paused = false;
          this.#conn.socket.resume();
        }
        return { value: tag, done: false };
      }
      if (this.#error) throw this.#error;
      if (this.#ended) return { value: undefined, done: true };
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<FlvTag> {
    if (this.#iterating) throw new OnairError('RTMP_PLAYER_ITERATED', 'an RtmpPlayer can be iterated only once');
    this.#iterating = true;
    return {
      next: () => this.#next(),
      return: async () => {
        this.destroy();
        return { value: undefined, done: true };
      },
    };
  }
}

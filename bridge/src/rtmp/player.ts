import { OnairError } from '@onair/shared';
import type { RtmpClientEvent } from './client-core.js';
import type { FlvTag } from '@onair/shared';
import { DEFAULT_CONNECT_TIMEOUT_MS, RtmpConnection, type RtmpClientOptions, type RtmpReadOptions } from './session.js';

/**
 * `readBatchMs` for players whose consumer does not need each message the moment it arrives (a
 * file, a restream input): a live stream then costs one socket read per this many ms instead of
 * one per message or so. Measured in docs/bench/rtmp.md, *Reading a live stream*.
 */
export const READ_BATCH_MS = 100;

export interface RtmpPlayerOptions extends RtmpClientOptions, RtmpReadOptions {
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

interface Waiter {
  take: () => unknown;
  resolve: (result: IteratorResult<unknown>) => void;
  reject: (err: Error) => void;
}

/**
 * Plays a live RTMP or RTMPS stream. Iterate it (once) with `for await` to get FLV tags as they
 * arrive, or `batches()` for all the tags that have arrived at a time; the iteration ends when
 * the publisher stops (UnpublishNotify, StreamEOF, Play.Stop) and throws if the session fails.
 * Leaving the loop early destroys the player.
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
  /** The consumer's next() waiting for a tag or the end. */
  #waiter: Waiter | undefined;
  /** A microtask to settle #waiter is queued. */
  #waking = false;
  #iterating = false;
  #tagsReceived = 0;
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
      // The check counts tags instead of stamping each with the time: quiet since the first
      // check that saw no new tag, so the end comes up to one interval later than `idle`.
      let seen = 0;
      let quietSince = 0;
      this.#idleTimer = setInterval(() => {
        const now = Date.now();
        // A paused socket is our consumer's doing, not the server going quiet.
        if (this.#tagsReceived !== seen || this.#paused) {
          seen = this.#tagsReceived;
          quietSince = now;
        } else if (seen > 0 && now - quietSince >= idle) {
          this.#event({ type: 'ended', reason: 'idle' });
        }
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
      this.#queue.push(e.tag);
      this.#queuedBytes += e.tag.data.length;
      if (!this.#paused && (this.#queue.length - this.#head >= this.#highWater || this.#queuedBytes >= this.#highWaterBytes)) {
        this.#paused = true;
        this.#conn.pauseReading();
      }
      this.#wake();
    } else if (e.type === 'ended') {
      if (this.#ended) return;
      this.#ended = true;
      clearInterval(this.#idleTimer);
      this.#wake();
      // The publisher is gone: say goodbye (deleteStream) and close.
      this.#conn.end().catch(() => undefined);
    }
  }

  #finish(err: Error | undefined): void {
    clearInterval(this.#idleTimer);
    this.#ended = true;
    this.#error = err;
    this.#wake();
  }

  /**
   * Settles a waiting next() in a microtask rather than at once: microtasks run once the
   * socket read being parsed is done, so the consumer finds every tag that read brought.
   */
  #wake(): void {
    if (this.#waiter === undefined || this.#waking) return;
    this.#waking = true;
    queueMicrotask(this.#settle);
  }

  readonly #settle = (): void => {
    this.#waking = false;
    const waiter = this.#waiter;
    if (waiter === undefined) return;
    try {
      const result = this.#poll(waiter.take);
      if (result === undefined) return;
      this.#waiter = undefined;
      waiter.resolve(result);
    } catch (err) {
      this.#waiter = undefined;
      waiter.reject(err as Error);
    }
  };

  /** What next() returns now, or undefined to wait. Throws the session's error once the queue is empty. */
  #poll<T>(take: () => T): IteratorResult<T> | undefined {
    if (this.#head < this.#queue.length) return { value: take(), done: false };
    if (this.#error) throw this.#error;
    if (this.#ended) return { value: undefined, done: true };
    return undefined;
  }

  /** next() of an iterator that takes with `take`: settled at once when it can be, else by #settle. */
  #pull<T>(take: () => T): Promise<IteratorResult<T>> {
    try {
      const result = this.#poll(take);
      if (result !== undefined) return Promise.resolve(result);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return new Promise<IteratorResult<T>>((resolve, reject) => {
      this.#waiter = { take, resolve: resolve as Waiter['resolve'], reject };
    });
  }

  /** Resumes a paused socket once the consumer has taken the queue down to half its limits. */
  #taken(): void {
    if (this.#paused && this.#queue.length - this.#head <= this.#highWater >> 1 && this.#queuedBytes <= this.#highWaterBytes / 2) {
      this.#paused = false;
      this.#conn.resumeReading();
    }
  }

  readonly #takeOne = (): FlvTag => {
    const tag = this.#queue[this.#head]!;
    this.#queue[this.#head++] = undefined as unknown as FlvTag;
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
    this.#queuedBytes -= tag.data.length;
    this.#taken();
    return tag;
  };

  readonly #takeAll = (): FlvTag[] => {
    const batch = this.#head === 0 ? this.#queue.splice(0) : this.#queue.splice(0).slice(this.#head);
    this.#head = 0;
    this.#queuedBytes = 0;
    this.#taken();
    return batch;
  };

  #iterate<T>(take: () => T): AsyncIterator<T> {
    if (this.#iterating) throw new OnairError('RTMP_PLAYER_ITERATED', 'an RtmpPlayer can be iterated only once');
    this.#iterating = true;
    return {
      next: () => this.#pull(take),
      return: async () => {
        this.destroy();
        return { value: undefined, done: true };
      },
    };
  }

  [Symbol.asyncIterator](): AsyncIterator<FlvTag> {
    return this.#iterate(this.#takeOne);
  }

  /**
   * The tags a batch at a time: each batch is every tag queued when the consumer asks (what
   * the socket reads since the last batch brought), in order, never empty. One await per
   * batch instead of per tag, and a consumer that writes can write a batch at once. Iterate
   * either this or the player itself, once.
   */
  batches(): AsyncIterable<FlvTag[]> {
    return { [Symbol.asyncIterator]: () => this.#iterate(this.#takeAll) };
  }
}

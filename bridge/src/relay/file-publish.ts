import { open, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { FlvReader, OnairError, type FlvTag } from '@onair/shared';
import { RtmpPublisher } from '../rtmp/publisher.js';
import type { RtmpClientOptions } from '../rtmp/session.js';
import { redactUrl } from '../rtmp/url.js';
import { Pacer } from './pacer.js';

export type PublishEvent =
  | { kind: 'live'; url: string }
  /** A server sent the destination elsewhere: a redirect at connect, or a reconnect request (`error`: it stayed). */
  | { kind: 'moved'; url: string; to: string; error?: unknown }
  | { kind: 'failed'; url: string; error: unknown };

export interface DestinationResult {
  /** The destination URL with its stream key redacted. */
  url: string;
  tags: number;
  bytes: number;
  /** Set when the destination failed; the others carried on. */
  error?: unknown;
}

export interface PublishFileOptions {
  /** Send as fast as the servers accept instead of in real time. */
  fast: boolean;
  onEvent?: (event: PublishEvent) => void;
  /** Session options for every destination (timeouts, limits); the relay supplies `signal`. */
  session?: Omit<RtmpClientOptions, 'signal'>;
}

/** Queued bytes above which the relay waits for a destination to drain before reading on. */
const HIGH_WATER_BYTES = 4 * 1024 * 1024;

/** One destination of a relay: owns its publisher and what it has been sent. */
class Destination {
  readonly result: DestinationResult;
  #publisher: RtmpPublisher | undefined;
  #onEvent: ((event: PublishEvent) => void) | undefined;

  constructor(rawUrl: string, onEvent: ((event: PublishEvent) => void) | undefined) {
    this.result = { url: redactUrl(rawUrl), tags: 0, bytes: 0 };
    this.#onEvent = onEvent;
  }

  get alive(): boolean {
    return this.#publisher !== undefined && this.result.error === undefined;
  }

  async connect(rawUrl: string, options: RtmpClientOptions): Promise<void> {
    try {
      this.#publisher = await RtmpPublisher.connect(rawUrl, {
        ...options,
        onMove: (m) => this.#onEvent?.({ kind: 'moved', url: this.result.url, to: m.to, ...(m.error ? { error: m.error } : {}) }),
      });
      // A session that dies while idle (server drop) is noticed at once, not at the next write.
      this.#publisher.closed.catch((err: unknown) => this.fail(err));
      if (this.#publisher.url !== this.result.url) this.#onEvent?.({ kind: 'moved', url: this.result.url, to: this.#publisher.url });
      this.#onEvent?.({ kind: 'live', url: this.result.url });
    } catch (err) {
      this.fail(err);
    }
  }

  fail(error: unknown): void {
    if (this.result.error !== undefined) return;
    this.result.error = error;
    this.#publisher?.destroy(error instanceof Error ? error : undefined);
    this.#onEvent?.({ kind: 'failed', url: this.result.url, error });
  }

  /**
   * Sends one tag (its bytes are copied before this returns). Returns true when the destination
   * is backed up and the relay should wait on drained() before sending more.
   */
  send(tag: FlvTag): boolean {
    const publisher = this.#publisher;
    if (publisher === undefined || this.result.error !== undefined) return false;
    try {
      publisher.write(tag);
      this.result.tags++;
      this.result.bytes += tag.data.length;
      return publisher.bufferedBytes > HIGH_WATER_BYTES;
    } catch (err) {
      this.fail(err);
      return false;
    }
  }

  /** Resolves once the destination can take more (or failed). */
  async drained(): Promise<void> {
    try {
      await this.#publisher?.drained();
    } catch (err) {
      this.fail(err);
    }
  }

  async end(): Promise<void> {
    if (!this.alive) return;
    try {
      await this.#publisher?.end();
    } catch (err) {
      this.fail(err);
    }
  }

  destroy(): void {
    this.#publisher?.destroy();
  }
}

async function checkFile(path: string): Promise<void> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new OnairError('INPUT_NOT_FILE', `${path} is not a file`);
  } catch (err) {
    if (err instanceof OnairError) throw err;
    throw new OnairError('INPUT_UNREADABLE', `cannot read ${path}: ${(err as Error).message}`);
  }
}

/** The path that names standard input: an FLV stream piped in (`ffmpeg … -f flv - | onair publish - URL`). */
export const STDIN = '-';

/**
 * Relays an FLV file (or standard input, for STDIN) to every URL at once, tags unchanged. Every
 * destination is connected before the first tag goes out, so all of them get the whole input;
 * one failing never stops the others. Standard input is relayed as it comes (its producer sets
 * the pace), a file in real time unless `fast`. Resolves with one result per destination, in the
 * order given.
 */
export async function publishFile(path: string, urls: readonly string[], options: PublishFileOptions): Promise<DestinationResult[]> {
  const stdin = path === STDIN;
  if (!stdin) await checkFile(path);
  const destinations = urls.map((url) => new Destination(url, options.onEvent));

  // Ctrl-C while connecting abandons the connects; while relaying it stops reading and still
  // unpublishes cleanly, so servers close their recordings. A second Ctrl-C kills as usual.
  const connecting = new AbortController();
  const interrupted = new AbortController();
  let connected = false;
  const onSignal = (): void => {
    // The connect signal stays attached to live sessions: aborting it then would skip the unpublish.
    if (!connected) connecting.abort();
    interrupted.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const interruption = (): OnairError => new OnairError('INTERRUPTED', 'interrupted before the whole file was sent');
  try {
    await Promise.all(destinations.map((d, i) => d.connect(urls[i]!, { ...options.session, signal: connecting.signal })));
    connected = true;
    if (destinations.some((d) => d.alive) && !interrupted.signal.aborted) {
      await relay(stdin ? stdinChunks() : fileChunks(path), destinations, options.fast || stdin, interrupted.signal);
    }
    // Ctrl-C while unpublishing after the whole file went out changes nothing.
    const cut = interrupted.signal.aborted;
    await Promise.all(destinations.map((d) => d.end()));
    if (cut) for (const d of destinations) d.fail(interruption());
  } catch (err) {
    // The input failed (unreadable or not FLV): no destination can get everything.
    for (const d of destinations) d.fail(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const d of destinations) d.destroy();
  }
  return destinations.map((d) => d.result);
}

/** Bytes read from the file at a time, into one buffer reused for every read. */
const READ_BYTES = 256 * 1024;

/**
 * The file's bytes, read into one buffer reused for every read. That is safe because every tag is
 * done with before the next read: the reader returns views of it but copies what it keeps across
 * reads, and RtmpPublisher.write copies.
 */
async function* fileChunks(path: string): AsyncGenerator<Uint8Array> {
  const input = await open(path, 'r');
  const buffer = new Uint8Array(READ_BYTES);
  try {
    for (;;) {
      const { bytesRead } = await input.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await input.close();
  }
}

/** Standard input as it arrives; waiting on a slow destination pauses the pipe. */
async function* stdinChunks(): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of process.stdin) yield chunk as Buffer;
  } catch (err) {
    throw new OnairError('INPUT_UNREADABLE', `cannot read standard input: ${(err as Error).message}`);
  }
}

async function relay(chunks: AsyncIterable<Uint8Array>, destinations: Destination[], fast: boolean, signal: AbortSignal): Promise<void> {
  const reader = new FlvReader();
  const pacer = new Pacer();
  const backedUp: Destination[] = [];
  for await (const chunk of chunks) {
    for (const tag of reader.push(chunk)) {
      if (signal.aborted) return;
      if (!fast) {
        const wait = pacer.delay(tag.timestamp, performance.now());
        if (wait > 0) await sleep(wait, undefined, { signal }).catch(() => undefined);
        if (signal.aborted) return;
      }
      // Synchronous unless a destination is over its high-water mark.
      let live = false;
      for (const d of destinations) {
        if (!d.alive) continue;
        live = true;
        if (d.send(tag)) backedUp.push(d);
      }
      if (!live) return;
      if (backedUp.length > 0) {
        await Promise.all(backedUp.map((d) => d.drained()));
        backedUp.length = 0;
      }
    }
  }
  reader.end(); // an input cut mid-tag is an error, not a silent short relay
}

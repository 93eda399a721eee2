import { once } from 'node:events';
import { OnairError } from '@onair/shared';
import type { FlvTag } from '@onair/shared';
import { DEFAULT_CONNECT_TIMEOUT_MS, RtmpConnection, type RtmpClientOptions } from './session.js';

export interface RtmpPublisherStats {
  bytesSent: number;
  messagesSent: number;
  bytesReceived: number;
  messagesReceived: number;
  acksSent: number;
  /** Acknowledgement messages from the server (node-media-server 4 sends none). */
  acksReceived: number;
  /** Bytes the server's acknowledgements account for. */
  bytesAcknowledged: number;
}

/** Publishes FLV tags to an RTMP or RTMPS URL (`rtmp[s]://host[:port]/app/streamKey`). */
export class RtmpPublisher {
  readonly #conn: RtmpConnection;

  private constructor(conn: RtmpConnection) {
    this.#conn = conn;
  }

  /** Connects and resolves once the server answered NetStream.Publish.Start. */
  static async connect(url: string, opts: RtmpClientOptions = {}): Promise<RtmpPublisher> {
    const conn = new RtmpConnection('publish', url, opts, () => undefined);
    try {
      await conn.started(opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    } catch (err) {
      conn.destroy();
      throw err;
    }
    return new RtmpPublisher(conn);
  }

  /** The URL with the stream key replaced by `***`. */
  get url(): string {
    return this.#conn.url.redacted;
  }

  get stats(): Readonly<RtmpPublisherStats> {
    return { ...this.#conn.core.stats, bytesAcknowledged: this.#conn.acks?.acknowledged ?? 0 };
  }

  /** Rejects with the error that ended the session; resolves on a clean end. */
  get closed(): Promise<void> {
    return this.#conn.closed;
  }

  /**
   * Queues one tag (audio 8, video 9, script 18; timestamps in ms from 0 on this connection).
   * An `onMetaData` script tag is sent wrapped in `@setDataFrame`, as servers expect.
   * The tag's bytes are copied before this returns, so the caller may reuse its buffer; they
   * reach the socket at the end of the current tick, together with the rest of the tick's tags.
   * Throws the error that ended the session, or RTMP_CLOSED after end()/destroy().
   */
  write(tag: FlvTag): void {
    if (this.#conn.core.phase !== 'live' || this.#conn.socket.destroyed) {
      throw this.#conn.error ?? new OnairError('RTMP_CLOSED', `${this.url}: write after the session ended`);
    }
    this.#conn.core.sendTag(tag);
  }

  /** Bytes written that the network has not taken yet (see RtmpConnection.queuedBytes). */
  get bufferedBytes(): number {
    return this.#conn.queuedBytes;
  }

  /**
   * Resolves when the socket's buffer has drained, or when the session ended: `closed` reports
   * why, which is RTMP_SEND_STALLED when the server took no bytes for `sendStallTimeoutMs`, or
   * RTMP_ACK_STALLED when it stopped acknowledging them.
   */
  async drained(): Promise<void> {
    const socket = this.#conn.socket;
    this.#conn.flush();
    if (!socket.writableNeedDrain || socket.destroyed) return;
    this.#conn.watchStall();
    await Promise.race([once(socket, 'drain').catch(() => undefined), this.#conn.closed.catch(() => undefined)]);
  }

  /** Flushes what was written, sends FCUnpublish and deleteStream, and resolves when the socket closed. */
  end(): Promise<void> {
    return this.#conn.end();
  }

  destroy(err?: Error): void {
    this.#conn.destroy(err);
  }
}

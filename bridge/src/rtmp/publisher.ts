import { once } from 'node:events';
import { OnairError, TagKind, tagKind } from '@onair/shared';
import type { FlvTag } from '@onair/shared';
import { RtmpRedirectError, type RtmpClientEvent } from './client-core.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, RtmpConnection, type RtmpClientOptions } from './session.js';
import { redactUrl, resolveServerUrl } from './url.js';

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
  /** Bytes between the server's acknowledgements: the window we announced, or the larger one it uses. */
  ackSpacing: number;
}

/** A move to another connection that a server asked for, done or given up. */
export interface RtmpMove {
  /** Redacted URLs: where the publish was, and where it was asked to go. */
  from: string;
  to: string;
  /** The server's description of why, if it gave one. */
  description: string;
  /** Set when the move failed before the old connection was left: the publish stays where it was. */
  error?: OnairError;
  /** A move made: ms from the keyframe to the new connection's NetStream.Publish.Start, and the tags held meanwhile (headers included). */
  switchMs?: number;
  heldTags?: number;
}

export interface RtmpPublishOptions extends RtmpClientOptions {
  /**
   * Redirects followed at connect (`NetConnection.Connect.Rejected` with `ex.code` 302 and
   * `ex.redirect`): 3 unless set; 0 follows none (the rejection is RTMP_CONNECT_REJECTED).
   */
  maxRedirects?: number;
  /**
   * Judges every URL a server sends the publish to (a redirect at connect, a reconnect request)
   * before it is dialled, as the caller judged the URL it gave; throwing refuses the move.
   * `checkAddress` still judges each address dialled.
   */
  checkUrl?: (url: string) => Promise<void> | void;
  /** A server asked the publish to move (Enhanced RTMP reconnect request), and it did or could not. */
  onMove?: (move: RtmpMove) => void;
}

export const DEFAULT_MAX_REDIRECTS = 3;
/**
 * Tags held for the new connection while the old one unpublishes and the new one publishes:
 * past this the publish fails rather than hold more (the caller's backpressure, which counts
 * them in bufferedBytes, normally stops well before).
 */
const MAX_MOVE_BYTES = 32 * 1024 * 1024;

/** The headers a new connection needs before media, in the order servers want them. */
const HEADER_KINDS = [TagKind.Metadata, TagKind.VideoConfig, TagKind.AudioConfig] as const;

type Move = {
  from: string;
  to: string;
  description: string;
  next: RtmpConnection | undefined;
  /** preparing: connecting to `to`, tags still go to the old connection; ready: the next keyframe switches; switching: tags wait in `held`. */
  state: 'preparing' | 'ready' | 'switching';
  held: FlvTag[];
  heldBytes: number;
  /** Settles when the move is over, done or not. */
  done: Promise<void>;
  finish: () => void;
};

function copy(tag: FlvTag): FlvTag {
  return { type: tag.type, timestamp: tag.timestamp, data: tag.data.slice() };
}

/**
 * Publishes FLV tags to an RTMP or RTMPS URL (`rtmp[s]://host[:port]/app/streamKey`).
 *
 * Follows a 302 redirect at connect, and moves to another connection when the server asks
 * (Enhanced RTMP v2 `NetConnection.Connect.ReconnectRequest`): tags keep going to the old
 * connection while the new one connects and creates its stream; at the next video keyframe the
 * old one unpublishes and closes, the new one publishes, and from its NetStream.Publish.Start it
 * gets the metadata and sequence headers, then every tag from that keyframe on. Breaking before
 * making is what servers that allow one publisher per name need; the tags written meanwhile wait,
 * counted in bufferedBytes. Timestamps continue: the new server sees the session's clock.
 */
export class RtmpPublisher {
  #conn!: RtmpConnection;
  readonly #opts: RtmpPublishOptions;
  readonly closed: Promise<void>;
  #resolveClosed!: () => void;
  #rejectClosed!: (err: Error) => void;
  #error: Error | undefined;
  #ending = false;
  #destroyed = false;
  /** The newest metadata and sequence headers written, for a connection that replaces this one. */
  readonly #headers = new Map<TagKind, FlvTag>();
  #move: Move | undefined;
  #moves = 0;

  private constructor(opts: RtmpPublishOptions) {
    this.#opts = opts;
    this.closed = new Promise<void>((resolve, reject) => {
      this.#resolveClosed = resolve;
      this.#rejectClosed = reject;
    });
    this.closed.catch(() => undefined);
  }

  /** Connects (following redirects) and resolves once the server answered NetStream.Publish.Start. */
  static async connect(url: string, opts: RtmpPublishOptions = {}): Promise<RtmpPublisher> {
    const publisher = new RtmpPublisher(opts);
    await publisher.#open(url);
    return publisher;
  }

  async #open(url: string): Promise<void> {
    const max = this.#opts.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
    const seen = new Set<string>();
    let target = url;
    for (let hop = 0; ; hop++) {
      seen.add(target);
      const conn: RtmpConnection = new RtmpConnection('publish', target, this.#opts, (e) => this.#event(conn, e));
      try {
        await conn.started(this.#opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
      } catch (err) {
        conn.destroy();
        if (!(err instanceof RtmpRedirectError) || max === 0) throw err;
        let next: string;
        try {
          next = resolveServerUrl(err.redirect, conn.url);
        } catch (bad) {
          throw new OnairError('RTMP_CONNECT_REJECTED', `${conn.url.redacted}: redirected to a URL we cannot use: ${(bad as Error).message}`);
        }
        const shown = `${conn.url.redacted}: redirected to ${redactUrl(next)}`;
        if (seen.has(next)) throw new OnairError('RTMP_CONNECT_REJECTED', `${shown}, where it had been already (a redirect loop)`);
        if (hop + 1 > max) throw new OnairError('RTMP_CONNECT_REJECTED', `${shown}: more than ${max} redirects, not followed`);
        await this.#check(next, shown);
        target = next;
        continue;
      }
      this.#watch(conn);
      return;
    }
  }

  /** checkUrl on a URL a server sent us to; a refusal says where from. */
  async #check(url: string, context: string): Promise<void> {
    try {
      await this.#opts.checkUrl?.(url);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      const code = err instanceof OnairError ? err.code : 'DESTINATION_REFUSED';
      throw new OnairError(code, `${context}: ${why}`, { cause: err });
    }
  }

  /** Makes `conn` the current connection: its end is the publisher's end. */
  #watch(conn: RtmpConnection): void {
    this.#conn = conn;
    conn.closed.then(
      () => {
        if (this.#conn === conn) this.#settle(undefined);
      },
      (err: Error) => {
        if (this.#conn === conn) this.#settle(err);
      },
    );
  }

  #settle(err: Error | undefined): void {
    if (err !== undefined && this.#error === undefined) this.#error = err;
    const move = this.#move;
    if (move !== undefined) {
      if (move.next !== undefined && move.next !== this.#conn) move.next.destroy();
      this.#move = undefined;
      move.finish();
    }
    if (this.#error !== undefined) this.#rejectClosed(this.#error);
    else this.#resolveClosed();
  }

  #event(conn: RtmpConnection, e: RtmpClientEvent): void {
    if (e.type !== 'reconnect-request' || conn !== this.#conn || this.#move !== undefined || this.#ending || this.#destroyed) return;
    let to: string;
    try {
      // No tcUrl: the same server, on a new connection.
      to = resolveServerUrl(e.tcUrl === '' ? conn.url.tcUrl : e.tcUrl, conn.url);
    } catch (err) {
      this.#opts.onMove?.({ from: conn.url.redacted, to: '', description: e.description, error: err as OnairError });
      return;
    }
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const move: Move = { from: conn.url.redacted, to, description: e.description, next: undefined, state: 'preparing', held: [], heldBytes: 0, done, finish };
    this.#move = move;
    this.#prepare(move).catch((err: unknown) => this.#giveUp(move, err));
  }

  /** Opens the new connection up to its created stream; tags go on to the old one meanwhile. */
  async #prepare(move: Move): Promise<void> {
    await this.#check(move.to, `${move.from}: asked to reconnect to ${redactUrl(move.to)}`);
    if (this.#move !== move) return;
    const next: RtmpConnection = new RtmpConnection('publish', move.to, { ...this.#opts, deferPublish: true }, (e) => this.#event(next, e));
    move.next = next;
    await next.started(this.#opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, 'ready');
    if (this.#move !== move) {
      next.destroy();
      return;
    }
    move.state = 'ready';
  }

  /** The move failed while the old connection still carried the publish: it carries on there. */
  #giveUp(move: Move, err: unknown): void {
    move.finish();
    if (this.#move !== move) return;
    this.#move = undefined;
    move.next?.destroy();
    const error = err instanceof OnairError ? err : new OnairError('RTMP_ERROR', err instanceof Error ? err.message : String(err));
    this.#opts.onMove?.({ from: move.from, to: redactUrl(move.to), description: move.description, error });
  }

  /** At a keyframe: the old connection unpublishes and closes, then the new one publishes. */
  async #switch(move: Move, first: FlvTag): Promise<void> {
    const old = this.#conn;
    const next = move.next!;
    const t0 = performance.now();
    move.state = 'switching';
    const firstKind = tagKind(first);
    for (const kind of HEADER_KINDS) {
      const header = this.#headers.get(kind);
      // An audio header that is itself the first tag goes once.
      if (header !== undefined && kind !== firstKind) this.#hold(move, header);
    }
    this.#hold(move, copy(first));
    this.#watch(next);
    // The old server must have let go of the name before the new publish reaches it, where it
    // is the same server or shares its names: its close after our FIN says it read everything.
    try {
      await old.end();
    } catch {
      // Whatever went wrong there, the stream goes on from the keyframe on the new connection.
    }
    old.destroy();
    if (this.#conn !== next || next.socket.destroyed) return;
    next.core.publish();
    await next.started(this.#opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    if (this.#conn !== next || this.#move !== move) return;
    for (const tag of move.held) next.core.sendTag(tag);
    this.#move = undefined;
    move.finish();
    this.#moves++;
    const switchMs = Math.round(performance.now() - t0);
    this.#opts.onMove?.({ from: move.from, to: next.url.redacted, description: move.description, switchMs, heldTags: move.held.length });
  }

  #hold(move: Move, tag: FlvTag): void {
    move.held.push(tag);
    move.heldBytes += tag.data.length;
    if (move.heldBytes > MAX_MOVE_BYTES) {
      this.destroy(new OnairError('RTMP_SEND_STALLED', `${move.from}: more than ${MAX_MOVE_BYTES} bytes written while moving to ${redactUrl(move.to)}`));
    }
  }

  /** The URL with the stream key replaced by `***`: where the publish is now, after redirects and moves. */
  get url(): string {
    return this.#conn.url.redacted;
  }

  /** Times the publish moved to another connection at a server's request. */
  get moves(): number {
    return this.#moves;
  }

  /** Stats of the current connection. */
  get stats(): Readonly<RtmpPublisherStats> {
    const acks = this.#conn.acks;
    return { ...this.#conn.core.stats, bytesAcknowledged: acks?.acknowledged ?? 0, ackSpacing: acks?.spacing ?? 0 };
  }

  /**
   * Queues one tag (audio 8, video 9, script 18; timestamps in ms from 0 on this connection).
   * An `onMetaData` script tag is sent wrapped in `@setDataFrame`, as servers expect.
   * The tag's bytes are copied before this returns, so the caller may reuse its buffer; they
   * reach the socket at the end of the current tick, together with the rest of the tick's tags.
   * Throws the error that ended the session, or RTMP_CLOSED after end()/destroy().
   */
  write(tag: FlvTag): void {
    const move = this.#move;
    if (move?.state === 'switching' && this.#error === undefined && !this.#ending && !this.#destroyed) {
      this.#remember(tag);
      this.#hold(move, copy(tag));
      if (this.#error !== undefined) throw this.#error;
      return;
    }
    const conn = this.#conn;
    if (conn.core.phase !== 'live' || conn.socket.destroyed || this.#destroyed) {
      throw this.#error ?? conn.error ?? new OnairError('RTMP_CLOSED', `${this.url}: write after the session ended`);
    }
    const kind = this.#remember(tag);
    if (move?.state === 'ready' && this.#boundary(kind)) {
      // A failure after the old connection was left ends the publish (closed says why).
      this.#switch(move, tag).catch((err: unknown) => this.destroy(err instanceof Error ? err : new Error(String(err))));
      return;
    }
    conn.core.sendTag(tag);
  }

  /** Where a new connection can start: a keyframe, or any audio in a stream without video. */
  #boundary(kind: TagKind): boolean {
    if (kind === TagKind.Keyframe) return true;
    return (kind === TagKind.Audio || kind === TagKind.AudioConfig) && !this.#headers.has(TagKind.VideoConfig);
  }

  #remember(tag: FlvTag): TagKind {
    const kind = tagKind(tag);
    if (kind === TagKind.Metadata || kind === TagKind.VideoConfig || kind === TagKind.AudioConfig) this.#headers.set(kind, copy(tag));
    return kind;
  }

  /** Bytes written that the network has not taken yet (see RtmpConnection.queuedBytes), with those held during a move. */
  get bufferedBytes(): number {
    const held = this.#move?.state === 'switching' ? this.#move.heldBytes : 0;
    return this.#conn.queuedBytes + held;
  }

  /**
   * Resolves when the socket's buffer has drained (after a move in progress), or when the
   * session ended: `closed` reports why, which is RTMP_SEND_STALLED when the server took no
   * bytes for `sendStallTimeoutMs`, or RTMP_ACK_STALLED when it stopped acknowledging them.
   */
  async drained(): Promise<void> {
    if (this.#move?.state === 'switching') await this.#move.done;
    const conn = this.#conn;
    const socket = conn.socket;
    conn.flush();
    if (!socket.writableNeedDrain || socket.destroyed) return;
    conn.watchStall();
    await Promise.race([once(socket, 'drain').catch(() => undefined), conn.closed.catch(() => undefined)]);
  }

  /** Flushes what was written, sends FCUnpublish and deleteStream, and resolves when the socket closed. */
  async end(): Promise<void> {
    const move = this.#move;
    if (move?.state === 'switching') await move.done;
    this.#ending = true;
    const pending = this.#move;
    if (pending !== undefined && pending.state !== 'switching') {
      this.#move = undefined;
      pending.next?.destroy();
      pending.finish();
    }
    await this.#conn.end();
    return this.closed;
  }

  destroy(err?: Error): void {
    this.#destroyed = true;
    if (err !== undefined && this.#error === undefined) this.#error = err;
    this.#move?.next?.destroy(err);
    this.#conn.destroy(err);
  }
}

import { lookup as dnsLookup } from 'node:dns';
import { isIP, connect as netConnect, type LookupFunction, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { OnairError, type ErrorCode } from '@onair/shared';
import { AckWindow } from './ack-window.js';
import { RtmpClientCore, RtmpRedirectError, type RtmpClientEvent, type RtmpLimits, type RtmpRole } from './client-core.js';
import { parseRtmpUrl, redactKey, type RtmpUrl } from './url.js';

export interface RtmpClientOptions {
  /** Time allowed from the TCP connect to NetStream.Publish.Start / Play.Start. */
  connectTimeoutMs?: number;
  limits?: Partial<RtmpLimits>;
  /** Aborting ends the session (while connecting: connect rejects with code ABORTED). */
  signal?: AbortSignal;
  /** Outgoing chunk size (4096 unless set). */
  chunkSize?: number;
  /**
   * Publish: the session fails with RTMP_SEND_STALLED when bytes are waiting to be sent and the
   * server took none of them for this long (20 s unless set), checked all the while a publish is
   * live. On loopback and fast links the kernel's buffers take megabytes before a stalled server
   * shows here; the acknowledgement watchdog below notices sooner where the server acknowledges.
   */
  sendStallTimeoutMs?: number;
  /**
   * Publish: Window Acknowledgement Size asked of the server after connect (128 KiB unless set):
   * a server that honours it acknowledges every that many bytes.
   */
  ackWindowSize?: number;
  /**
   * Publish: the session fails with RTMP_ACK_STALLED when a server whose acknowledgements have
   * been counting our bytes owes one (more than a window went out since its last) and none came
   * for this long (10 s unless set; 0 turns the check off). Servers that never acknowledge
   * (node-media-server 4) are left to `sendStallTimeoutMs`.
   */
  ackStallTimeoutMs?: number;
  /** Time allowed for resolving the host name (5 s unless set); then RTMP_DNS_TIMEOUT. */
  dnsTimeoutMs?: number;
  /**
   * How long end() waits, once everything is flushed, for the server to close (5 s unless set).
   * A publisher whose server never closes fails with RTMP_CLOSE_TIMEOUT: the bytes sat in a
   * kernel buffer, and nothing says the server read them.
   */
  closeTimeoutMs?: number;
  /**
   * Decides on every address the host resolves to, or on the IP literal, before anything is sent
   * to it; throwing refuses the destination with DESTINATION_REFUSED. It judges the address that
   * is actually dialled, so a DNS answer that changes after an earlier check (rebinding) cannot
   * slip past. SNI and the certificate check still use the host name.
   */
  checkAddress?: (address: string, family: 4 | 6) => void;
  /** Name resolution, `dns.lookup` unless set (`net.connect`'s `lookup`). */
  lookup?: LookupFunction;
}

/** What a connection adds for its player (see RtmpPlayerOptions). */
export interface RtmpReadOptions {
  /**
   * Once live, stop reading the socket for this long after a read, so that the next read takes
   * what arrived meanwhile in one go (0, the default: read as bytes arrive). The kernel holds
   * the bytes. A stream that brings more than one read buffer (64 KiB) in this time, which is
   * about what the kernel holds before the server has to wait, is read as it arrives until it
   * slows down again, so the rate a player can take is not capped.
   */
  readBatchMs?: number;
}

/** What a publisher's connection adds (see RtmpPublisher). */
export interface RtmpPublishConnectionOptions {
  /** Stop after createStream until core.publish() (see RtmpClientCoreOptions.deferPublish). */
  deferPublish?: boolean;
}

/** The options a destination policy hands to connect (see ServerPolicy.connectOptions). */
export type RtmpAddressOptions = Pick<RtmpClientOptions, 'checkAddress' | 'lookup'>;

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
export const DEFAULT_SEND_STALL_TIMEOUT_MS = 20_000;
export const DEFAULT_ACK_STALL_TIMEOUT_MS = 10_000;
export const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;
export const DEFAULT_DNS_TIMEOUT_MS = 5_000;
/** TCP keepalive probes start after this long without traffic (NAT and firewall timeouts). */
export const KEEPALIVE_DELAY_MS = 10_000;
/**
 * node-media-server 4 answers a publish of a name already being published (or with a key it
 * refuses) with NetStream.Publish.Start and closes at once. A close this soon after the start is
 * said to maybe be that; it cannot be told from a connection lost at that moment.
 */
const SOON_AFTER_START_MS = 1000;
/** Bytes of one tick's messages gathered into one socket write at most. */
const MAX_BATCH_BYTES = 64 * 1024;
/** Size of the connection's read buffer: the most one socket read hands over (libuv's own size). */
const READ_BUFFER_BYTES = 64 * 1024;

type ErrnoError = Error & { code?: string };

function tlsCode(code: string): ErrorCode | undefined {
  if (code.startsWith('ERR_TLS_')) return `TLS_${code.slice('ERR_TLS_'.length)}`;
  if (/CERT|SIGNATURE|ISSUER|CHAIN/.test(code) && !code.startsWith('ERR_')) return `TLS_${code}`;
  if (code.startsWith('ERR_SSL_') || code === 'EPROTO') return 'TLS_HANDSHAKE_FAILED';
  return undefined;
}

/**
 * One RTMP client connection: owns the socket, the connect timer and the sans-I/O core.
 * Publisher and player wrap it.
 */
export class RtmpConnection {
  readonly url: RtmpUrl;
  readonly core: RtmpClientCore;
  readonly socket: Socket;
  readonly closed: Promise<void>;
  #resolveClosed!: () => void;
  #rejectClosed!: (err: Error) => void;
  #done = false;
  #secure = false;
  #started = false;
  #startedAt = 0;
  #onStarted: ((err?: Error) => void) | undefined;
  /** What started() waits for: NetStream.Publish.Start / Play.Start, or a deferred publish's stream. */
  #awaiting: 'start' | 'ready' = 'start';
  #ready = false;
  readonly #onEvent: (e: RtmpClientEvent) => void;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.destroy(new OnairError('ABORTED', `${this.url.redacted}: aborted`));
  #closeTimer: NodeJS.Timeout | undefined;
  #watchTimer: NodeJS.Timeout | undefined;
  /** The watchdog runs for the whole of a live publish, not only while a caller waits. */
  #watchAlways = false;
  #lastQueued = 0;
  #lastAcks = 0;
  #lastProgress = 0;
  readonly stallTimeoutMs: number;
  readonly #ackStallTimeoutMs: number;
  /** Publish: the server's acknowledgements of what we sent. */
  readonly acks: AckWindow | undefined;
  readonly #closeTimeoutMs: number;
  #ending = false;
  #closeError: Error | undefined;
  #corked = false;
  #backlogAtCork = 0;
  #tickBytes = 0;
  readonly #uncork = (): void => this.flush();
  readonly #readBatchMs: number;
  /** Reading stopped by the read batching (#holdTimer restarts it). */
  #held = false;
  /** Since when, and how many bytes, the read batching last judged the stream's rate. */
  #batchFrom = 0;
  #batchBytes = 0;
  #holdTimer: NodeJS.Timeout | undefined;
  /** Reading stopped by the owner (a player's slow consumer) until resumeReading(). */
  #readingPaused = false;

  constructor(
    role: RtmpRole,
    rawUrl: string,
    opts: RtmpClientOptions & RtmpReadOptions & RtmpPublishConnectionOptions,
    onEvent: (e: RtmpClientEvent) => void,
  ) {
    this.url = parseRtmpUrl(rawUrl);
    const { host, port } = this.url;
    const check = opts.checkAddress;
    const literal = isIP(host);
    // net.connect consults `lookup` only for names; a literal is judged here.
    if (check !== undefined && literal !== 0) {
      const refusal = this.#refusal(check, host, literal === 6 ? 6 : 4);
      if (refusal) throw this.#redact(refusal);
    }
    this.#onEvent = onEvent;
    this.stallTimeoutMs = opts.sendStallTimeoutMs ?? DEFAULT_SEND_STALL_TIMEOUT_MS;
    this.#ackStallTimeoutMs = opts.ackStallTimeoutMs ?? DEFAULT_ACK_STALL_TIMEOUT_MS;
    this.#closeTimeoutMs = opts.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.#readBatchMs = Math.max(0, opts.readBatchMs ?? 0);
    this.closed = new Promise<void>((resolve, reject) => {
      this.#resolveClosed = resolve;
      this.#rejectClosed = reject;
    });
    // Owners observe `closed` when they care; a session dying unobserved must not crash Node.
    this.closed.catch(() => undefined);
    this.core = new RtmpClientCore(
      {
        role,
        url: this.url,
        ...(opts.limits ? { limits: opts.limits } : {}),
        ...(opts.chunkSize ? { chunkSize: opts.chunkSize } : {}),
        ...(role === 'publish' && opts.ackWindowSize ? { windowAckSize: opts.ackWindowSize } : {}),
        ...(role === 'publish' && opts.deferPublish ? { deferPublish: true } : {}),
      },
      {
        send: (bytes) => {
          // After the server's FIN our side is ended too; a write then would only raise
          // "write after end" instead of the close reason the 'end' handler reports.
          if (this.#done || !this.socket.writable) return;
          // What is sent in one tick leaves in one writev (per MAX_BATCH_BYTES) instead of one
          // write(2) per message, and never later than the end of the tick.
          if (!this.#corked) {
            this.#corked = true;
            this.#backlogAtCork = this.socket.writableLength;
            this.socket.cork();
            process.nextTick(this.#uncork);
          }
          this.#tickBytes += bytes.length;
          this.socket.write(bytes);
          // A caller writing in a loop that never yields must still see a slow server back up.
          if (this.#tickBytes >= MAX_BATCH_BYTES) this.flush();
        },
        event: (e) => this.#event(e),
      },
    );
    this.acks = role === 'publish' ? new AckWindow(this.core.ackWindow) : undefined;
    const resolve = this.#timedLookup(opts.lookup ?? (dnsLookup as LookupFunction), opts.dnsTimeoutMs ?? DEFAULT_DNS_TIMEOUT_MS);
    const lookup = check === undefined ? resolve : this.#checkedLookup(resolve, check);
    // Every read lands in one buffer of this connection and goes straight to the core, which
    // copies what it keeps: no Buffer allocated per read, no trip through the Readable stream.
    const onread = { buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES), callback: (n: number, buf: Buffer) => this.#receive(buf, n) };
    const target = { host, port, lookup, onread };
    if (this.url.protocol === 'rtmps') {
      // Certificate checks stay on: a private CA comes in through NODE_EXTRA_CA_CERTS.
      this.socket = tlsConnect({ ...target, ...(literal ? {} : { servername: host }) }, () => {
        this.#secure = true;
        this.core.start();
      });
    } else {
      this.socket = netConnect(target, () => this.core.start());
    }
    this.socket.setNoDelay(true);
    // A peer that vanished without a FIN (power loss, a NAT that forgot us) is found even on a
    // quiet socket, such as a player waiting for a publisher.
    this.socket.setKeepAlive(true, KEEPALIVE_DELAY_MS);
    this.socket.on('error', (err: ErrnoError) => this.destroy(this.#socketError(err)));
    // The server's FIN settles the session at once: writes between it and 'close' must not
    // turn a clean end, or the close reason, into a write error.
    this.socket.on('end', () => this.#settle(this.#closeReason()));
    this.socket.on('close', () => this.#settle(this.#closeReason()));
    this.#signal = opts.signal;
    if (this.#signal) {
      if (this.#signal.aborted) queueMicrotask(this.#onAbort);
      else this.#signal.addEventListener('abort', this.#onAbort, { once: true });
    }
  }

  /**
   * Hands one socket read to the core; false stops reading (libuv's readStop) until the read
   * batching's timer restarts it. A player's own pause goes through pauseReading().
   */
  #receive(buf: Buffer, n: number): boolean {
    if (this.#done) return true;
    try {
      // A plain view: Buffer#subarray costs a Buffer construction per read.
      this.core.receive(new Uint8Array(buf.buffer, buf.byteOffset, n));
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
      return true;
    }
    // Most of a live read's cost is the wake-up around it (epoll, the scheduler, Node's path
    // to JavaScript), not its bytes: waiting lets one wake-up take several messages. Before
    // live, every round trip of the connect would pay the wait.
    if (this.#readBatchMs === 0 || !this.#started || this.#done) return true;
    this.#batchBytes += n;
    const now = performance.now();
    // The stream is judged once per period: reading freely, the reads within it go on.
    if (now - this.#batchFrom < this.#readBatchMs) return true;
    const fast = this.#batchBytes >= READ_BUFFER_BYTES;
    this.#batchFrom = now;
    this.#batchBytes = 0;
    if (fast) return true;
    this.#held = true;
    if (this.#holdTimer === undefined) this.#holdTimer = setTimeout(this.#release, this.#readBatchMs);
    else this.#holdTimer.refresh();
    return false;
  }

  readonly #release = (): void => {
    this.#held = false;
    if (!this.#readingPaused && !this.#done) this.socket.resume();
  };

  /** Stops reading the socket until resumeReading() (TCP then slows the server). */
  pauseReading(): void {
    this.#readingPaused = true;
    this.socket.pause();
  }

  resumeReading(): void {
    this.#readingPaused = false;
    if (!this.#held) this.socket.resume();
  }

  /** Name resolution that gives up with RTMP_DNS_TIMEOUT after `timeoutMs`; a late answer is dropped. */
  #timedLookup(lookup: LookupFunction, timeoutMs: number): LookupFunction {
    return (hostname, options, callback) => {
      let done = false;
      const timer = setTimeout(() => {
        done = true;
        callback(new OnairError('RTMP_DNS_TIMEOUT', `${hostname} did not resolve within ${timeoutMs} ms`), '', 4);
      }, timeoutMs);
      lookup(hostname, options, (err, address, family) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        callback(err, address, family);
      });
    };
  }

  /**
   * Wraps name resolution so every address it yields passes `check` before the socket dials any
   * of them (with autoSelectFamily Node asks for all addresses and tries them in turn).
   */
  #checkedLookup(lookup: LookupFunction, check: NonNullable<RtmpClientOptions['checkAddress']>): LookupFunction {
    return (hostname, options, callback) => {
      lookup(hostname, options, (err, address, family) => {
        if (err) return callback(err, address, family);
        const all = typeof address === 'string' ? [{ address, family: family ?? isIP(address) }] : address;
        for (const a of all) {
          const refusal = this.#refusal(check, a.address, a.family === 6 ? 6 : 4);
          if (refusal) return callback(refusal, address, family);
        }
        callback(null, address, family);
      });
    };
  }

  #refusal(check: NonNullable<RtmpClientOptions['checkAddress']>, address: string, family: 4 | 6): OnairError | undefined {
    try {
      check(address, family);
      return undefined;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      const via = address === this.url.host ? '' : ` (${this.url.host})`;
      return new OnairError('DESTINATION_REFUSED', `refused to connect to ${address}${via}: ${reason}`);
    }
  }

  /** Hands what this tick sent to the socket now; call before waiting on the socket's buffer. */
  flush(): void {
    if (!this.#corked) return;
    this.#corked = false;
    this.#tickBytes = 0;
    this.socket.uncork();
  }

  /**
   * Bytes waiting because the network has not taken them. This tick's bytes count only behind
   * such a backlog: otherwise they leave at the end of the tick, as they would have one write
   * at a time, and a burst within one tick must not look like a slow server.
   */
  get queuedBytes(): number {
    const queued = this.socket.writableLength;
    return this.#corked && this.#backlogAtCork === 0 ? queued - this.#tickBytes : queued;
  }

  /** Why the session ended, once it ended with an error. */
  get error(): Error | undefined {
    return this.#closeError;
  }

  /**
   * Resolves on NetStream.Publish.Start / Play.Start (or, with `until: 'ready'`, once a deferred
   * publish's stream exists); rejects with why the connection died or timed out.
   */
  started(timeoutMs = DEFAULT_CONNECT_TIMEOUT_MS, until: 'start' | 'ready' = 'start'): Promise<void> {
    if (this.#started || (until === 'ready' && this.#ready)) return Promise.resolve();
    this.#awaiting = until;
    if (this.#done) return Promise.reject(this.#closeError ?? new OnairError('RTMP_CLOSED', `${this.url.redacted}: closed`));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const what = until === 'ready' ? 'createStream answer' : this.core.role === 'publish' ? 'NetStream.Publish.Start' : 'NetStream.Play.Start';
        this.destroy(
          new OnairError(
            'RTMP_CONNECT_TIMEOUT',
            `${this.url.redacted}: no ${what} within ${timeoutMs} ms (stuck in ${this.core.phase === 'idle' ? 'TCP connect' : this.core.phase})`,
          ),
        );
      }, timeoutMs);
      this.#onStarted = (err) => {
        clearTimeout(timer);
        this.#onStarted = undefined;
        if (err) reject(err);
        else resolve();
      };
    });
  }

  #event(e: RtmpClientEvent): void {
    if (e.type === 'acknowledgement') {
      this.acks?.received(e.sequence, this.sentBytes);
      return;
    }
    if (e.type === 'ready') {
      this.#ready = true;
      if (this.#awaiting === 'ready') this.#onStarted?.();
      return;
    }
    if (e.type === 'started') {
      this.#started = true;
      this.#startedAt = performance.now();
      if (this.core.role === 'publish') {
        this.#watchAlways = true;
        this.watchStall();
      }
      this.#onStarted?.();
    }
    this.#onEvent(e);
  }

  /** Bytes the network has taken: handed to the socket and no longer waiting in its queue. */
  get sentBytes(): number {
    return this.core.stats.bytesSent - this.socket.writableLength;
  }

  /**
   * Sends the polite goodbye (FCUnpublish/deleteStream), flushes, half-closes and waits for the
   * close. Fails with RTMP_SEND_STALLED if the server stops taking the bytes still queued.
   */
  async end(): Promise<void> {
    if (this.#done || this.#ending) return this.closed;
    this.#ending = true;
    this.core.finish();
    this.flush();
    this.socket.end(() => {
      this.#stopWatch();
      if (this.#done) return;
      this.#closeTimer = setTimeout(() => {
        // nginx-rtmp and node-media-server close at once on our FIN. A player has all it
        // wanted by now; a publisher cannot tell whether its last bytes were read.
        const err =
          this.core.role === 'publish'
            ? new OnairError(
                'RTMP_CLOSE_TIMEOUT',
                `${this.url.redacted}: the server did not close the connection within ${this.#closeTimeoutMs} ms of the end of the stream; it may not have received all of it`,
              )
            : undefined;
        this.destroy(err);
      }, this.#closeTimeoutMs);
    });
    if (this.socket.writableLength > 0) this.watchStall();
    return this.closed;
  }

  /**
   * Starts the watchdog (a live publish runs it throughout; others while a caller waits for the
   * queue to drain). It fails the session with RTMP_SEND_STALLED when queued bytes stop leaving
   * for stallTimeoutMs, and with RTMP_ACK_STALLED when the server owes an acknowledgement for
   * ackStallTimeoutMs (see AckWindow).
   *
   * Progress is the socket's queue shrinking, or an acknowledgement: the kernel takes bytes
   * from a backed-up socket only when a good part of its buffer is free again, which on a slow
   * link can be seconds apart, while a server that acknowledges says it is reading every window.
   */
  watchStall(): void {
    if (this.#watchTimer !== undefined || this.#done) return;
    this.#lastQueued = this.socket.writableLength;
    this.#lastAcks = this.acks?.acks ?? 0;
    this.#lastProgress = Date.now();
    const ack = this.acks && this.#ackStallTimeoutMs > 0 ? this.#ackStallTimeoutMs : Infinity;
    this.#watchTimer = setInterval(() => this.#checkStall(), Math.max(10, Math.min(1000, this.stallTimeoutMs / 4, ack / 4)));
    // The socket keeps the process alive while the session matters; the watchdog need not.
    this.#watchTimer.unref();
  }

  #checkStall(): void {
    const now = Date.now();
    const queued = this.socket.writableLength;
    const acked = this.acks?.acks ?? 0;
    if (queued === 0 || queued < this.#lastQueued || acked !== this.#lastAcks) this.#lastProgress = now;
    this.#lastQueued = queued;
    this.#lastAcks = acked;
    if (queued > 0 && now - this.#lastProgress >= this.stallTimeoutMs) {
      this.destroy(
        new OnairError('RTMP_SEND_STALLED', `${this.url.redacted}: the server took none of the ${queued} queued bytes for ${this.stallTimeoutMs} ms`),
      );
      return;
    }
    const acks = this.acks;
    if (acks && this.#ackStallTimeoutMs > 0) {
      const overdue = acks.overdue(this.sentBytes, now);
      if (overdue >= this.#ackStallTimeoutMs) {
        this.destroy(
          new OnairError(
            'RTMP_ACK_STALLED',
            `${this.url.redacted}: the server stopped acknowledging what we send: none for ${overdue} ms, though more than its window of ${acks.spacing} bytes went out since the last one`,
          ),
        );
        return;
      }
    }
    if (queued === 0 && !this.#watchAlways) this.#stopWatch();
  }

  #stopWatch(): void {
    clearInterval(this.#watchTimer);
    this.#watchTimer = undefined;
  }

  destroy(err?: Error): void {
    if (this.#done) return;
    this.#settle(err);
    this.socket.destroy();
  }

  #settle(cause: Error | undefined): void {
    if (this.#done) return;
    const err = cause && this.#redact(cause);
    this.#done = true;
    clearTimeout(this.#closeTimer);
    clearTimeout(this.#holdTimer);
    this.#stopWatch();
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#closeError = err;
    if (err) {
      this.#onStarted?.(err);
      this.#rejectClosed(err);
    } else {
      this.#onStarted?.(new OnairError('RTMP_CLOSED', `${this.url.redacted}: closed before the stream started`));
      this.#resolveClosed();
    }
  }

  /** Every error names the (redacted) URL and never the key. */
  #redact(err: Error): Error {
    const base = redactKey(err.message, this.url);
    const message = base.startsWith(this.url.redacted) ? base : `${this.url.redacted}: ${base}`;
    if (message === err.message) return err;
    // A redirect keeps where it goes, for RtmpPublisher to follow.
    if (err instanceof RtmpRedirectError) return new RtmpRedirectError(message, err.redirect);
    const code = err instanceof OnairError ? err.code : 'RTMP_ERROR';
    // The original stays out of reach when it held the key.
    return new OnairError(code, message, base === err.message ? { cause: err } : undefined);
  }

  /** What the server closing the connection now means: undefined for an expected, complete close. */
  #closeReason(): OnairError | undefined {
    const unsent = this.socket.writableLength;
    const err = this.core.peerClosed();
    const afterStart = Math.round(performance.now() - this.#startedAt);
    if (err?.code === 'RTMP_CONNECTION_LOST' && this.core.role === 'publish' && afterStart < SOON_AFTER_START_MS) {
      return new OnairError(
        err.code,
        `server closed the connection ${afterStart} ms after NetStream.Publish.Start (node-media-server does so when the name is already being published or the key is refused)`,
      );
    }
    if (err || unsent === 0 || this.core.role !== 'publish' || this.#done) return err;
    // Closed while our end of the stream was still being flushed: the server missed the tail.
    return new OnairError('RTMP_CONNECTION_LOST', `server closed the connection with ${unsent} bytes still unsent`);
  }

  /** The error a socket error means, or undefined when it only ends an expected close. */
  #socketError(err: ErrnoError): OnairError | undefined {
    // A refusal from #checkedLookup, already worded.
    if (err instanceof OnairError) return err;
    const code = err.code ?? '';
    const phase = this.core.phase;
    const where = this.url.redacted;
    if (code === 'ECONNREFUSED') return new OnairError('RTMP_CONNECT_REFUSED', `${where}: connection refused (is the server running?)`);
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new OnairError('RTMP_CONNECT_FAILED', `${where}: cannot resolve ${this.url.host} (${code})`);
    if (this.url.protocol === 'rtmps' && !this.#secure) {
      const tls = tlsCode(code);
      if (tls) return new OnairError(tls, `${where}: TLS failed: ${err.message}`, { cause: err });
      if (code === 'ECONNRESET') return new OnairError('TLS_HANDSHAKE_FAILED', `${where}: connection reset during the TLS handshake`);
    }
    if (code === 'ECONNRESET' || code === 'EPIPE') {
      const closed = this.#closeReason();
      return closed && new OnairError(closed.code, `${where}: ${closed.message} (${code})`);
    }
    return new OnairError(
      phase === 'live' || phase === 'ending' ? 'RTMP_CONNECTION_LOST' : 'RTMP_CONNECT_FAILED',
      `${where}: ${err.message}`,
      { cause: err },
    );
  }
}

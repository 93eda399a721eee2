import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { OnairError } from '@onair/shared';
import { RtmpClientCore, type RtmpClientEvent, type RtmpLimits, type RtmpRole } from './client-core.js';
import { parseRtmpUrl, redactKey, type RtmpUrl } from './url.js';

export interface RtmpClientOptions {
  /** Time allowed from the TCP connect to NetStream.Publish.Start / Play.Start. */
  connectTimeoutMs?: number;
  limits?: Partial<RtmpLimits>;
  /** Aborting ends the session (while connecting: connect rejects with code ABORTED). */
  signal?: AbortSignal;
  /** Outgoing chunk size (4096 unless set). */
  chunkSize?: number;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** How long end() waits for the server to close after our FIN before destroying the socket. */
const CLOSE_TIMEOUT_MS = 5_000;

type ErrnoError = Error & { code?: string };

function tlsCode(code: string): string | undefined {
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
  #onStarted: ((err?: Error) => void) | undefined;
  readonly #onEvent: (e: RtmpClientEvent) => void;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.destroy(new OnairError('ABORTED', `${this.url.redacted}: aborted`));
  #closeTimer: NodeJS.Timeout | undefined;
  #ending = false;
  #closeError: Error | undefined;

  constructor(role: RtmpRole, rawUrl: string, opts: RtmpClientOptions, onEvent: (e: RtmpClientEvent) => void) {
    this.url = parseRtmpUrl(rawUrl);
    this.#onEvent = onEvent;
    this.closed = new Promise<void>((resolve, reject) => {
      this.#resolveClosed = resolve;
      this.#rejectClosed = reject;
    });
    // Owners observe `closed` when they care; a session dying unobserved must not crash Node.
    this.closed.catch(() => undefined);
    this.core = new RtmpClientCore(
      { role, url: this.url, ...(opts.limits ? { limits: opts.limits } : {}), ...(opts.chunkSize ? { chunkSize: opts.chunkSize } : {}) },
      {
        send: (bytes) => {
          if (!this.#done) this.socket.write(bytes);
        },
        event: (e) => this.#event(e),
      },
    );
    const { host, port } = this.url;
    if (this.url.protocol === 'rtmps') {
      // Certificate checks stay on: a private CA comes in through NODE_EXTRA_CA_CERTS.
      this.socket = tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }) }, () => {
        this.#secure = true;
        this.core.start();
      });
    } else {
      this.socket = netConnect({ host, port }, () => this.core.start());
    }
    this.socket.setNoDelay(true);
    this.socket.on('data', (data: Buffer) => {
      if (this.#done) return;
      try {
        this.core.receive(data);
      } catch (err) {
        this.destroy(err instanceof Error ? err : new Error(String(err)));
      }
    });
    this.socket.on('error', (err: ErrnoError) => this.destroy(this.#socketError(err)));
    this.socket.on('close', () => {
      const err = this.core.peerClosed();
      this.#settle(err);
    });
    this.#signal = opts.signal;
    if (this.#signal) {
      if (this.#signal.aborted) queueMicrotask(this.#onAbort);
      else this.#signal.addEventListener('abort', this.#onAbort, { once: true });
    }
  }

  /** Why the session ended, once it ended with an error. */
  get error(): Error | undefined {
    return this.#closeError;
  }

  /** Resolves on NetStream.Publish.Start / Play.Start; rejects with why the connection died or timed out. */
  started(timeoutMs = DEFAULT_CONNECT_TIMEOUT_MS): Promise<void> {
    if (this.#started) return Promise.resolve();
    if (this.#done) return Promise.reject(this.#closeError ?? new OnairError('RTMP_CLOSED', `${this.url.redacted}: closed`));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const what = this.core.role === 'publish' ? 'NetStream.Publish.Start' : 'NetStream.Play.Start';
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
    if (e.type === 'started') {
      this.#started = true;
      this.#onStarted?.();
    }
    this.#onEvent(e);
  }

  /** Sends the polite goodbye (FCUnpublish/deleteStream), half-closes and waits for the close. */
  async end(): Promise<void> {
    if (this.#done || this.#ending) return this.closed;
    this.#ending = true;
    this.core.finish();
    this.socket.end();
    this.#closeTimer = setTimeout(() => this.socket.destroy(), CLOSE_TIMEOUT_MS);
    return this.closed;
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
    const code = err instanceof OnairError ? err.code : 'RTMP_ERROR';
    // The original stays out of reach when it held the key.
    return new OnairError(code, message, base === err.message ? { cause: err } : undefined);
  }

  /** The error a socket error means, or undefined when it only ends an expected close. */
  #socketError(err: ErrnoError): OnairError | undefined {
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
      const closed = this.core.peerClosed();
      return closed && new OnairError(closed.code, `${where}: ${closed.message} (${code})`);
    }
    return new OnairError(
      phase === 'live' || phase === 'ending' ? 'RTMP_CONNECTION_LOST' : 'RTMP_CONNECT_FAILED',
      `${where}: ${err.message}`,
      { cause: err },
    );
  }
}

import { CloseCode, backoffMs, parseFlvTag, type Backoff, type FlvTag } from '@onair/shared';
import { parseWatchServerMessage, type WatchServerMessage } from '@onair/shared';

export interface TransportOptions {
  /** Reconnect schedule; restarts once media flows again. */
  retry: Backoff;
}

export const DEFAULT_TRANSPORT_OPTIONS: TransportOptions = { retry: { baseMs: 300, factor: 1.5, maxMs: 5000, jitter: 0.2 } };

export interface TransportHandlers {
  /** A new socket is open: the tags that follow may start anywhere on the stream's timeline. */
  onOpen(): void;
  onTag(tag: FlvTag, bytes: number): void;
  onMessage(msg: WatchServerMessage): void;
  /** The socket closed; `retryInMs` is undefined when the transport gave up. */
  onClose(reason: string, retryInMs: number | undefined): void;
}

/**
 * The watch WebSocket: binary frames are FLV tags, text frames JSON status. Reconnects with
 * backoff on its own until destroyed; a refused source (close 1008) is final. A bridge that is
 * shutting down says `reconnect`: a new socket to the same URL opens at once (a load balancer sends
 * it to another bridge) and the old one is let go, without waiting for its close.
 */
export class WatchTransport {
  readonly #url: string;
  readonly #handlers: TransportHandlers;
  readonly #opts: TransportOptions;
  #ws: WebSocket | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #attempt = 0;
  #destroyed = false;
  reconnects = 0;

  constructor(url: string, handlers: TransportHandlers, opts: Partial<TransportOptions> = {}) {
    this.#url = url;
    this.#handlers = handlers;
    this.#opts = { ...DEFAULT_TRANSPORT_OPTIONS, ...opts };
    this.#open();
  }

  destroy(): void {
    this.#destroyed = true;
    clearTimeout(this.#timer);
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws !== undefined) this.#letGo(ws);
  }

  #letGo(ws: WebSocket): void {
    ws.onclose = ws.onmessage = ws.onopen = ws.onerror = null;
    ws.close();
  }

  #open(): void {
    const ws = new WebSocket(this.#url);
    ws.binaryType = 'arraybuffer';
    this.#ws = ws;
    let gotData = false;
    ws.onopen = () => this.#handlers.onOpen();
    ws.onmessage = (e: MessageEvent<ArrayBuffer | string>) => {
      if (typeof e.data === 'string') {
        let msg: WatchServerMessage;
        try {
          msg = parseWatchServerMessage(e.data);
        } catch {
          return;
        }
        this.#handlers.onMessage(msg);
        if (msg.type === 'reconnect' && this.#ws === ws && !this.#destroyed) {
          this.#letGo(ws);
          this.#attempt = 0;
          this.reconnects++;
          this.#open();
        }
        return;
      }
      if (!gotData) {
        gotData = true;
        this.#attempt = 0;
      }
      const bytes = new Uint8Array(e.data);
      this.#handlers.onTag(parseFlvTag(bytes), bytes.length);
    };
    ws.onclose = (e: CloseEvent) => {
      if (this.#destroyed || this.#ws !== ws) return;
      this.#ws = undefined;
      const reason = e.reason !== '' ? e.reason : `connection closed (${e.code})`;
      if (e.code === CloseCode.PolicyViolation) {
        this.#handlers.onClose(reason, undefined);
        return;
      }
      const delay = backoffMs(this.#attempt, this.#opts.retry);
      this.#attempt++;
      this.#handlers.onClose(reason, delay);
      this.#timer = setTimeout(() => {
        this.reconnects++;
        this.#open();
      }, delay);
    };
  }
}

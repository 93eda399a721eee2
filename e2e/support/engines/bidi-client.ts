import WebSocket from 'ws';

// A WebDriver BiDi connection (https://w3c.github.io/webdriver-bidi/): JSON commands with an id,
// answered by a `success` or `error` message with the same id; events in between. Only what
// the page driver needs; no browser-specific extension.

/** Commands in flight at once; the driver sends one at a time, so more is a bug. */
const MAX_PENDING = 64;
const COMMAND_TIMEOUT_MS = 60_000;

interface Pending {
  method: string;
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

type Incoming =
  | { type: 'success'; id: number; result: unknown }
  | { type: 'error'; id: number | null; error: string; message: string }
  | { type: 'event'; method: string; params: unknown };

export class BidiConnection {
  readonly #ws: WebSocket;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Map<string, ((params: unknown) => void)[]>();
  #nextId = 1;
  #closed: Error | undefined;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data, binary) => {
      if (!binary) this.#receive(data.toString());
    });
    ws.on('close', (code, reason) => this.#fail(new Error(`WebDriver BiDi connection closed (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`)));
  }

  /** Opens the socket at `url` (`ws://host:port/session`). */
  static connect(url: string, timeoutMs = 10_000): Promise<BidiConnection> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { handshakeTimeout: timeoutMs, maxPayload: 64 * 1024 * 1024 });
      const connection = new BidiConnection(ws);
      ws.on('error', (err) => {
        connection.#fail(err);
        reject(new Error(`WebDriver BiDi at ${url}: ${err.message}`, { cause: err }));
      });
      ws.once('open', () => resolve(connection));
    });
  }

  /** Sends `method` and resolves with its result; rejects with the browser's error. */
  send<T>(method: string, params: object = {}, timeoutMs = COMMAND_TIMEOUT_MS): Promise<T> {
    if (this.#closed !== undefined) return Promise.reject(new Error(`${method}: ${this.#closed.message}`));
    if (this.#pending.size >= MAX_PENDING) return Promise.reject(new Error(`${method}: ${MAX_PENDING} WebDriver BiDi commands already in flight`));
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${method}: no answer from the browser within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { method, resolve: resolve as (result: unknown) => void, reject, timer });
      this.#ws.send(JSON.stringify({ id, method, params }), (err) => {
        if (err) this.#settle(id, err);
      });
    });
  }

  /** Calls `listener` with the params of every `method` event (after `session.subscribe`). */
  on(method: string, listener: (params: unknown) => void): void {
    this.#listeners.set(method, [...(this.#listeners.get(method) ?? []), listener]);
  }

  /** Closes the socket; commands still in flight are rejected. */
  close(): Promise<void> {
    if (this.#ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.#ws.once('close', () => resolve());
      this.#ws.close();
    });
  }

  #receive(text: string): void {
    let message: Incoming;
    try {
      message = JSON.parse(text) as Incoming;
    } catch {
      this.#fail(new Error(`WebDriver BiDi: the browser sent a message that is not JSON: ${text.slice(0, 200)}`));
      this.#ws.terminate();
      return;
    }
    if (message.type === 'event') {
      for (const listener of this.#listeners.get(message.method) ?? []) listener(message.params);
    } else if (message.type === 'success') {
      this.#settle(message.id, undefined, message.result);
    } else if (message.type === 'error' && message.id !== null) {
      this.#settle(message.id, new Error(`${this.#pending.get(message.id)?.method ?? 'command'}: ${message.error}: ${message.message}`));
    }
  }

  #settle(id: number, err: Error | undefined, result?: unknown): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    if (err === undefined) pending.resolve(result);
    else pending.reject(err);
  }

  #fail(err: Error): void {
    this.#closed ??= err;
    for (const id of [...this.#pending.keys()]) this.#settle(id, new Error(`${this.#pending.get(id)?.method}: ${err.message}`));
  }
}

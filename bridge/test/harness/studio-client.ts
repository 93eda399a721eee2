import WebSocket, { type ClientOptions } from 'ws';
import { STUDIO_SESSION_PARAM, flvTag, parseStudioServerMessage, type DestinationStatus, type FlvTag, type StudioServerMessage } from '@onair/shared';
import { waitFor } from './proc.js';

/**
 * A studio page stand-in speaking the studio WebSocket protocol from Node, driven by hand: the
 * tests use it to start, resume and stop sessions, and the benchmarks to push recorded FLV files
 * as many pages would. It keeps every binary frame it sent, numbered as the bridge numbers them,
 * so a test can resend from what the bridge acknowledged.
 */
export class StudioClient {
  readonly messages: StudioServerMessage[] = [];
  ws: WebSocket;
  closeCode: number | undefined;
  closeReason = '';
  /** Every frame sent in this session, frame n at index n − 1. */
  readonly sent: Uint8Array[] = [];
  session: { id: string; token: string } | undefined;
  readonly #url: string;
  readonly #origin: string;
  readonly #socket: ClientOptions;

  /** `tls` speaks wss (the bridge's --tls-cert); `socket` adds to every connection's options (a cookie, a CA). */
  constructor(port: number, opts: { host?: string; origin?: string; tls?: boolean; socket?: ClientOptions } = {}) {
    const host = opts.host ?? '127.0.0.1';
    const secure = opts.tls === true ? 's' : '';
    this.#url = `ws${secure}://${host}:${port}/studio-ws`;
    this.#origin = opts.origin ?? `http${secure}://${host}:${port}`;
    this.#socket = opts.socket ?? {};
    this.ws = this.#open();
  }

  #open(search = ''): WebSocket {
    const ws = new WebSocket(`${this.#url}${search}`, { ...this.#socket, origin: this.#origin });
    this.closeCode = undefined;
    ws.on('message', (data, binary) => {
      if (binary || ws !== this.ws) return;
      const msg = parseStudioServerMessage(data.toString());
      this.messages.push(msg);
      if (msg.type === 'session') this.session = { id: msg.id, token: msg.token };
    });
    ws.on('close', (code, reason) => {
      if (ws !== this.ws) return;
      this.closeCode = code;
      this.closeReason = reason.toString();
    });
    ws.on('error', () => undefined);
    return ws;
  }

  opened(): Promise<void> {
    const ws = this.ws;
    if (ws.readyState === ws.OPEN) return Promise.resolve();
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('close', (code) => reject(new Error(`studio socket closed before it opened (${code})`)));
    });
  }

  /** The newest message of `type`, after waiting for one. */
  async next<T extends StudioServerMessage['type']>(type: T, timeoutMs = 10_000, after = 0): Promise<Extract<StudioServerMessage, { type: T }>> {
    return waitFor(`studio message ${type}`, () => {
      for (let i = this.messages.length - 1; i >= after; i--) {
        const m = this.messages[i];
        if (m?.type === type) return m as Extract<StudioServerMessage, { type: T }>;
      }
      if (this.closeCode !== undefined) throw new Error(`studio socket closed (${this.closeCode} ${this.closeReason}) before a ${type} message`);
      return undefined;
    }, timeoutMs);
  }

  destination(id: string): DestinationStatus | undefined {
    for (let i = this.messages.length - 1; i >= 0; i--) {
      const m = this.messages[i];
      if (m?.type === 'status') return m.destinations.find((d) => d.id === id);
    }
    return undefined;
  }

  waitState(id: string, state: DestinationStatus['state'], timeoutMs = 15_000): Promise<DestinationStatus> {
    return waitFor(`${id} ${state}`, () => {
      const d = this.destination(id);
      return d?.state === state ? d : undefined;
    }, timeoutMs);
  }

  /** The last frame number the bridge acknowledged (0 before any). */
  get acked(): number {
    for (let i = this.messages.length - 1; i >= 0; i--) {
      const m = this.messages[i];
      if (m?.type === 'ack' || m?.type === 'resumed') return m.received;
    }
    return 0;
  }

  send(msg: object): void {
    this.ws.send(JSON.stringify(msg));
  }

  async start(destinations: { id: string; url: string }[]): Promise<{ id: string; token: string }> {
    await this.opened();
    this.send({ type: 'start', destinations });
    const s = await this.next('session');
    return { id: s.id, token: s.token };
  }

  /** Sends tags (each one frame), paced by their timestamps when `realtime`. */
  async sendTags(tags: readonly FlvTag[], realtime = false): Promise<void> {
    const t0 = performance.now();
    const first = tags[0]?.timestamp ?? 0;
    for (const tag of tags) {
      if (realtime) {
        const wait = tag.timestamp - first - (performance.now() - t0);
        if (wait > 5) await new Promise((r) => setTimeout(r, wait));
      }
      this.sendFrame(flvTag(tag));
    }
    await this.drained();
  }

  sendFrame(bytes: Uint8Array): void {
    this.sent.push(bytes);
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(bytes);
  }

  async drained(): Promise<void> {
    await waitFor('studio socket drained', () => (this.ws.bufferedAmount === 0 || this.ws.readyState !== this.ws.OPEN ? true : undefined));
  }

  /**
   * Opens a new socket and resumes the session; resends every frame after the one the bridge says
   * it has, unless `resend` is false. Resolves with that number.
   */
  async resume(resend = true): Promise<number> {
    const session = this.session;
    if (session === undefined) throw new Error('no session to resume');
    // As the page does: the session named in the URL gets a resume into a draining bridge.
    this.ws = this.#open(`?${STUDIO_SESSION_PARAM}=${encodeURIComponent(session.id)}`);
    await this.opened();
    const from = this.messages.length;
    this.send({ type: 'resume', session: session.id, token: session.token });
    const resumed = await this.next('resumed', 10_000, from);
    if (resend) for (const bytes of this.sent.slice(resumed.received)) this.ws.send(bytes);
    return resumed.received;
  }

  /** Cuts the socket without a close handshake, as a dropped network does. */
  drop(): void {
    this.ws.terminate();
  }

  async stop(): Promise<void> {
    const from = this.messages.length;
    this.send({ type: 'stop' });
    await waitFor('final status', () => this.messages.slice(from).some((m) => m.type === 'status' && m.destinations.every((d) => d.state === 'stopped' || d.state === 'failed')) || undefined, 20_000);
  }

  close(): void {
    this.ws.close();
  }
}

import {
  CloseCode,
  FINAL_CLOSE_CODES,
  backoffMs,
  parseStudioServerMessage,
  studioSocketUrl,
  type Backoff,
  type StudioDestination,
  type StudioServerMessage,
} from '@onair/shared';
import { Outbox, type TagClass } from './outbox.js';
import { BRIDGE_RECONNECT } from './reconnect.js';
import type { BridgeLinkState } from './worker-protocol.js';

/** While the bridge keeps the session, come back quickly: at most every 2 s. */
export const RESUME_RETRY: Backoff = { firstMs: 250, baseMs: 500, factor: 1.5, maxMs: 2000, jitter: 0.2 };
/**
 * The bridge sends status every second and acknowledgements as frames arrive: this long without a
 * word means the connection is dead even if the browser has not noticed (a half-open socket).
 */
export const HEARTBEAT_TIMEOUT_MS = 8000;
/**
 * No acknowledgement for this long while frames are out means the link is stalled, not slow: the
 * outbox absorbs what is made and nothing is dropped. (The bridge acknowledges every 200 ms.)
 */
const STALLED_AFTER_MS = 800;
/** Time allowed to hand the bridge a stop. */
const STOP_TIMEOUT_MS = 5000;

export interface BridgeLinkEvents {
  /** Every message from the bridge (status for the page). */
  server(msg: StudioServerMessage): void;
  link(state: BridgeLinkState): void;
  /** Media the page could not resend after a drop (reported once per gap). */
  gap(gap: { frames: number; ms: number }): void;
  /** The bridge refused the stream for good: the broadcast ends. */
  fail(message: string): void;
}

type Mode = 'start' | 'resume';

/**
 * The encode worker's connection to the bridge, for one broadcast: it opens the session, sends
 * every tag through the outbox, and when the socket drops it keeps everything (bounded) and
 * resumes the same session on a new socket, resending what the bridge did not get. When the
 * session is gone (the grace period ran out, the bridge restarted) it starts a new one and sends
 * from the oldest keyframe it holds. Only a refusal ends it.
 */
export class BridgeLink {
  readonly #url: string;
  readonly #affinity: string;
  readonly #destinations: StudioDestination[];
  readonly #events: BridgeLinkEvents;
  readonly outbox = new Outbox();
  #ws: WebSocket | undefined;
  /** The socket carries the session and frames may go out directly. */
  #up = false;
  #mode: Mode = 'start';
  #session: { id: string; token: string } | undefined;
  #graceMs = 30_000;
  #lostAt = 0;
  #attempt = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #retryAt = 0;
  #heartbeat: ReturnType<typeof setInterval>;
  #lastWord = 0;
  #lastAckAt = 0;
  /**
   * Frames up to this number were made while the link was down or stalled, or resent after it:
   * they are catching up, and backpressure does not count them.
   */
  #catchUpTo = 0;
  #reason = '';
  #closed = false;
  #opened: { resolve: () => void; reject: (err: Error) => void } | undefined;
  #stopped: (() => void) | undefined;
  reconnects = 0;

  constructor(url: string, destinations: StudioDestination[], events: BridgeLinkEvents) {
    // Every socket of this broadcast names it the same way, so a load balancer that hashes on the
    // id brings a resume to the bridge holding the session (docs/deploy.md).
    this.#affinity = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, '0')).join('');
    this.#url = url;
    this.#destinations = destinations;
    this.#events = events;
    this.#heartbeat = setInterval(() => this.#checkHeartbeat(), 1000);
  }

  /** Opens the session; rejects when the bridge cannot be reached or refuses it. */
  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#opened = { resolve, reject };
      this.#connect();
    });
  }

  get up(): boolean {
    return this.#up;
  }

  /** Bytes queued in the socket (for stats). */
  get bufferedAmount(): number {
    return this.#ws?.bufferedAmount ?? 0;
  }

  /**
   * Bytes sent and not acknowledged while the bridge keeps taking them (a slow link): what
   * backpressure acts on. A dropped or stalled link reports 0, and what it made meanwhile, resent
   * or released in a burst afterwards, is not counted: it waits in the outbox instead of making
   * new frames drop.
   */
  backlog(): number {
    if (!this.#up || (this.outbox.size > 0 && performance.now() - this.#lastAckAt > STALLED_AFTER_MS)) {
      this.#catchUpTo = this.outbox.nextSeq - 1;
      return 0;
    }
    return this.outbox.bytesAfter(this.#catchUpTo);
  }

  /** Keeps the tag for resending and sends it when the session is up. */
  send(bytes: Uint8Array, cls: TagClass, ms: number, headerKey?: string): void {
    this.outbox.push(bytes, cls, ms, headerKey);
    if (this.#up) this.#ws?.send(bytes as Uint8Array<ArrayBuffer>);
  }

  state(): BridgeLinkState {
    if (this.#up) return { state: 'up' };
    if (this.#retry === undefined) return { state: 'connecting' };
    const retryInMs = Math.max(0, Math.round(this.#retryAt - performance.now()));
    if (this.#mode === 'resume') {
      return { state: 'resuming', reason: this.#reason, attempt: this.#attempt, retryInMs, graceLeftMs: Math.max(0, Math.round(this.#lostAt + this.#graceMs - performance.now())) };
    }
    return { state: 'reconnecting', reason: this.#reason, attempt: this.#attempt, retryInMs };
  }

  #connect(): void {
    if (this.#closed) return;
    // A resume names its session in the URL too: a draining bridge lets it in before any message.
    const resuming = this.#mode === 'resume' ? this.#session : undefined;
    const ws = new WebSocket(studioSocketUrl(this.#url, this.#affinity, resuming?.id));
    ws.binaryType = 'arraybuffer';
    this.#ws = ws;
    this.#lastWord = performance.now();
    ws.onopen = () => {
      if (ws !== this.#ws) return;
      this.#lastWord = performance.now();
      if (this.#mode === 'resume' && this.#session !== undefined) ws.send(JSON.stringify({ type: 'resume', session: this.#session.id, token: this.#session.token }));
      else ws.send(JSON.stringify({ type: 'start', destinations: this.#destinations }));
    };
    ws.onmessage = (e: MessageEvent) => {
      if (ws !== this.#ws || typeof e.data !== 'string') return;
      this.#lastWord = performance.now();
      let msg: StudioServerMessage;
      try {
        msg = parseStudioServerMessage(e.data);
      } catch (err) {
        // A message this page does not understand (a newer bridge, a longer reason) is not a
        // reason to end a broadcast.
        console.warn('onair: ignored a message from the bridge', err);
        return;
      }
      this.#onMessage(ws, msg);
    };
    ws.onclose = (e: CloseEvent) => this.#lost(ws, e.code, e.reason);
  }

  #onMessage(ws: WebSocket, msg: StudioServerMessage): void {
    switch (msg.type) {
      case 'welcome':
        this.#graceMs = msg.graceMs;
        this.outbox.limits = { ...this.outbox.limits, bufferMs: Math.max(msg.resendBufferMs, 1000) };
        return;
      case 'session': {
        const first = this.#session === undefined;
        this.#session = { id: msg.id, token: msg.token };
        const plan = first ? { frames: this.outbox.framesFrom(1), gap: undefined } : this.outbox.restart();
        this.#becomeUp(ws, plan.frames, plan.gap, false);
        return;
      }
      case 'resumed': {
        const plan = this.outbox.resume(msg.received);
        this.#becomeUp(ws, plan.frames, plan.gap, true);
        return;
      }
      case 'ack':
        this.outbox.ack(msg.received);
        this.#lastAckAt = performance.now();
        return;
      case 'error':
        // SESSION_UNKNOWN and SESSION_LIMIT close with a code this link retries on; the rest are final.
        if (msg.code !== 'SESSION_UNKNOWN' && msg.code !== 'SESSION_LIMIT') this.#reason = `${msg.message} [${msg.code}]`;
        this.#events.server(msg);
        return;
      case 'status':
        this.#events.server(msg);
        if (this.#stopped !== undefined && msg.destinations.every((d) => d.state === 'stopped' || d.state === 'failed')) this.#stopped();
        return;
    }
  }

  #becomeUp(ws: WebSocket, frames: Uint8Array<ArrayBuffer>[], gap: { frames: number; ms: number } | undefined, resumed: boolean): void {
    if (gap !== undefined) {
      if (resumed) ws.send(JSON.stringify({ type: 'gap', frames: gap.frames, ms: gap.ms }));
      this.#events.gap(gap);
    }
    for (const f of frames) ws.send(f);
    this.#up = true;
    this.#attempt = 0;
    this.#lastAckAt = performance.now();
    this.#catchUpTo = this.outbox.nextSeq - 1;
    this.#retry = undefined;
    this.#events.link(this.state());
    const opened = this.#opened;
    this.#opened = undefined;
    opened?.resolve();
  }

  #checkHeartbeat(): void {
    const ws = this.#ws;
    if (ws === undefined || this.#closed) return;
    if (performance.now() - this.#lastWord > HEARTBEAT_TIMEOUT_MS) this.#lost(ws, 1006, `no word from the bridge for ${HEARTBEAT_TIMEOUT_MS / 1000} s`);
  }

  #lost(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.#ws) return;
    this.#ws = undefined;
    ws.onopen = ws.onmessage = ws.onclose = null;
    // A dead connection may never finish a close handshake: the next socket does not wait for it.
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close();
    const wasUp = this.#up;
    this.#up = false;
    if (this.#closed) return;
    const why = this.#reason !== '' && FINAL_CLOSE_CODES.has(code) ? this.#reason : `connection to the bridge closed (${code}${reason ? `: ${reason}` : ''})`;
    if (FINAL_CLOSE_CODES.has(code)) {
      this.#finish(why);
      return;
    }
    if (this.#opened !== undefined && this.#session === undefined && this.#attempt === 0 && code !== CloseCode.TryAgainLater) {
      // Never reached the bridge at all: say so instead of retrying behind the streamer's back.
      this.#finish('cannot connect to the onair bridge');
      return;
    }
    if (wasUp) {
      this.#lostAt = performance.now();
      this.reconnects++;
    }
    this.#reason = why;
    if (code === CloseCode.SessionEnded) {
      // The bridge answered, so it is up; it only lost the session: start a new one at once.
      this.#mode = 'start';
      this.#attempt = 0;
      this.#scheduleRetry(0);
      return;
    }
    if (this.#session !== undefined) this.#mode = performance.now() - this.#lostAt < this.#graceMs ? 'resume' : 'start';
    this.#scheduleRetry();
  }

  #scheduleRetry(delayMs?: number): void {
    const delay = delayMs ?? backoffMs(this.#attempt, this.#mode === 'resume' ? RESUME_RETRY : BRIDGE_RECONNECT);
    this.#attempt++;
    this.#retryAt = performance.now() + delay;
    this.#retry = setTimeout(() => this.#connect(), delay);
    this.#events.link(this.state());
  }

  #finish(message: string): void {
    const opened = this.#opened;
    this.#opened = undefined;
    this.close();
    if (opened !== undefined) opened.reject(new Error(message));
    else this.#events.fail(message);
  }

  /**
   * Ends the broadcast: the bridge unpublishes every destination. When the socket is down, one
   * attempt resumes the session just to stop it; failing that, the bridge ends it after its grace.
   */
  async stop(): Promise<void> {
    if (this.#closed) return;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    if (!this.#up && this.#session !== undefined && this.#mode === 'resume') {
      this.#up = false;
      this.#connect();
      await this.#waitUp(STOP_TIMEOUT_MS / 2);
    }
    const ws = this.#ws;
    if (this.#up && ws !== undefined) {
      const done = new Promise<void>((resolve) => (this.#stopped = resolve));
      // Media still queued reaches the bridge before the stop, in order.
      ws.send(JSON.stringify({ type: 'stop' }));
      await Promise.race([done, new Promise((r) => setTimeout(r, STOP_TIMEOUT_MS))]);
    }
    this.close();
  }

  async #waitUp(ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    while (!this.#up && this.#ws !== undefined && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#up = false;
    clearTimeout(this.#retry);
    clearInterval(this.#heartbeat);
    const ws = this.#ws;
    this.#ws = undefined;
    if (ws !== undefined) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(CloseCode.Normal, 'stopped');
    }
  }
}

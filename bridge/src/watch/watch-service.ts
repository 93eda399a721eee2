import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { CloseCode, capReason, closeReason, flvHeader, OnairError } from '@onair/shared';
import { Admission } from '../server/admission.js';
import { WebSocketServer, type WebSocket } from 'ws';
import type { LocalRtmpStatus } from '../local-rtmp/local-rtmp.js';
import type { RtmpAddressOptions } from '../rtmp/session.js';
import { redactKey, redactUrl } from '../rtmp/url.js';
import { refuseUpgrade } from '../server/refuse.js';
import { connectRtmpSource } from './rtmp-source.js';
import { StreamRelay, type ConnectSource, type StreamRelayOptions, type StreamStats, type TagSource, type ViewerSink } from './stream-relay.js';
import { DEFAULT_VIEWER_LIMITS } from './viewer-gate.js';
import { TickCorker } from './tick-corker.js';
import { WsOpcode, wsFrame } from './ws-frame.js';
import {
  FLV_SRC_PATH,
  LOCAL_FLV_PATH,
  METRICS_JSON_PATH,
  WATCH_PROTOCOL_VERSION,
  WATCH_WS_PATH,
  parseWatchTarget,
  watchTargetPath,
  type WatchErrorMessage,
  type WatchReconnectMessage,
  type WatchTarget,
  type WatchWelcomeMessage,
} from '@onair/shared';

/** The destination policy of the server, applied to watch sources too. */
export interface SourcePolicy {
  /** Resolves (or returns) when `url` may be contacted; throws/rejects with the reason otherwise. */
  isAllowed(url: string): Promise<void> | void;
  /** Checks of the address actually dialled, so a DNS answer that changes after isAllowed is refused too. */
  connectOptions(): RtmpAddressOptions;
}

/** Opens an upstream play session for `url`, dialling only addresses `address` accepts. */
export type OpenSource = (url: string, address: RtmpAddressOptions) => Promise<TagSource>;

export interface WatchServiceOptions {
  policy: SourcePolicy;
  /**
   * The embedded RTMP server, for `/watch/<app>/<stream>` and `/live/<stream>.flv`; its `status`
   * is reported in `/metrics.json`. `host` is where the bridge dials it, as it goes in a URL
   * (default 127.0.0.1).
   */
  localRtmp?: { port: number; host?: string; status?: () => LocalRtmpStatus };
  /**
   * An RTMP server (an edge of the operator's cluster) that `/watch/<app>/<stream>`,
   * `/watch-ws/<app>/<stream>` and `/live/<stream>.flv` play from instead of the embedded server:
   * `rtmp://edge:1935` takes the app from the path, `rtmp://edge:1935/live` serves that app only.
   * Set by the operator, so not subject to the source policy (like the embedded server).
   */
  upstream?: WatchUpstream;
  /** Opens an upstream play session; RtmpPlayer by default. */
  connect?: OpenSource;
  relay?: Partial<StreamRelayOptions>;
  limits?: Partial<WatchLimits>;
  /** The client address behind a request, for the per-client limit; the peer's unless set (a trusted proxy's client). */
  clientAddress?: (req: IncomingMessage) => string;
}

/** `--watch-upstream`, parsed by parseWatchUpstream. */
export interface WatchUpstream {
  /** `rtmp://host:port` or `rtmps://host:port`, no path. */
  base: string;
  /** The one app served, when the URL names one. */
  app: string | undefined;
}

/** Reads an upstream URL `rtmp[s]://host[:port][/app]`; throws OnairError USAGE naming the problem. */
export function parseWatchUpstream(text: string): WatchUpstream {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new OnairError('USAGE', `watch upstream "${text}" is not a URL`);
  }
  if (url.protocol !== 'rtmp:' && url.protocol !== 'rtmps:') throw new OnairError('USAGE', `watch upstream "${text}" is not an rtmp:// or rtmps:// URL`);
  if (url.hostname === '' || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new OnairError('USAGE', `watch upstream "${text}" must be rtmp://host[:port][/app]`);
  }
  const path = url.pathname.replace(/^\/+|\/+$/g, '');
  const target = path === '' ? undefined : parseWatchTarget('', `/${path}/x`, '');
  if (path !== '' && target?.kind !== 'local') throw new OnairError('USAGE', `watch upstream "${text}": "${path}" is not one app name`);
  return { base: `${url.protocol}//${url.host}`, app: target?.kind === 'local' ? target.app : undefined };
}

export interface WatchLimits {
  /** Viewers at once (WebSocket and HTTP-FLV together). */
  maxViewers: number;
  /** Viewers one client address may hold at once; loopback clients (the local user, a proxy) are exempt. */
  maxViewersPerClient: number;
  /** Upstream play sessions (distinct sources) at once. */
  maxUpstreams: number;
}

export const DEFAULT_WATCH_LIMITS: WatchLimits = { maxViewers: 2000, maxViewersPerClient: 20, maxUpstreams: 64 };
/** Seconds a viewer refused for a limit is told to wait (HTTP `Retry-After`). */
const RETRY_AFTER_S = 10;

export interface WatchMetrics {
  /** Upstream RTMP play sessions open right now. */
  upstreams: number;
  viewers: { ws: number; flv: number };
  bytesIn: number;
  bytesOut: number;
  streams: StreamStats[];
  /** The embedded RTMP server's process, when the bridge runs one. */
  localRtmp?: LocalRtmpStatus;
}

/** Totals since the bridge started, streams that closed included (`/metrics`). */
export interface WatchCounters {
  bytesIn: number;
  bytesOut: number;
  droppedTags: number;
  /** Upstream play sessions opened again after the first of their stream. */
  upstreamReconnects: number;
}

export const DEFAULT_RELAY_OPTIONS: StreamRelayOptions = {
  lingerMs: 5000,
  retry: { baseMs: 300, factor: 1.5, maxMs: 2000, jitter: 0.2 },
  silenceMs: 3000,
  reopenMs: 10_000,
  gop: {},
  viewer: DEFAULT_VIEWER_LIMITS,
};

/** HTTP routes this service answers (besides the WebSocket path). */
const LOCAL_FLV_APP = 'live';
// A viewer whose connection died without a FIN (a laptop lid, a NAT timeout) answers no ping;
// it is dropped at the next round instead of holding a queue until TCP gives up.
const PING_EVERY_MS = 30_000;
// A page sends nothing on a watch socket; anything bigger than a close frame is refused.
const MAX_CLIENT_PAYLOAD = 1024;

// Framed once per tag, shared by every WebSocket viewer of it.
const framed = new WeakMap<Uint8Array, Buffer>();

function wsSink(ws: WebSocket, corker: TickCorker): ViewerSink {
  // Writes go straight to the socket: ws would frame (and allocate for) every viewer separately.
  // With permessage-deflate off, ws's own sender writes synchronously too, so order is kept.
  const socket = (ws as unknown as { _socket: Duplex | null })._socket;
  const write = (frame: Buffer): void => {
    if (ws.readyState === ws.OPEN && socket !== null && !socket.destroyed) corker.write(socket, frame);
  };
  return {
    kind: 'ws',
    bufferedBytes: () => ws.bufferedAmount,
    sendTag: (bytes) => {
      let frame = framed.get(bytes);
      if (frame === undefined) {
        frame = wsFrame(WsOpcode.Binary, bytes);
        framed.set(bytes, frame);
      }
      write(frame);
    },
    sendStatus: (status) => write(wsFrame(WsOpcode.Text, Buffer.from(JSON.stringify(status)))),
    close: (reason) => ws.close(CloseCode.GoingAway, closeReason(reason)),
  };
}

function addCounters(to: WatchCounters, s: StreamStats): void {
  to.bytesIn += s.bytesIn;
  to.bytesOut += s.bytesOut;
  to.droppedTags += s.droppedTags;
  to.upstreamReconnects += Math.max(0, s.upstreamSessions - 1);
}

function flvSink(res: ServerResponse): ViewerSink {
  return {
    kind: 'flv',
    bufferedBytes: () => res.writableLength,
    sendTag: (bytes) => {
      if (!res.destroyed) res.write(bytes);
    },
    sendStatus: () => {},
    close: () => res.end(),
  };
}

/**
 * The watch side of the bridge: WebSocket play (`/watch-ws?src=…`, `/watch-ws/<app>/<stream>`),
 * HTTP-FLV (`/live/<stream>.flv`, `/flv?src=…`) and `/metrics.json`. Every viewer of one source URL
 * shares one upstream RTMP play session.
 */
export class WatchService {
  readonly #policy: SourcePolicy;
  readonly #localPort: number | undefined;
  readonly #localHost: string;
  readonly #upstream: WatchUpstream | undefined;
  readonly #localStatus: (() => LocalRtmpStatus) | undefined;
  readonly #connect: OpenSource;
  readonly #relayOpts: StreamRelayOptions;
  readonly #relays = new Map<string, StreamRelay>();
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CLIENT_PAYLOAD, perMessageDeflate: false });
  readonly #flvResponses = new Set<ServerResponse>();
  readonly #alive = new WeakSet<WebSocket>();
  readonly #pinger: ReturnType<typeof setInterval>;
  readonly #corker = new TickCorker();
  readonly #limits: WatchLimits;
  readonly #viewers: Admission;
  readonly #clientAddress: (req: IncomingMessage) => string;
  /** What relays that closed had counted. */
  readonly #retired: WatchCounters = { bytesIn: 0, bytesOut: 0, droppedTags: 0, upstreamReconnects: 0 };
  #closed = false;
  #draining = false;

  constructor(opts: WatchServiceOptions) {
    this.#limits = { ...DEFAULT_WATCH_LIMITS, ...opts.limits };
    this.#viewers = new Admission({ max: this.#limits.maxViewers, perClient: this.#limits.maxViewersPerClient }, 'VIEWER_LIMIT', 'viewers');
    this.#policy = opts.policy;
    this.#clientAddress = opts.clientAddress ?? ((req) => req.socket.remoteAddress ?? '');
    this.#localPort = opts.localRtmp?.port;
    this.#localHost = opts.localRtmp?.host ?? '127.0.0.1';
    this.#upstream = opts.upstream;
    this.#localStatus = opts.localRtmp?.status;
    this.#connect = opts.connect ?? connectRtmpSource;
    this.#relayOpts = { ...DEFAULT_RELAY_OPTIONS, ...opts.relay };
    this.#pinger = setInterval(() => {
      for (const ws of this.#wss.clients) {
        if (!this.#alive.has(ws)) {
          ws.terminate();
          continue;
        }
        this.#alive.delete(ws);
        ws.ping();
      }
    }, PING_EVERY_MS);
    this.#pinger.unref();
  }

  /** Handles watch HTTP routes; returns false for any other request. */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === METRICS_JSON_PATH) {
      if (!this.#methodOk(req, res)) return true;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(this.metrics()));
      return true;
    }
    let target: WatchTarget | undefined;
    const local = LOCAL_FLV_PATH.exec(url.pathname);
    if (local !== null) {
      target = parseWatchTarget('', `/${LOCAL_FLV_APP}/${local[1] ?? ''}`, '');
    } else if (url.pathname === FLV_SRC_PATH) {
      target = parseWatchTarget(FLV_SRC_PATH, url.pathname, url.search);
    } else {
      return false;
    }
    if (!this.#methodOk(req, res)) return true;
    if (target === undefined) {
      this.#httpError(res, 400, 'expected /live/<stream>.flv or /flv?src=<rtmp URL>');
      return true;
    }
    this.#serveFlv(target, req, res).catch((err: unknown) => {
      if (!res.headersSent) this.#httpError(res, 500, `watch failed: ${err instanceof Error ? err.message : String(err)}`);
      else res.destroy();
    });
    return true;
  }

  /** Handles watch WebSocket upgrades; returns false for any other path. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== WATCH_WS_PATH && !url.pathname.startsWith(`${WATCH_WS_PATH}/`)) return false;
    const target = parseWatchTarget(WATCH_WS_PATH, url.pathname, url.search);
    if (target === undefined || this.#closed || this.#draining) {
      if (this.#closed || this.#draining) refuseUpgrade(socket, 503, 'the server is shutting down', { 'retry-after': '1' });
      else refuseUpgrade(socket, 400, 'expected /watch-ws/<app>/<stream> or /watch-ws?src=<rtmp URL>');
      return true;
    }
    const client = this.#clientAddress(req);
    this.#wss.handleUpgrade(req, socket, head, (ws) =>
      this.#serveWs(target, ws, client).catch((err: unknown) => ws.close(CloseCode.InternalError, closeReason(`watch failed: ${err instanceof Error ? err.message : String(err)}`))),
    );
    return true;
  }

  metrics(): WatchMetrics {
    const streams = [...this.#relays.values()].map((r) => r.stats());
    const sum = (f: (s: StreamStats) => number): number => streams.reduce((n, s) => n + f(s), 0);
    return {
      upstreams: sum((s) => (s.upstreamConnected ? 1 : 0)),
      viewers: { ws: sum((s) => s.viewers.ws), flv: sum((s) => s.viewers.flv) },
      bytesIn: sum((s) => s.bytesIn),
      bytesOut: sum((s) => s.bytesOut),
      streams,
      ...(this.#localStatus !== undefined ? { localRtmp: this.#localStatus() } : {}),
    };
  }

  /** Totals since the bridge started, for counters that never go down. */
  counters(): WatchCounters {
    const t = { ...this.#retired };
    for (const relay of this.#relays.values()) addCounters(t, relay.stats());
    return t;
  }

  /**
   * The bridge is shutting down: WebSocket viewers are told to reconnect (`reconnect`, then the
   * socket closes), HTTP-FLV responses end (players reconnect on their own), and new viewers get
   * 503 so a load balancer sends them to another bridge. Upstreams close once their viewers left.
   */
  drain(reason: string): void {
    if (this.#draining || this.#closed) return;
    this.#draining = true;
    const message: WatchReconnectMessage = { type: 'reconnect', reason: capReason(reason) };
    for (const ws of this.#wss.clients) {
      if (ws.readyState !== ws.OPEN) continue;
      ws.send(JSON.stringify(message));
      ws.close(CloseCode.GoingAway, closeReason(reason));
    }
    for (const res of this.#flvResponses) res.end();
  }

  /**
   * Ends the wait before the next upstream attempt of every stream on the embedded server: call it
   * when the server is known to be back (after a restart), so viewers do not sit out a backoff.
   */
  retryLocalNow(): void {
    if (this.#localPort === undefined) return;
    const prefix = `rtmp://${this.#localHost}:${this.#localPort}/`;
    for (const [url, relay] of this.#relays) if (url.startsWith(prefix)) relay.retryNow();
  }

  /**
   * Opens the upstream of a stream on the embedded server before anyone watches it, so its first
   * viewer starts from the GOP cache instead of waiting for the publisher's next keyframe. Returns
   * the release (idempotent); nothing happens without an embedded server or for a name no watch
   * path can ask for.
   */
  warmLocal(app: string, stream: string): () => void {
    const target = parseWatchTarget('', watchTargetPath('', { kind: 'local', app, stream }), '');
    // With an upstream, watch paths never reach the embedded server: a warm relay would serve nobody.
    if (this.#closed || this.#draining || this.#localPort === undefined || this.#upstream !== undefined || target?.kind !== 'local' || target.app !== app || target.stream !== stream) return () => {};
    try {
      return this.#relayFor(this.#localUrl(app, stream), {}).hold();
    } catch {
      // At the upstream limit: the stream is simply not warmed.
      return () => {};
    }
  }

  /** Closes every viewer and upstream session. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#pinger);
    this.#corker.close();
    for (const relay of this.#relays.values()) relay.close('the server is shutting down');
    this.#relays.clear();
    for (const res of this.#flvResponses) res.destroy();
    for (const ws of this.#wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }

  /**
   * The RTMP URL of a target after the source policy, with the checks its connections must pass.
   * The embedded server is on loopback by design and always allowed; so is the operator's upstream.
   */
  async #resolve(target: WatchTarget): Promise<{ url: string; address: RtmpAddressOptions }> {
    if (target.kind === 'local' && this.#upstream !== undefined) {
      const { base, app } = this.#upstream;
      if (app !== undefined && target.app !== app) throw new OnairError('WATCH_NO_SUCH_APP', `this bridge serves streams of app ${app} only`);
      return { url: `${base}/${target.app}/${target.stream}`, address: {} };
    }
    if (target.kind === 'local') {
      if (this.#localPort === undefined) throw new OnairError('WATCH_NO_LOCAL_SERVER', 'this bridge runs no local RTMP server');
      return { url: this.#localUrl(target.app, target.stream), address: {} };
    }
    await this.#policy.isAllowed(target.url);
    return { url: target.url, address: this.#policy.connectOptions() };
  }

  #localUrl(app: string, stream: string): string {
    return `rtmp://${this.#localHost}:${this.#localPort ?? 0}/${app}/${stream}`;
  }

  /** The relay of `url`, made when it has none; RELAY_LIMIT when that would pass maxUpstreams. */
  #relayFor(url: string, address: RtmpAddressOptions): StreamRelay {
    let relay = this.#relays.get(url);
    if (relay === undefined || relay.closed) {
      if (this.#relays.size >= this.#limits.maxUpstreams) {
        throw new OnairError('RELAY_LIMIT', `this bridge relays ${this.#limits.maxUpstreams} streams already; try again later`);
      }
      const connect: ConnectSource = (u) => this.#connect(u, address);
      // A relay leaves the map with its counts added to the retired ones, whichever way it goes.
      if (relay !== undefined) addCounters(this.#retired, relay.stats());
      const created: StreamRelay = new StreamRelay(url, redactUrl(url), connect, this.#relayOpts, () => {
        created.close();
        if (this.#relays.get(url) !== created) return;
        this.#relays.delete(url);
        addCounters(this.#retired, created.stats());
      });
      relay = created;
      this.#relays.set(url, relay);
    }
    return relay;
  }

  #reason(err: unknown, url: string | undefined): { code: string; message: string } {
    const code = err instanceof OnairError ? err.code : 'WATCH_FAILED';
    const text = err instanceof Error ? err.message : String(err);
    return { code, message: capReason(url === undefined ? text : redactKey(text, url)) };
  }

  async #serveWs(target: WatchTarget, ws: WebSocket, client: string): Promise<void> {
    ws.on('error', () => ws.terminate());
    this.#alive.add(ws);
    ws.on('pong', () => this.#alive.add(ws));
    ws.on('message', () => ws.close(CloseCode.Unsupported, 'watch sockets take no messages'));
    const refuse = (err: unknown, code: CloseCode): void => {
      const error: WatchErrorMessage = { type: 'error', ...this.#reason(err, target.kind === 'src' ? target.url : undefined) };
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(error));
      ws.close(code, closeReason(error.code));
    };
    let release: () => void;
    try {
      release = this.#viewers.admit(client);
    } catch (err) {
      refuse(err, CloseCode.TryAgainLater);
      return;
    }
    ws.on('close', release);
    let url: string;
    let address: RtmpAddressOptions;
    try {
      ({ url, address } = await this.#resolve(target));
    } catch (err) {
      refuse(err, CloseCode.PolicyViolation);
      return;
    }
    if (ws.readyState !== ws.OPEN || this.#closed) return;
    let relay: StreamRelay;
    try {
      relay = this.#relayFor(url, address);
    } catch (err) {
      refuse(err, CloseCode.TryAgainLater);
      return;
    }
    const welcome: WatchWelcomeMessage = { type: 'welcome', version: WATCH_PROTOCOL_VERSION, source: redactUrl(url) };
    ws.send(JSON.stringify(welcome));
    const sink = wsSink(ws, this.#corker);
    ws.on('close', () => relay.remove(sink));
    relay.add(sink);
  }

  async #serveFlv(target: WatchTarget, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.#draining) {
      res.setHeader('retry-after', '1');
      this.#httpError(res, 503, 'the server is shutting down [DRAINING]');
      return;
    }
    let release: () => void;
    try {
      release = this.#viewers.admit(this.#clientAddress(req));
    } catch (err) {
      const { code, message } = this.#reason(err, undefined);
      res.setHeader('retry-after', String(RETRY_AFTER_S));
      this.#httpError(res, 503, `${message} [${code}]`);
      return;
    }
    res.on('close', release);
    let url: string;
    let address: RtmpAddressOptions;
    try {
      ({ url, address } = await this.#resolve(target));
    } catch (err) {
      const { code, message } = this.#reason(err, target.kind === 'src' ? target.url : undefined);
      this.#httpError(res, code === 'WATCH_NO_LOCAL_SERVER' || code === 'WATCH_NO_SUCH_APP' ? 404 : 403, `${message} [${code}]`);
      return;
    }
    if (this.#closed || req.destroyed) return;
    let relay: StreamRelay;
    try {
      relay = this.#relayFor(url, address);
    } catch (err) {
      const { code, message } = this.#reason(err, undefined);
      res.setHeader('retry-after', String(RETRY_AFTER_S));
      this.#httpError(res, 503, `${message} [${code}]`);
      return;
    }
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'content-type': 'video/x-flv', 'cache-control': 'no-store' });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'video/x-flv', 'cache-control': 'no-store' });
    res.flushHeaders();
    res.write(flvHeader({ audio: true, video: true }));
    const sink = flvSink(res);
    this.#flvResponses.add(res);
    res.on('close', () => {
      this.#flvResponses.delete(res);
      relay.remove(sink);
    });
    relay.add(sink);
  }

  #methodOk(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method === 'GET' || req.method === 'HEAD') return true;
    res.writeHead(405, { allow: 'GET, HEAD' });
    res.end();
    return false;
  }

  #httpError(res: ServerResponse, status: number, message: string): void {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`${message}\n`);
  }
}

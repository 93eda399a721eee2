import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { CloseCode, CONFIG_PATH, MAX_STUDIO_BINARY_BYTES, STUDIO_SESSION_PARAM, STUDIO_WS_PATH, type StudioConfig } from '@onair/shared';
import { WebSocketServer } from 'ws';
import type { StudioSessionOptions } from '../studio/studio-session.js';
import { StudioSessions, type StudioLimits } from '../studio/studio-sessions.js';
import { DEFAULT_PING_INTERVAL_MS, serveStudioSocket } from '../studio/studio-socket.js';
import { setSecurityHeaders } from './headers.js';
import { serveOps, type OpsRoutes } from './ops.js';
import { urlHost, type ServerPolicy, type Verdict } from './policy.js';
import { refuseUpgrade } from './refuse.js';
import { StaticFiles } from './static-files.js';

/** What the watch side offers the server (bridge/src/watch). */
export interface WatchRoutes {
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Tells viewers to reconnect elsewhere and refuses new ones (the bridge is draining). */
  drain?(reason: string): void;
  close(): Promise<void> | void;
}


/** What the restream side offers the server (bridge/src/restream). */
export interface RestreamRoutes {
  /** `checkSite` is the policy's: changes must come from this server's own pages. */
  handleRequest(req: IncomingMessage, res: ServerResponse, checkSite: (req: IncomingMessage) => Verdict): boolean;
  close(): Promise<void>;
}

export interface OnairServerOptions {
  host: string;
  port: number;
  webRoot: string;
  policy: ServerPolicy;
  studioConfig: StudioConfig;
  watch?: WatchRoutes | undefined;
  restream?: RestreamRoutes | undefined;
  studio?: StudioServerOptions;
  /** Serve https and wss with this certificate chain and key (PEM), instead of http and ws. */
  tls?: { cert: string | Buffer; key: string | Buffer } | undefined;
  /**
   * Makes the routes of `/healthz`, `/readyz` and `/metrics` (bridge/src/server/ops.ts) from this
   * server's studio sessions; without it they are not served.
   */
  ops?: (sessions: StudioSessions) => OpsRoutes;
  log?: (line: string) => void;
}

/** How studio sessions behave; every field has a default (docs/studio.md, "What survives what"). */
export interface StudioServerOptions extends Partial<Omit<StudioSessionOptions, 'policy' | 'log'>> {
  limits?: Partial<StudioLimits>;
  /** Media the page keeps for resending after its socket drops, ms. */
  resendBufferMs?: number;
  pingIntervalMs?: number;
}

export const DEFAULT_GRACE_MS = 30_000;
export const DEFAULT_RESEND_BUFFER_MS = 15_000;

/**
 * The HTTP server of `onair serve`: the built web app (SPA fallback), the studio WebSocket, and
 * whatever the watch side handles. Every request and upgrade passes the policy first.
 */
export class OnairServer {
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #opts: OnairServerOptions;
  readonly #static: StaticFiles;
  readonly #sessions: StudioSessions;
  readonly #ops: OpsRoutes | undefined;
  #draining = false;

  private constructor(opts: OnairServerOptions) {
    this.#opts = opts;
    this.#static = new StaticFiles(opts.webRoot);
    const studio = opts.studio ?? {};
    this.#sessions = new StudioSessions(
      {
        graceMs: studio.graceMs ?? DEFAULT_GRACE_MS,
        policy: opts.policy,
        ...(studio.statusIntervalMs !== undefined ? { statusIntervalMs: studio.statusIntervalMs } : {}),
        ...(studio.ackIntervalMs !== undefined ? { ackIntervalMs: studio.ackIntervalMs } : {}),
        ...(studio.maxBufferedBytes !== undefined ? { maxBufferedBytes: studio.maxBufferedBytes } : {}),
        ...(studio.retry !== undefined ? { retry: studio.retry } : {}),
        ...(studio.gop !== undefined ? { gop: studio.gop } : {}),
        ...(studio.onEvent !== undefined ? { onEvent: studio.onEvent } : {}),
        ...(opts.log ? { log: opts.log } : {}),
      },
      studio.limits,
    );
    this.#ops = opts.ops?.(this.#sessions);
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: MAX_STUDIO_BINARY_BYTES, perMessageDeflate: false });
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => this.#onRequest(req, res);
    this.#http = opts.tls === undefined ? createServer(onRequest) : createTlsServer({ cert: opts.tls.cert, key: opts.tls.key }, onRequest);
    this.#http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));
  }

  static async listen(opts: OnairServerOptions): Promise<OnairServer> {
    const server = new OnairServer(opts);
    await new Promise<void>((resolve, reject) => {
      server.#http.once('error', reject);
      server.#http.listen(opts.port, opts.host, () => {
        server.#http.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  get port(): number {
    return (this.#http.address() as AddressInfo).port;
  }

  /** The studio URL on `host`, never with the token (a terminal line lands in logs and screen shares). */
  url(host = this.#opts.host): string {
    return `${this.#opts.tls === undefined ? 'http' : 'https'}://${urlHost(host)}:${this.port}/`;
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    setSecurityHeaders(req, res, this.#opts.policy.publicUrl?.host);
    // Before the policy: probes carry no token, and a scraper may hold only the metrics token.
    if (this.#ops !== undefined && serveOps(req, res, this.#ops, (r) => this.#opts.policy.checkRequest(r))) return;
    const verdict = this.#opts.policy.checkRequest(req);
    if (!verdict.ok) {
      res.writeHead(verdict.status, { 'content-type': 'text/plain; charset=utf-8' }).end(`${verdict.reason}\n`);
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    const cookie = this.#opts.policy.tokenCookie(req);
    if (cookie !== undefined) res.setHeader('set-cookie', cookie);
    try {
      if (this.#opts.restream?.handleRequest(req, res, (r) => this.#opts.policy.checkSite(r))) return;
      if (this.#opts.watch?.handleRequest(req, res)) return;
    } catch (err) {
      this.#opts.log?.(`request failed: ${err instanceof Error ? err.message : String(err)}`);
      if (!res.headersSent) res.writeHead(500).end();
      return;
    }
    if (url.pathname === CONFIG_PATH) {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(this.#opts.studioConfig));
      return;
    }
    this.#static.serve(req, res).catch(() => res.destroy());
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const verdict = this.#opts.policy.checkUpgrade(req);
    if (!verdict.ok) {
      refuseUpgrade(socket, verdict.status, verdict.reason);
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    if (path === STUDIO_WS_PATH) {
      // Draining: only a page resuming a session held here gets in; a new one goes to another
      // bridge (a load balancer moves on after a 503).
      const resuming = url.searchParams.get(STUDIO_SESSION_PARAM);
      if (this.#draining && (resuming === null || !this.#sessions.has(resuming))) {
        refuseUpgrade(socket, 503, 'this bridge is shutting down and takes no new studio sessions', { 'retry-after': '1' });
        return;
      }
      const client = this.#opts.policy.clientAddress(req);
      this.#wss.handleUpgrade(req, socket, head, (ws) =>
        serveStudioSocket(ws, client, this.#sessions, {
          resendBufferMs: this.#opts.studio?.resendBufferMs ?? DEFAULT_RESEND_BUFFER_MS,
          pingIntervalMs: this.#opts.studio?.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
          ...(this.#opts.log ? { log: this.#opts.log } : {}),
        }),
      );
      return;
    }
    if (this.#opts.watch?.handleUpgrade(req, socket, head)) return;
    refuseUpgrade(socket, 404, 'no WebSocket endpoint here');
  }

  /** Who may use the server: its token, public URL and destination rules. */
  get policy(): ServerPolicy {
    return this.#opts.policy;
  }

  /** The studio sessions, attached or in their grace period. */
  get sessions(): StudioSessions {
    return this.#sessions;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Stops taking new work: new studio sessions are refused (resumes of sessions held here are
   * not), watch viewers are told to reconnect elsewhere. Live sessions carry on; close() ends them.
   */
  drain(reason: string): void {
    if (this.#draining) return;
    this.#draining = true;
    this.#sessions.drain();
    this.#opts.watch?.drain?.(reason);
  }

  /** Ends every studio session (destinations unpublish), then stops listening. */
  async close(): Promise<void> {
    for (const ws of this.#wss.clients) ws.close(CloseCode.GoingAway, 'server shutting down');
    await Promise.all([this.#sessions.closeAll(), this.#opts.restream?.close()]);
    await this.#opts.watch?.close();
    this.#wss.close();
    await new Promise<void>((resolve) => {
      this.#http.close(() => resolve());
      this.#http.closeAllConnections();
    });
  }
}

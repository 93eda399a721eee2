import { mkdirSync, writeFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ffmpegPublish } from './harness/ffmpeg.js';
import { flvFixture } from './harness/fixtures.js';
import { ffprobeStreams } from './harness/judge.js';
import { freePort, waitForPort } from './harness/ports.js';
import { makeTempDir, removeTempDir, waitFor } from './harness/proc.js';
import { describeResult, killOnairProcesses, startOnair, type OnairProcess } from './harness/run.js';

// A running `onair serve` against what another site's page can make a browser send: Origin on
// WebSockets and CORS requests, Sec-Fetch-Site on everything. Players (ffmpeg here) send neither.

const ALLOWED = 'https://studio.example';

/** A service on the user's network that another site's page must not reach through the bridge. */
class LanService {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  connections = 0;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(): Promise<LanService> {
    const server = createServer();
    const lan = new LanService(server);
    server.on('connection', (socket) => {
      lan.connections++;
      socket.on('error', () => socket.destroy());
      lan.#sockets.add(socket);
      socket.on('close', () => lan.#sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return lan;
  }

  get port(): number {
    return (this.#server.address() as { port: number }).port;
  }

  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

interface Served {
  process: OnairProcess;
  port: number;
  origin: string;
}

async function serve(args: readonly string[]): Promise<Served> {
  const port = await freePort();
  const process = startOnair(['serve', '--port', String(port), ...args], { timeoutMs: 300_000 });
  await waitForPort(port, 60_000, () => process.process.exitCode === null).catch((err: Error) => {
    throw new Error(`${err.message}\n${process.stderr()}`);
  });
  return { process, port, origin: `http://127.0.0.1:${port}` };
}

async function stop(s: Served | undefined): Promise<void> {
  if (s === undefined) return;
  s.process.kill('SIGTERM');
  const result = await s.process.result;
  expect(result.code, describeResult(result)).toBe(0);
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  /** The whole body, or the first chunk of an FLV stream (which is then cut). */
  body: string;
}

/** One HTTP request with exactly `headers` (and Host), as a player or a browser would send it. */
function http(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      let body = '';
      const done = (): void => resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      res.setEncoding('latin1');
      if (res.headers['content-type'] === 'video/x-flv' && method === 'GET') {
        res.once('data', (chunk: string) => {
          body = chunk;
          req.destroy();
          done();
        });
        return;
      }
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', done);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A WebSocket handshake: `open`, or the status, headers and body of the refusal. */
function upgrade(port: number, path: string, headers: Record<string, string> = {}): Promise<{ open: boolean } & Partial<Reply>> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers });
    ws.once('open', () => {
      ws.close();
      resolve({ open: true });
    });
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        req.destroy();
        resolve({ open: false, status: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    ws.once('error', (err) => reject(err));
  });
}

function expectSecurityHeaders(headers: IncomingHttpHeaders | undefined, what: string): void {
  const csp = String(headers?.['content-security-policy']);
  expect(csp, what).toContain("default-src 'none'");
  expect(csp, what).toContain("script-src 'self' blob: 'wasm-unsafe-eval'");
  expect(csp, what).toContain("frame-ancestors 'none'");
  expect(headers?.['x-frame-options'], what).toBe('DENY');
  expect(headers?.['x-content-type-options'], what).toBe('nosniff');
  expect(headers?.['referrer-policy'], what).toBe('no-referrer');
}

let web: string;
let lan: LanService;
let open: Served;
let rtmpPort: number;

// What a browser sends for another site's page: a fetch or WebSocket (Origin), a <video> or a
// link (Sec-Fetch-Site only); same-site is another port on localhost, or a sibling subdomain.
const CROSS_SITE: Record<string, string>[] = [
  { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' },
  { origin: 'http://localhost:3000', 'sec-fetch-site': 'same-site' },
  { 'sec-fetch-site': 'cross-site' },
  { 'sec-fetch-site': 'same-site' },
  { origin: 'null' },
];

beforeAll(async () => {
  web = makeTempDir('onair-security-web-');
  mkdirSync(join(web, 'assets'));
  writeFileSync(join(web, 'index.html'), '<!doctype html><title>onair test</title>');
  writeFileSync(join(web, 'assets', 'app-1.js'), 'export {};');
  lan = await LanService.start();
  rtmpPort = await freePort();
  open = await serve(['--local-rtmp-port', String(rtmpPort), '--web-root', web, '--allow-origin', ALLOWED]);
});

afterAll(async () => {
  await stop(open);
  await killOnairProcesses();
  await lan?.close();
  if (web) removeTempDir(web);
});

describe('onair serve on loopback, against other sites', () => {
  const src = (): string => encodeURIComponent(`rtmp://127.0.0.1:${lan.port}/live/x`);

  it('refuses cross-site HTTP-FLV, /watch?src= and every WebSocket, and dials nothing', async () => {
    for (const headers of CROSS_SITE) {
      const what = JSON.stringify(headers);
      for (const path of [`/flv?src=${src()}`, '/live/x.flv', `/watch?src=${src()}`]) {
        const reply = await http(open.port, path, headers);
        expect(reply.status, `${path} ${what}`).toBe(403);
        expect(reply.body, `${path} ${what}`).toMatch(/refused/);
        expectSecurityHeaders(reply.headers, `${path} ${what}`);
      }
      for (const path of ['/studio-ws', '/watch-ws/live/x', `/watch-ws?src=${src()}`]) {
        const reply = await upgrade(open.port, path, headers);
        expect(reply.status, `${path} ${what}`).toBe(403);
        expect(reply.body, `${path} ${what}`).toMatch(/refused/);
        expectSecurityHeaders(reply.headers, `refused upgrade ${path} ${what}`);
      }
    }
    expect(lan.connections).toBe(0);
    const metrics = JSON.parse((await http(open.port, '/metrics.json')).body) as { streams: unknown[] };
    expect(metrics.streams).toEqual([]);
  });

  it("passes players that send neither header (ffmpeg), the app's own requests and listed origins", async () => {
    // No headers, as ffmpeg and VLC: the bridge dials the source.
    const flv = await http(open.port, `/flv?src=${src()}`);
    expect(flv.status).toBe(200);
    expect(flv.body.startsWith('FLV')).toBe(true);
    await waitFor('the bridge to dial the source', () => (lan.connections > 0 ? true : undefined), 10_000);

    // A real player: ffprobe reads a stream ffmpeg publishes to the embedded server, over HTTP-FLV.
    const publishing = ffmpegPublish(await flvFixture({ seconds: 10 }), `rtmp://127.0.0.1:${rtmpPort}/live/sec`, { realtime: true });
    try {
      await waitFor('the stream to be published', async () => {
        const m = JSON.parse((await http(open.port, '/metrics.json')).body) as { streams: { tagsIn: number }[] };
        return m.streams.some((s) => s.tagsIn > 0) ? true : undefined;
      }, 15_000);
      const streams = await ffprobeStreams(`http://127.0.0.1:${open.port}/live/sec.flv`);
      expect(streams.find((s) => s.codec_type === 'video')).toMatchObject({ codec_name: 'h264', width: 1280, height: 720 });
      expect(streams.find((s) => s.codec_type === 'audio')).toMatchObject({ codec_name: 'aac' });
    } finally {
      await publishing;
    }

    // The app's own pages: same origin, or the user's own navigation (typed, bookmarked).
    const page = await http(open.port, `/watch?src=${src()}`, { 'sec-fetch-site': 'none' });
    expect(page.status).toBe(200);
    expect(page.body).toContain('onair test');
    const own = { origin: open.origin, 'sec-fetch-site': 'same-origin' };
    expect((await http(open.port, '/live/sec.flv', own)).status).toBe(200);
    expect((await upgrade(open.port, '/studio-ws')).open).toBe(true);
    expect((await upgrade(open.port, '/watch-ws/live/sec', own)).open).toBe(true);
    expect((await upgrade(open.port, `/watch-ws?src=${src()}`, { origin: ALLOWED, 'sec-fetch-site': 'cross-site' })).open).toBe(true);
    // Another site may still link to the app's pages; only what opens a session is refused.
    expect((await http(open.port, '/watch/live/sec', { 'sec-fetch-site': 'cross-site' })).status).toBe(200);
  });

  it('puts the security headers on every response', async () => {
    const replies: [string, Reply | Partial<Reply>][] = [
      ['index.html', await http(open.port, '/')],
      ['SPA route', await http(open.port, '/watch/live/x')],
      ['asset', await http(open.port, '/assets/app-1.js')],
      ['config', await http(open.port, '/api/config')],
      ['metrics', await http(open.port, '/metrics.json')],
      ['Prometheus metrics', await http(open.port, '/metrics')],
      ['readiness', await http(open.port, '/readyz')],
      ['404', await http(open.port, '/missing.js')],
      ['405', await http(open.port, '/', {}, 'POST')],
      ['400', await http(open.port, '/flv')],
      ['HTTP-FLV', await http(open.port, `/flv?src=${src()}`)],
      ['HTTP-FLV HEAD', await http(open.port, '/live/x.flv', {}, 'HEAD')],
      ['foreign Host', await http(open.port, '/', { host: 'rebind.example' })],
      ['cross-site', await http(open.port, '/live/x.flv', { 'sec-fetch-site': 'cross-site' })],
      ['no WebSocket endpoint', await upgrade(open.port, '/nowhere')],
      ['bad watch path', await upgrade(open.port, '/watch-ws/a/b/c')],
    ];
    expect(replies.map(([what, r]) => `${what} ${r.status}`)).toEqual([
      'index.html 200', 'SPA route 200', 'asset 200', 'config 200', 'metrics 200', 'Prometheus metrics 200', 'readiness 200', '404 404', '405 405', '400 400',
      'HTTP-FLV 200', 'HTTP-FLV HEAD 200', 'foreign Host 403', 'cross-site 403', 'no WebSocket endpoint 404', 'bad watch path 400',
    ]);
    for (const [what, reply] of replies) expectSecurityHeaders(reply.headers, what);
    const csp = String(replies[0]![1].headers?.['content-security-policy']);
    expect(csp).toContain(`connect-src 'self' ws://127.0.0.1:${open.port} wss://127.0.0.1:${open.port}`);
  });
});

describe('onair serve with a token, against other sites', () => {
  let guarded: Served | undefined;
  const token = 'sec-token-7f3a';

  afterAll(() => stop(guarded));

  it('requires the token and refuses other sites: both checks', async () => {
    guarded = await serve(['--no-local-rtmp', '--web-root', web, '--token', token]);
    const src = encodeURIComponent(`rtmp://127.0.0.1:${lan.port}/live/t`);
    const before = lan.connections;
    expect((await http(guarded.port, `/flv?src=${src}`)).status).toBe(401);
    expect((await http(guarded.port, `/flv?src=${src}&token=${token}`, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await upgrade(guarded.port, '/studio-ws', { authorization: `Bearer ${token}`, origin: 'https://evil.example' })).status).toBe(403);
    expect((await upgrade(guarded.port, '/studio-ws', { origin: guarded.origin })).status).toBe(401);
    expect(lan.connections).toBe(before);
    expect((await http(guarded.port, `/flv?src=${src}`, { cookie: `onair_token=${token}` })).status).toBe(200);
    expect((await upgrade(guarded.port, '/studio-ws', { cookie: `onair_token=${token}`, origin: guarded.origin })).open).toBe(true);

    const unauthorised = await http(guarded.port, '/');
    expect(unauthorised.status).toBe(401);
    expectSecurityHeaders(unauthorised.headers, '401');
    const first = await http(guarded.port, `/?token=${token}`);
    expect(first.status).toBe(200);
    // Plain HTTP: no Secure (a browser would drop a Secure cookie from an http: answer).
    expect(first.headers['set-cookie']).toEqual([`onair_token=${token}; Path=/; Max-Age=604800; HttpOnly; SameSite=Strict`]);
  });
});

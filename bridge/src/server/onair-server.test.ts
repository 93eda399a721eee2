import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { MAX_STUDIO_BINARY_BYTES, parseStudioServerMessage, type StudioServerMessage } from '@onair/shared';
import { freePort } from '../../test/harness/ports.js';
import { waitFor } from '../../test/harness/proc.js';
import { OnairServer } from './onair-server.js';
import { ServerPolicy } from './policy.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Opens a WebSocket; resolves with the HTTP status of a refused upgrade or the open socket. */
function connect(url: string, headers: Record<string, string>): Promise<{ ws?: WebSocket; status?: number; messages: StudioServerMessage[] }> {
  return new Promise((resolve) => {
    const messages: StudioServerMessage[] = [];
    const ws = new WebSocket(url, { headers });
    ws.on('message', (data, binary) => {
      if (!binary) messages.push(parseStudioServerMessage(data.toString()));
    });
    ws.once('open', () => resolve({ ws, messages }));
    ws.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0, messages }));
    ws.once('error', () => resolve({ status: -1, messages }));
  });
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

let webRoot: string;

beforeAll(() => {
  webRoot = mkdtempSync(join(tmpdir(), 'onair-web-'));
  mkdirSync(join(webRoot, 'assets'));
  writeFileSync(join(webRoot, 'index.html'), '<!doctype html><title>onair test</title>');
  writeFileSync(join(webRoot, 'assets', 'app-123.js'), 'export {};');
});

afterAll(() => rmSync(webRoot, { recursive: true, force: true }));

describe('onair server on loopback', () => {
  let server: OnairServer;
  const origin = (): string => `http://127.0.0.1:${server.port}`;

  beforeAll(async () => {
    server = await OnairServer.listen({
      host: '127.0.0.1',
      port: 0,
      webRoot,
      policy: new ServerPolicy({ host: '127.0.0.1' }),
      studioConfig: { localRtmp: { url: 'rtmp://127.0.0.1:1935/live', key: 'k1' } },
    });
  });
  afterAll(() => server.close());

  it('serves the build, falls back to index.html for app routes, and nothing outside it', async () => {
    const index = await get(server.port, '/');
    expect(index.status).toBe(200);
    expect(index.body).toContain('onair test');
    expect(index.headers['cache-control']).toBe('no-cache');
    const asset = await get(server.port, '/assets/app-123.js');
    expect(asset.headers['content-type']).toMatch(/javascript/);
    expect(asset.headers['cache-control']).toMatch(/immutable/);
    expect((await get(server.port, '/watch/live/k1')).body).toContain('onair test');
    expect((await get(server.port, '/assets/missing.js')).status).toBe(404);
    // Dot segments are resolved by URL parsing (a route like any other); encoded slashes are not.
    for (const path of ['/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd']) expect((await get(server.port, path)).body).not.toContain('root:');
    expect((await get(server.port, '/..%2f..%2f..%2fetc%2fpasswd')).status).toBe(404);
    expect((await get(server.port, '/assets/..%2f..%2f..%2fetc%2fhostname')).status).toBe(404);
  });

  it('tells the page about the embedded server', async () => {
    const config = await get(server.port, '/api/config');
    expect(JSON.parse(config.body)).toEqual({ localRtmp: { url: 'rtmp://127.0.0.1:1935/live', key: 'k1' } });
  });

  it('refuses a foreign Host (DNS rebinding) on HTTP and WebSocket, and a foreign Origin', async () => {
    expect((await get(server.port, '/', { host: 'attacker.example' })).status).toBe(403);
    expect((await connect(`ws://127.0.0.1:${server.port}/studio-ws`, { origin: 'https://attacker.example' })).status).toBe(403);
    expect((await connect(`ws://127.0.0.1:${server.port}/nowhere`, { origin: origin() })).status).toBe(404);
  });

  it('closes a studio socket that sends bad JSON (1008), a frame before start (1008), bad FLV (1007) or an oversized frame (1009)', async () => {
    const a = await connect(`ws://127.0.0.1:${server.port}/studio-ws`, { origin: origin() });
    const aClosed = closed(a.ws!);
    a.ws!.send('{"type":"start","destinations":"everywhere"}');
    expect(await aClosed).toBe(1008);
    expect(a.messages.map((m) => m.type)).toEqual(['welcome', 'error']);

    const early = await connect(`ws://127.0.0.1:${server.port}/studio-ws`, { origin: origin() });
    const earlyClosed = closed(early.ws!);
    early.ws!.send(Buffer.from([9, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 2]));
    expect(await earlyClosed).toBe(1008);
    expect(early.messages.find((m) => m.type === 'error')).toMatchObject({ code: 'BAD_MESSAGE' });

    const b = await connect(`ws://127.0.0.1:${server.port}/studio-ws`, { origin: origin() });
    const bClosed = closed(b.ws!);
    b.ws!.send(JSON.stringify({ type: 'start', destinations: [{ id: 'x', url: `rtmp://127.0.0.1:${await freePort()}/live/k` }] }));
    b.ws!.send(Buffer.from([9, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 2]));
    expect(await bClosed).toBe(1007);
    expect(b.messages.find((m) => m.type === 'error')).toMatchObject({ code: 'FLV_MALFORMED' });

    const c = await connect(`ws://127.0.0.1:${server.port}/studio-ws`, { origin: origin() });
    const cClosed = closed(c.ws!);
    c.ws!.send(Buffer.alloc(MAX_STUDIO_BINARY_BYTES + 1));
    expect(await cClosed).toBe(1009);
  });
});

describe('onair server beyond loopback', () => {
  let server: OnairServer;
  const token = 'test-token-123';

  beforeAll(async () => {
    server = await OnairServer.listen({
      host: '0.0.0.0',
      port: 0,
      webRoot,
      policy: new ServerPolicy({ host: '0.0.0.0', token }),
      studioConfig: { localRtmp: null },
    });
  });
  afterAll(() => server.close());

  it('requires the token on HTTP, then keeps it in a cookie', async () => {
    expect((await get(server.port, '/')).status).toBe(401);
    expect((await get(server.port, '/?token=nope')).status).toBe(401);
    const first = await get(server.port, `/?token=${token}`);
    expect(first.status).toBe(200);
    const cookie = String(first.headers['set-cookie']);
    expect(cookie).toMatch(/onair_token=test-token-123; Path=\/; Max-Age=604800; HttpOnly; SameSite=Strict/);
    expect((await get(server.port, '/restream', { cookie: cookie.split(';')[0]! })).status).toBe(200);
    expect((await get(server.port, '/restream')).status).toBe(401);
    // A watch link's page needs no token.
    expect((await get(server.port, '/watch/live/x')).status).toBe(200);
    expect(server.url()).toBe(`http://0.0.0.0:${server.port}/`);
  });

  it('requires the token on the WebSocket and refuses a loopback destination', async () => {
    const url = `ws://127.0.0.1:${server.port}/studio-ws`;
    const origin = `http://127.0.0.1:${server.port}`;
    expect((await connect(url, { origin })).status).toBe(401);
    const ok = await connect(url, { origin, cookie: `onair_token=${token}` });
    expect(ok.ws).toBeDefined();
    ok.ws!.send(JSON.stringify({ type: 'start', destinations: [{ id: 'x', url: 'rtmp://127.0.0.1:1935/live/secret-key-9' }] }));
    const failed = await waitFor('refused', () => {
      for (const m of ok.messages) if (m.type === 'status' && m.destinations[0]?.state === 'failed') return m.destinations[0];
      return undefined;
    });
    expect(failed.reason).toMatch(/DESTINATION_REFUSED/);
    expect(JSON.stringify(ok.messages)).not.toContain('secret-key-9');
    ok.ws!.close();
  });
});

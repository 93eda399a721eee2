import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FlvReader, TagKind, flvHeader, tagKind, type FlvTag } from '@onair/shared';
import { shortFlv } from './harness/fixtures.js';
import { ffprobeStreams } from './harness/judge.js';
import { freePort, waitForPort } from './harness/ports.js';
import { makeTempDir, removeTempDir, waitFor } from './harness/proc.js';
import { describeResult, runOnair, startOnair, type OnairProcess } from './harness/run.js';
import { StudioClient } from './harness/studio-client.js';
import { makeTestCertificates, type TestCertificates } from './harness/tls.js';

// `onair serve` as the public meets it: bound to every address, with the studio token, serving
// https and wss from a certificate of a CA made here. The studio goes live to the embedded server
// (which a public bind used to refuse as a loopback destination), a watch link plays without the
// token, and nothing but watch links opens without it. Then the same bridge on loopback behind a
// reverse proxy: Host and Origin checked against --public-url, clients told apart by
// X-Forwarded-For from a trusted proxy only.

const TOKEN = 'public-test-token-8d41f0';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Ends the request: an FLV stream stays open (a viewer held) until then. */
  close(): void;
}

/** One request; for an endless FLV stream, the first chunk (the viewer stays until close()). */
function get(opts: { port: number; path: string; headers?: Record<string, string>; ca?: Buffer; localAddress?: string }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const common = { host: '127.0.0.1', port: opts.port, path: opts.path, headers: opts.headers ?? {}, ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}) };
    const req = (opts.ca !== undefined ? httpsRequest({ ...common, ca: opts.ca }, onResponse) : httpRequest(common, onResponse));
    function onResponse(res: import('node:http').IncomingMessage): void {
      const chunks: Buffer[] = [];
      const done = (): void => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), close: () => req.destroy() });
      if (res.headers['content-type'] === 'video/x-flv') {
        res.once('data', (chunk: Buffer) => {
          chunks.push(chunk);
          res.pause();
          done();
        });
        return;
      }
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', done);
    }
    req.on('error', reject);
    req.end();
  });
}

/** A WebSocket handshake: the open socket, or the refusal's status. */
function upgrade(url: string, opts: WebSocket.ClientOptions): Promise<{ ws?: WebSocket; status?: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (req, res) => {
      res.resume();
      req.destroy();
      resolve({ status: res.statusCode ?? 0 });
    });
    ws.once('error', reject);
  });
}

function readFlv(path: string): FlvTag[] {
  return new FlvReader().push(readFileSync(path));
}

async function stopped(proc: OnairProcess | undefined): Promise<string> {
  if (proc === undefined) return '';
  proc.kill('SIGTERM');
  const result = await proc.result;
  expect(result.code, describeResult(result)).toBe(0);
  return `${result.stdout.toString()}\n${result.stderr}`;
}

describe('onair serve bound to every address, with --token and --tls-cert/--tls-key', () => {
  let certs: TestCertificates;
  let ca: Buffer;
  let proc: OnairProcess | undefined;
  let port: number;
  let lan: Server;
  let lanConnections = 0;
  let scratch: string;

  beforeAll(async () => {
    certs = await makeTestCertificates();
    ca = readFileSync(certs.caCert);
    scratch = makeTempDir('onair-public-');
    lan = createServer((socket) => {
      lanConnections++;
      socket.on('error', () => socket.destroy());
      socket.destroy();
    });
    await new Promise<void>((resolve) => lan.listen(0, '127.0.0.1', resolve));
    port = await freePort();
    const rtmpPort = await freePort();
    proc = startOnair(['serve', '--host', '0.0.0.0', '--port', String(port), '--local-rtmp-port', String(rtmpPort), '--token', TOKEN, '--tls-cert', certs.cert, '--tls-key', certs.key], { timeoutMs: 300_000 });
    await waitForPort(port, 60_000, () => proc?.process.exitCode === null).catch((err: Error) => {
      throw new Error(`${err.message}\n${proc?.stderr()}`);
    });
  });

  afterAll(async () => {
    const output = await stopped(proc);
    // Whatever happened above: the token never reached the terminal.
    expect(output).not.toContain(TOKEN);
    expect(output).toContain(`https://127.0.0.1:${port}/`);
    await new Promise<void>((resolve) => lan.close(() => resolve()));
    certs.dispose();
    removeTempDir(scratch);
  });

  it('serves https only, prints no token, and keeps the token in a Secure, HttpOnly, SameSite=Strict cookie with an expiry', async () => {
    await expect(get({ port, path: '/' })).rejects.toThrow();
    expect((await get({ port, path: '/', ca })).status).toBe(401);
    expect((await get({ port, path: '/?token=wrong', ca })).status).toBe(401);
    const first = await get({ port, path: `/?token=${TOKEN}`, ca });
    expect(first.status).toBe(200);
    expect(first.headers['set-cookie']).toEqual([`onair_token=${TOKEN}; Path=/; Max-Age=604800; HttpOnly; SameSite=Strict; Secure`]);
    expect(first.body.toString()).toContain('<div id="app">');
    const config = await get({ port, path: '/api/config', ca, headers: { cookie: `onair_token=${TOKEN}` } });
    expect(config.status).toBe(200);
    expect(config.headers['set-cookie']).toBeUndefined();
  });

  it('goes live to the embedded server (a LAN address stays refused); a watch link plays it without the token', async () => {
    const config = JSON.parse((await get({ port, path: '/api/config', ca, headers: { cookie: `onair_token=${TOKEN}` } })).body.toString()) as { localRtmp: { url: string; key: string } };
    expect(config.localRtmp.url).toMatch(/^rtmp:\/\/127\.0\.0\.1:\d+\/live$/);
    const key = config.localRtmp.key;
    const input = readFlv(await shortFlv());
    const client = new StudioClient(port, { tls: true, socket: { ca, headers: { cookie: `onair_token=${TOKEN}` } } });
    const viewers: WebSocket[] = [];
    try {
      await client.start([
        { id: 'local', url: `${config.localRtmp.url}/${key}` },
        { id: 'lan', url: `rtmp://127.0.0.1:${(lan.address() as { port: number }).port}/live/lan-secret` },
      ]);
      const firstSecond = input.filter((t) => t.timestamp < 1000);
      await client.sendTags(firstSecond, true);
      await client.waitState('local', 'live');
      const lanState = await client.waitState('lan', 'failed');
      expect(lanState.reason).toMatch(/DESTINATION_REFUSED/);
      expect(lanConnections).toBe(0);

      // Viewers with nothing but the link: no cookie, no token, over wss.
      const watch = await upgrade(`wss://127.0.0.1:${port}/watch-ws/live/${key}`, { ca, origin: `https://127.0.0.1:${port}` });
      expect(watch.ws).toBeDefined();
      viewers.push(watch.ws!);
      const frames: Buffer[] = [];
      watch.ws!.on('message', (data, binary) => {
        if (binary) frames.push(data as Buffer);
      });
      const flv = await get({ port, path: `/live/${key}.flv`, ca });
      expect(flv.status).toBe(200);
      expect(flv.body.subarray(0, 3).toString()).toBe('FLV');
      flv.close();

      await client.sendTags(input.slice(firstSecond.length), true);
      await waitFor('the viewer got the stream', () => (frames.length > 60 ? true : undefined), 20_000);
      await client.stop();
      expect(client.destination('local')?.state).toBe('stopped');

      // What the viewer got decodes, from a keyframe on.
      const file = join(scratch, 'viewer.flv');
      writeFileSync(file, Buffer.concat([flvHeader({ audio: true, video: true }), ...frames]));
      const video = readFlv(file).filter((t) => t.type === 9 && tagKind(t) !== TagKind.VideoConfig);
      expect(video.length).toBeGreaterThan(30);
      expect(tagKind(video[0]!)).toBe(TagKind.Keyframe);
      const streams = await ffprobeStreams(file, { decode: true });
      expect(streams.find((s) => s.codec_type === 'video')).toMatchObject({ codec_name: 'h264' });
      expect(streams.find((s) => s.codec_type === 'audio')).toMatchObject({ codec_name: 'aac' });
    } finally {
      client.close();
      for (const ws of viewers) ws.close();
    }
  });

  it('a watch link opens nothing else: not the studio socket, its config, the Restream API, metrics or any src', async () => {
    const src = encodeURIComponent(`rtmp://127.0.0.1:${(lan.address() as { port: number }).port}/live/x`);
    const origin = `https://127.0.0.1:${port}`;
    const page = await get({ port, path: '/watch/live/some-stream', ca, headers: { 'sec-fetch-dest': 'document' } });
    expect(page.status).toBe(200);
    expect(page.headers['set-cookie']).toBeUndefined();
    for (const path of ['/', '/restream', '/api/config', '/api/restream', '/metrics', `/flv?src=${src}`, `/watch?src=${src}`, `/live/x.flv?src=${src}`]) {
      expect((await get({ port, path, ca })).status, path).toBe(401);
    }
    for (const path of ['/studio-ws', `/watch-ws?src=${src}`, `/watch-ws/live/x?src=${src}`]) {
      expect((await upgrade(`wss://127.0.0.1:${port}${path}`, { ca, origin })).status, path).toBe(401);
    }
    expect(lanConnections).toBe(0);
  });
});

describe('onair serve --tls-cert/--tls-key that cannot serve', () => {
  it('names the file that is missing, unreadable or not the certificate\'s key', async () => {
    const certs = await makeTestCertificates();
    const other = await makeTestCertificates();
    try {
      const serve = (args: string[]): ReturnType<typeof runOnair> => runOnair(['serve', '--port', '0', '--no-local-rtmp', ...args]);
      const missing = await serve(['--tls-cert', join(certs.dir, 'nope.pem'), '--tls-key', certs.key]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain(`cannot read --tls-cert ${join(certs.dir, 'nope.pem')} (ENOENT)`);
      const mismatch = await serve(['--tls-cert', certs.cert, '--tls-key', other.key]);
      expect(mismatch.code).toBe(1);
      expect(mismatch.stderr).toContain(`--tls-key ${other.key} is not the key of the certificate in --tls-cert ${certs.cert}`);
      const swapped = await serve(['--tls-cert', certs.key, '--tls-key', certs.cert]);
      expect(swapped.code).toBe(1);
      expect(swapped.stderr).toMatch(/unusable/);
      const alone = await serve(['--tls-cert', certs.cert]);
      expect(alone.code).toBe(1);
      expect(alone.stderr).toMatch(/--tls-cert and --tls-key go together/);
    } finally {
      certs.dispose();
      other.dispose();
    }
  });
});

describe('onair serve on loopback behind a reverse proxy (--public-url, --trusted-proxy)', () => {
  let proc: OnairProcess | undefined;
  let port: number;
  const PUBLIC = 'https://live.onair.test';

  beforeAll(async () => {
    port = await freePort();
    const rtmpPort = await freePort();
    proc = startOnair(['serve', '--port', String(port), '--local-rtmp-port', String(rtmpPort), '--token', TOKEN, '--public-url', PUBLIC,
      '--trusted-proxy', '127.0.0.1', '--max-viewers-per-client', '1'], { timeoutMs: 300_000 });
    await waitForPort(port, 60_000, () => proc?.process.exitCode === null).catch((err: Error) => {
      throw new Error(`${err.message}\n${proc?.stderr()}`);
    });
  });

  afterAll(async () => {
    const output = await stopped(proc);
    expect(output).not.toContain(TOKEN);
    expect(output).toContain(`onair: studio    ${PUBLIC}/`);
  });

  it('checks Host and Origin against the public URL', async () => {
    const cookie = `onair_token=${TOKEN}`;
    // The proxy hands on the public Host, or its upstream's (loopback): both are the bridge's.
    for (const host of ['live.onair.test', `127.0.0.1:${port}`]) {
      expect((await get({ port, path: '/', headers: { host, cookie } })).status, host).toBe(200);
      const studio = await upgrade(`ws://127.0.0.1:${port}/studio-ws`, { headers: { host, cookie }, origin: PUBLIC });
      expect(studio.ws, host).toBeDefined();
      studio.ws!.close();
      for (const origin of ['https://evil.example', 'http://live.onair.test', 'https://live.onair.test:8443']) {
        expect((await upgrade(`ws://127.0.0.1:${port}/studio-ws`, { headers: { host, cookie }, origin })).status, `${host} ${origin}`).toBe(403);
      }
    }
    expect((await get({ port, path: '/', headers: { host: 'evil.example', cookie } })).status).toBe(403);
    expect((await get({ port, path: '/', headers: { host: 'live.onair.test' } })).status).toBe(401);
    // The public URL is https: the cookie is Secure although the proxy speaks http to the bridge.
    const first = await get({ port, path: `/?token=${TOKEN}`, headers: { host: 'live.onair.test' } });
    expect(first.headers['set-cookie']?.[0]).toMatch(/; Secure$/);
  });

  it('counts viewers per client by X-Forwarded-For from the trusted proxy, and by peer for anyone else', async () => {
    const viewer = (forwardedFor: string, localAddress?: string): Promise<Reply> =>
      get({ port, path: '/live/nobody-here.flv', headers: { host: 'live.onair.test', 'x-forwarded-for': forwardedFor }, ...(localAddress !== undefined ? { localAddress } : {}) });
    const held: Reply[] = [];
    try {
      held.push(await viewer('203.0.113.7'));
      expect(held[0]!.status).toBe(200);
      // The same client again is past its limit of one (a loopback peer would have been exempt).
      const again = await viewer('198.51.100.1, 203.0.113.7');
      expect(again.status).toBe(503);
      expect(again.body.toString()).toMatch(/VIEWER_LIMIT/);
      held.push(await viewer('203.0.113.8'));
      expect(held[1]!.status).toBe(200);
      // 127.0.0.2 is no trusted proxy: its header is ignored and it counts as itself, a loopback client.
      held.push(await viewer('203.0.113.7', '127.0.0.2'));
      expect(held[2]!.status).toBe(200);
      held.push(await viewer('203.0.113.7', '127.0.0.2'));
      expect(held[3]!.status).toBe(200);
    } finally {
      for (const reply of held) reply.close();
    }
  });
});

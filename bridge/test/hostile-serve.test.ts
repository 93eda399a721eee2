import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FlvReader, flvTag, parseStudioServerMessage, type StudioServerMessage } from '@onair/shared';
import { flvFixture } from './harness/fixtures.js';
import { startNginxRtmp, type NginxRtmp } from './harness/nginx.js';
import { freePort, waitForPort } from './harness/ports.js';
import { makeTempDir, removeTempDir, runChecked, waitFor } from './harness/proc.js';
import { killOnairProcesses, runOnair, startOnair, type OnairProcess } from './harness/run.js';
import { StudioClient } from './harness/studio-client.js';

// An attacker's (or a broken client's) worst against a running `onair serve` with its default
// embedded server: after each attack the process is still up and still serves the studio — a
// page that loads and a studio session that starts.

let onair: OnairProcess;
let port: number;
let rtmpPort: number;
let dir: string;

async function startServe(extra: readonly string[] = []): Promise<void> {
  port = await freePort();
  rtmpPort = await freePort();
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>onair test</title>\n');
  onair = startOnair(['serve', '--port', String(port), '--local-rtmp-port', String(rtmpPort), '--web-root', dir, ...extra], { timeoutMs: 300_000 });
  await waitForPort(port, 60_000, () => onair.process.exitCode === null);
  await waitForPort(rtmpPort, 20_000, () => onair.process.exitCode === null);
}

/** The process is up and serves: the page, and a studio socket that welcomes a page. */
async function stillServing(): Promise<void> {
  expect(onair.process.exitCode, `onair serve exited:\n${onair.stderr()}`).toBeNull();
  const page = await fetch(`http://127.0.0.1:${port}/`);
  expect(page.status).toBe(200);
  const client = new StudioClient(port);
  try {
    expect((await client.next('welcome')).version).toBe(2);
  } finally {
    client.close();
  }
}

/** Sends raw bytes, then resets the connection (SO_LINGER 0) a moment later, as an attacker would. */
async function sendAndReset(bytes: string, afterMs = 0): Promise<void> {
  const s: Socket = connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  await new Promise((resolve) => s.once('connect', resolve));
  s.write(bytes);
  if (afterMs > 0) await new Promise((r) => setTimeout(r, afterMs));
  s.resetAndDestroy();
}

function upgrade(path: string, headers: Record<string, string> = {}): string {
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function studioSocket(): Promise<{ ws: WebSocket; messages: StudioServerMessage[]; closed: Promise<number> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/studio-ws`, { origin: `http://127.0.0.1:${port}` });
  const messages: StudioServerMessage[] = [];
  ws.on('message', (data, binary) => {
    if (!binary) messages.push(parseStudioServerMessage(data.toString()));
  });
  ws.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, messages, closed }));
    ws.once('close', (code) => reject(new Error(`closed before open (${code})`)));
  });
}

describe('onair serve under hostile clients', () => {
  beforeAll(async () => {
    dir = makeTempDir('onair-hostile-serve-');
    await startServe();
  });
  afterAll(async () => {
    await killOnairProcesses();
    removeTempDir(dir);
  });

  it('refused upgrades reset mid-answer: unknown path, foreign Origin, cross-site fetch', async () => {
    for (let i = 0; i < 30; i++) {
      await sendAndReset(upgrade('/nope'));
      await sendAndReset(upgrade('/studio-ws', { Origin: 'https://evil.example' }));
      await sendAndReset(upgrade('/watch-ws/live/x', { 'Sec-Fetch-Site': 'cross-site' }));
      await sendAndReset(upgrade('/studio-ws', { Origin: 'https://evil.example' }), 5);
    }
    await stillServing();
  });

  it('300 half-open HTTP requests, left hanging', async () => {
    const sockets: Socket[] = [];
    for (let i = 0; i < 300; i++) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      s.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: `);
      sockets.push(s);
    }
    await new Promise((r) => setTimeout(r, 500));
    await stillServing();
    for (const s of sockets) s.destroy();
  });

  it('a 10 MB WebSocket frame, garbage binary frames, and messages with long reasons', async () => {
    const big = await studioSocket();
    big.ws.send(Buffer.alloc(10 * 1024 * 1024, 7));
    // The bridge closes with 1009 as the frame's header arrives; the client, still writing the
    // rest, may see its connection reset before that close frame (1006).
    expect([1006, 1009]).toContain(await big.closed);

    const early = await studioSocket();
    early.ws.send(Buffer.from('garbage, not a tag'));
    expect(await early.closed).toBe(1008);

    const garbage = await studioSocket();
    garbage.ws.send(JSON.stringify({ type: 'start', destinations: [{ id: 'a', url: `rtmp://127.0.0.1:${await freePort()}/live/k` }] }));
    await waitFor('a session', () => (garbage.messages.some((m) => m.type === 'session') ? true : undefined));
    garbage.ws.send(Buffer.from([9, 0, 0, 40, 1, 2, 3]));
    expect(await garbage.closed).toBe(1007);

    // An error message far longer than a close reason may be (123 bytes): cut, never thrown.
    const long = await studioSocket();
    long.ws.send(JSON.stringify({ type: `ü${'x'.repeat(600)}` }));
    expect(await long.closed).toBe(1008);
    const error = long.messages.find((m) => m.type === 'error');
    expect(error).toMatchObject({ code: 'BAD_MESSAGE' });

    // A page's own close reason at the limit, in multibyte characters.
    const polite = await studioSocket();
    polite.ws.close(4000, 'é'.repeat(61));
    await polite.closed;
    await stillServing();
  });

  it('a malformed onMetaData published to the embedded server takes only its child down', async () => {
    const file = join(dir, 'badmeta.flv');
    const body = Buffer.concat([Buffer.from([0x02, 0x00, 0x0a]), Buffer.from('onMetaData'), Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff])]);
    writeFileSync(file, Buffer.concat([Buffer.from('FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00', 'latin1'), flvTag({ type: 18, timestamp: 0, data: body })]));
    await runOnair(['publish', file, `rtmp://127.0.0.1:${rtmpPort}/live/bad`]);
    await waitFor('the child restarted', async () => {
      const m = (await (await fetch(`http://127.0.0.1:${port}/metrics.json`)).json()) as { localRtmp?: { state: string; restarts: number } };
      return m.localRtmp?.state === 'up' && m.localRtmp.restarts > 0 ? true : undefined;
    }, 20_000);
    await stillServing();
  });
});

describe('onair serve on Ctrl-C', () => {
  let nginx: NginxRtmp;
  beforeAll(async () => {
    dir = makeTempDir('onair-sigint-');
    nginx = await startNginxRtmp({ record: true });
  });
  afterAll(async () => {
    await killOnairProcesses();
    await nginx?.dispose();
    removeTempDir(dir);
  });

  it('unpublishes every live destination before it exits (SIGINT)', async () => {
    await startServe();
    const tags = new FlvReader().push(readFileSync(await flvFixture({ seconds: 4 })));
    const client = new StudioClient(port);
    await client.start([
      { id: 'a', url: nginx.url('live', 'sigint1') },
      { id: 'b', url: nginx.url('live', 'sigint2') },
    ]);
    await Promise.all([client.waitState('a', 'live'), client.waitState('b', 'live')]);
    await client.sendTags(tags.slice(0, 200));
    onair.process.kill('SIGINT');
    const exit = await onair.result;
    expect(exit.code, onair.stderr()).toBe(0);
    // nginx closes a recording when it processes the publisher's deleteStream.
    for (const name of ['sigint1', 'sigint2']) await nginx.recordingDone(name, 10_000);
    const deletes = nginx.errorLog().split('\n').filter((l) => l.includes('deleteStream')).length;
    expect(deletes).toBeGreaterThanOrEqual(2);
    const probe = await runChecked('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', nginx.recording('sigint1')], { captureStdout: true });
    expect(probe.toString()).toMatch(/h264/);
  });
});

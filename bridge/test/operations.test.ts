import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { FlvReader, parseWatchServerMessage, type FlvTag, type RestreamState, type WatchServerMessage } from '@onair/shared';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { SERVE_HELP, parseServeArgs } from '../src/serve.js';
import { flvFixture } from './harness/fixtures.js';
import { freePort, waitForPort } from './harness/ports.js';
import { makeTempDir, removeTempDir, spawnTracked, waitFor, type Child } from './harness/proc.js';
import { parsePrometheus, promValue, type PromFamily } from './harness/prometheus.js';
import { describeResult, killOnairProcesses, startOnair, type OnairProcess } from './harness/run.js';
import { StudioClient } from './harness/studio-client.js';

// Operating `onair serve` (docs/operations.md), against the real process: /metrics read by an
// independent Prometheus text parser while a stream runs, the probes, the JSON log, and the drain
// on SIGTERM with a live studio session and viewers.

// Stream keys that must never reach the log.
const ENCODER_KEY = 'encKey7f3a9c';
const STUDIO_KEY = 'studioKey5d1e8b';

let dir: string;
let webRoot: string;
let tags: FlvTag[];
let source: string;

beforeAll(async () => {
  dir = makeTempDir('onair-operations-');
  webRoot = join(dir, 'web');
  mkdirSync(webRoot);
  writeFileSync(join(webRoot, 'index.html'), '<!doctype html><title>onair test</title>\n');
  source = await flvFixture({ seconds: 20 });
  tags = new FlvReader().push(readFileSync(source));
});
afterEach(killOnairProcesses);
afterAll(() => {
  if (dir) removeTempDir(dir);
});

interface Serve {
  onair: OnairProcess;
  port: number;
  base: string;
  rtmp: string;
  scrape(headers?: Record<string, string>): Promise<PromFamily[]>;
  get(path: string, headers?: Record<string, string>): Promise<number>;
  /** The JSON log lines on stderr so far, parsed. */
  events(): Record<string, unknown>[];
}

async function serve(extra: readonly string[] = [], opts: { local?: boolean } = {}): Promise<Serve> {
  const port = await freePort();
  const rtmpPort = await freePort();
  const local = opts.local ?? true;
  const onair = startOnair(
    ['serve', '--port', String(port), ...(local ? ['--local-rtmp-port', String(rtmpPort)] : ['--no-local-rtmp']), '--web-root', webRoot, '--config-dir', join(dir, `config-${port}`), ...extra],
    { timeoutMs: 240_000 },
  );
  await waitForPort(port, 60_000, () => onair.process.exitCode === null);
  const base = `http://127.0.0.1:${port}`;
  // node:http rather than fetch: a test sets the Host header.
  const get: Serve['get'] = (path, headers = {}) =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
  return {
    onair,
    port,
    base,
    rtmp: `rtmp://127.0.0.1:${rtmpPort}/live`,
    get,
    scrape: async (headers = {}) => {
      const res = await fetch(`${base}/metrics`, { headers });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      return parsePrometheus(await res.text());
    },
    events: () =>
      onair
        .stderr()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** A watch viewer on a WebSocket, counting binary frames and keeping the text messages. */
interface Viewer {
  ws: WebSocket;
  frames: number;
  messages: WatchServerMessage[];
  close: { code: number; reason: string } | undefined;
}

function openViewer(url: string): Viewer {
  const ws = new WebSocket(url);
  const viewer: Viewer = { ws, frames: 0, messages: [], close: undefined };
  ws.on('error', () => undefined);
  ws.on('close', (code, reason) => (viewer.close = { code, reason: reason.toString() }));
  ws.on('message', (data, isBinary) => {
    if (isBinary) viewer.frames++;
    else viewer.messages.push(parseWatchServerMessage((data as Buffer).toString('utf8')));
  });
  return viewer;
}

/** The HTTP status a WebSocket upgrade gets (101 when it opens). */
function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('open', () => {
      resolve(101);
      ws.close();
    });
    ws.on('error', (err) => reject(err));
  });
}

function publishLoop(url: string): Child {
  return spawnTracked('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', source, '-c', 'copy', '-f', 'flv', url]);
}

/** Reads an HTTP-FLV response until aborted, counting bytes. */
function flvViewer(url: string): { bytes: () => number; stop: () => void } {
  const abort = new AbortController();
  let bytes = 0;
  void fetch(url, { signal: abort.signal })
    .then(async (res) => {
      for await (const chunk of res.body!) bytes += (chunk as Uint8Array).length;
    })
    .catch(() => undefined);
  return { bytes: () => bytes, stop: () => abort.abort() };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('onair serve observed: /metrics, /healthz, /readyz and the JSON log', () => {
  it('reads its operations options from flags and the environment, and documents them', () => {
    expect(parseServeArgs([], {})).toMatchObject({ logFormat: 'text', drainTimeoutMs: 300_000, metricsToken: undefined });
    expect(parseServeArgs([], { ONAIR_LOG_FORMAT: 'json', ONAIR_DRAIN_TIMEOUT: '2.5', ONAIR_METRICS_TOKEN: 'm' })).toMatchObject({ logFormat: 'json', drainTimeoutMs: 2500, metricsToken: 'm' });
    expect(parseServeArgs(['--log-format', 'text', '--drain-timeout', '0', '--metrics-token', 'n'], { ONAIR_LOG_FORMAT: 'json' })).toMatchObject({ logFormat: 'text', drainTimeoutMs: 0, metricsToken: 'n' });
    expect(() => parseServeArgs(['--log-format', 'xml'], {})).toThrow(/log format "xml"/);
    expect(() => parseServeArgs(['--drain-timeout', 'later'], {})).toThrow(/not a number of seconds/);
    for (const word of ['--log-format', '--drain-timeout', '--metrics-token', 'ONAIR_LOG_FORMAT', 'ONAIR_DRAIN_TIMEOUT', 'ONAIR_METRICS_TOKEN', '/healthz', '/readyz', '/metrics', 'SIGTERM drains']) {
      expect(SERVE_HELP).toContain(word);
    }
  });

  it('/metrics parses as the Prometheus text format and its counters move while streams run; the log has one JSON line per event and no key', async () => {
    const s = await serve(['--log-format', 'json']);
    expect(await s.get('/healthz')).toBe(200);
    await waitFor('ready (the embedded RTMP server up)', async () => ((await s.get('/readyz')) === 200 ? true : undefined), 30_000);

    const first = await s.scrape();
    for (const f of first) {
      expect(f.help, f.name).not.toBe('');
      expect(['COUNTER', 'GAUGE'], f.name).toContain(f.type);
      expect(f.type === 'COUNTER', `${f.name}: counters and only counters end in _total`).toBe(f.name.endsWith('_total'));
    }
    expect(first.map((f) => f.name)).toEqual(
      expect.arrayContaining([
        'onair_studio_sessions', 'onair_studio_destinations', 'onair_watch_viewers', 'onair_watch_upstreams', 'onair_watch_received_bytes_total',
        'onair_watch_sent_bytes_total', 'onair_watch_dropped_tags_total', 'onair_studio_dropped_tags_total', 'onair_studio_destination_reconnects_total',
        'onair_studio_resumes_total', 'onair_restream_inputs', 'onair_restream_destinations', 'process_resident_memory_bytes', 'nodejs_heap_used_bytes',
        'nodejs_eventloop_delay_seconds', 'onair_draining',
      ]),
    );
    expect(promValue(first, 'onair_watch_viewers', { transport: 'ws' })).toBe(0);
    expect(promValue(first, 'onair_studio_sessions', { state: 'attached' })).toBe(0);
    expect(promValue(first, 'onair_local_rtmp_up')).toBe(1);
    expect(promValue(first, 'process_resident_memory_bytes')).toBeGreaterThan(10e6);

    // An encoder publishes to the embedded server; one WebSocket and one HTTP-FLV viewer watch it.
    const encoder = publishLoop(`${s.rtmp}/${ENCODER_KEY}`);
    const viewer = openViewer(`ws://127.0.0.1:${s.port}/watch-ws/live/${ENCODER_KEY}`);
    const flv = flvViewer(`${s.base}/live/${ENCODER_KEY}.flv`);
    const studio = new StudioClient(s.port);
    let ingestKey: string | undefined;
    try {
      await waitFor('media at the viewers', () => (viewer.frames > 60 && flv.bytes() > 100_000 ? true : undefined), 30_000);
      const watching = await s.scrape();
      expect(promValue(watching, 'onair_watch_viewers', { transport: 'ws' })).toBe(1);
      expect(promValue(watching, 'onair_watch_viewers', { transport: 'http-flv' })).toBe(1);
      expect(promValue(watching, 'onair_watch_upstreams')).toBe(1);
      await sleep(1500);
      const later = await s.scrape();
      for (const name of ['onair_watch_received_bytes_total', 'onair_watch_sent_bytes_total']) {
        expect(promValue(later, name), name).toBeGreaterThan(promValue(watching, name));
      }
      // Twice the stream's bytes at least went out: two viewers.
      expect(promValue(later, 'onair_watch_sent_bytes_total')).toBeGreaterThan(1.5 * promValue(watching, 'onair_watch_received_bytes_total'));

      // A studio session to the embedded server, dropped and resumed once, then stopped.
      await studio.start([{ id: 'local', url: `${s.rtmp}/${STUDIO_KEY}` }]);
      await studio.waitState('local', 'live');
      await studio.sendTags(tags.slice(0, 200), true);
      const live = await s.scrape();
      expect(promValue(live, 'onair_studio_sessions', { state: 'attached' })).toBe(1);
      expect(promValue(live, 'onair_studio_destinations', { state: 'live' })).toBe(1);
      expect(promValue(live, 'onair_studio_sessions_started_total')).toBe(1);
      expect(promValue(live, 'onair_studio_received_bytes_total')).toBeGreaterThan(50_000);
      expect(promValue(live, 'onair_studio_sent_bytes_total')).toBeGreaterThan(50_000);
      studio.drop();
      await waitFor('the session waiting for its page', async () => (promValue(await s.scrape(), 'onair_studio_sessions', { state: 'waiting' }) === 1 ? true : undefined));
      await studio.resume();
      await studio.sendTags(tags.slice(200, 300), true);
      const resumed = await s.scrape();
      expect(promValue(resumed, 'onair_studio_resumes_total')).toBe(1);
      expect(promValue(resumed, 'onair_studio_sessions', { state: 'attached' })).toBe(1);
      await studio.stop();
      await waitFor('the session gone', async () => (promValue(await s.scrape(), 'onair_studio_sessions', { state: 'attached' }) === 0 ? true : undefined));
      const ended = await s.scrape();
      // Totals keep what the ended session counted.
      expect(promValue(ended, 'onair_studio_received_bytes_total')).toBeGreaterThan(promValue(live, 'onair_studio_received_bytes_total'));
      expect(promValue(ended, 'onair_studio_sent_bytes_total')).toBeGreaterThanOrEqual(promValue(live, 'onair_studio_sent_bytes_total'));
      expect(promValue(ended, 'onair_studio_destinations', { state: 'live' })).toBe(0);
      // Some delay is always measured (the monitor's own 10 ms timer at least), under a second.
      const lag = promValue(ended, 'nodejs_eventloop_delay_seconds', { quantile: '0.99' });
      expect(lag).toBeGreaterThan(0.001);
      expect(lag).toBeLessThan(1);
      // The viewer summary comes at most every 10 s.
      await waitFor('a viewer summary in the log', () => s.events().find((e) => e['event'] === 'watch.viewers' && e['ws'] === 1), 15_000);

      // A Restream input (an ingest key of its own, a secret too), counted and logged.
      const created = await fetch(`${s.base}/api/restream/inputs`, { method: 'POST', body: JSON.stringify({ name: 'OBS' }), headers: { 'content-type': 'application/json' } });
      expect(created.status).toBe(201);
      const input = ((await created.json()) as RestreamState).inputs[0]!;
      ingestKey = input.streamKey!;
      expect(promValue(await s.scrape(), 'onair_restream_inputs', { state: 'waiting' })).toBe(1);
      expect(await waitFor('the input in the log', () => s.events().find((e) => e['event'] === 'restream.input'), 5000)).toMatchObject({ input: input.id, name: 'OBS', state: 'waiting' });
    } finally {
      studio.close();
      viewer.ws.close();
      flv.stop();
      await encoder.stop('SIGKILL');
    }

    // SIGINT stops at once, as before.
    s.onair.kill('SIGINT');
    const result = await s.onair.result;
    expect(result.code, describeResult(result)).toBe(0);
    // The bin shim's own line when it had to compile the bridge first is not the server's log.
    const lines = result.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('onair: building the bridge'));
    expect(lines.length).toBeGreaterThan(5);
    for (const line of lines) {
      const e = JSON.parse(line) as Record<string, unknown>;
      expect(typeof e['time'], line).toBe('string');
      expect(['info', 'warn', 'error'], line).toContain(e['level']);
      expect(typeof e['event'], line).toBe('string');
    }
    const events = s.events();
    const kinds = new Set(events.map((e) => e['event']));
    for (const kind of ['ready', 'studio.session.start', 'studio.destination', 'studio.session.resume', 'studio.session.end', 'watch.viewers']) expect(kinds, kind).toContain(kind);
    expect(events.find((e) => e['event'] === 'studio.destination' && e['state'] === 'live')).toMatchObject({ url: expect.stringMatching(/\/live\/\*\*\*$/) as unknown });
    expect(kinds).not.toContain('drain.start');
    expect(ingestKey).toBeDefined();
    for (const key of [ENCODER_KEY, STUDIO_KEY, ingestKey!]) expect(result.stderr + result.stdout.toString()).not.toContain(key);
  });

  it('probes answer without a token; /metrics wants the token or the metrics token', async () => {
    const s = await serve(['--token', 'studio-secret', '--metrics-token', 'scrape-secret'], { local: false });
    expect(await s.get('/healthz')).toBe(200);
    expect(await s.get('/readyz')).toBe(200);
    expect(await s.get('/metrics')).toBe(401);
    expect(await s.get('/metrics', { authorization: 'Bearer wrong' })).toBe(401);
    expect(await s.get('/metrics?token=scrape-secret')).toBe(401);
    expect(promValue(await s.scrape({ authorization: 'Bearer scrape-secret' }), 'onair_draining')).toBe(0);
    expect(promValue(await s.scrape({ authorization: 'Bearer studio-secret' }), 'onair_draining')).toBe(0);
    // The metrics token opens nothing else.
    expect(await s.get('/', { authorization: 'Bearer scrape-secret' })).toBe(401);
    expect(await s.get('/metrics.json', { authorization: 'Bearer scrape-secret' })).toBe(401);
    expect((await fetch(`${s.base}/metrics`, { method: 'POST', headers: { authorization: 'Bearer scrape-secret' } })).status).toBe(405);
    // A loopback bind checks the Host on /metrics as everywhere (DNS rebinding), not on the probes.
    const open = await serve([], { local: false });
    expect(await open.get('/metrics')).toBe(200);
    expect(await open.get('/metrics', { host: 'evil.example' })).toBe(403);
    expect(await open.get('/readyz', { host: 'evil.example' })).toBe(200);
  });
});

describe('onair serve drained on SIGTERM', () => {
  it('fails /readyz at once, refuses new sessions and viewers with 503, tells viewers to reconnect, keeps the live session (resumes too) and exits 0 when it ends', async () => {
    const s = await serve(['--log-format', 'json', '--drain-timeout', '120']);
    await waitFor('ready', async () => ((await s.get('/readyz')) === 200 ? true : undefined), 30_000);
    const studio = new StudioClient(s.port);
    await studio.start([{ id: 'local', url: `${s.rtmp}/${STUDIO_KEY}` }]);
    await studio.waitState('local', 'live');
    const sending = studio.sendTags(tags.slice(0, 400), true);
    const viewer = openViewer(`ws://127.0.0.1:${s.port}/watch-ws/live/${STUDIO_KEY}`);
    await waitFor('media at the viewer', () => (viewer.frames > 30 ? true : undefined), 20_000);

    const signalled = performance.now();
    s.onair.kill('SIGTERM');
    const notReadyAt = await waitFor('/readyz failing', async () => ((await s.get('/readyz')) === 503 ? performance.now() : undefined), 10_000, 10);
    console.log(`/readyz 503 ${(notReadyAt - signalled).toFixed(0)} ms after SIGTERM`);
    expect(notReadyAt - signalled).toBeLessThan(2000);

    // The viewer is told to reconnect, then its socket closes (1001).
    await waitFor('the viewer closed', () => viewer.close, 5000);
    expect(viewer.messages.some((m) => m.type === 'reconnect')).toBe(true);
    expect(viewer.close?.code).toBe(1001);

    expect(await upgradeStatus(`ws://127.0.0.1:${s.port}/studio-ws`)).toBe(503);
    expect(await upgradeStatus(`ws://127.0.0.1:${s.port}/studio-ws?session=nosuchsession`)).toBe(503);
    expect(await upgradeStatus(`ws://127.0.0.1:${s.port}/watch-ws/live/${STUDIO_KEY}`)).toBe(503);
    expect(await s.get(`/live/${STUDIO_KEY}.flv`)).toBe(503);
    expect(await s.get('/healthz')).toBe(200);
    expect(promValue(await s.scrape(), 'onair_draining')).toBe(1);

    // The live session goes on, through a drop and a resume.
    await sending;
    studio.drop();
    await studio.resume();
    await studio.sendTags(tags.slice(400, 500), true);
    expect(studio.destination('local')?.state).toBe('live');
    await sleep(1000);
    expect(s.onair.process.exitCode).toBeNull();

    const stoppedAt = performance.now();
    await studio.stop();
    studio.close();
    const result = await s.onair.result;
    console.log(`exit ${(performance.now() - stoppedAt).toFixed(0)} ms after the last session stopped`);
    expect(result.code, describeResult(result)).toBe(0);
    const events = s.events();
    expect(events.find((e) => e['event'] === 'drain.start')).toMatchObject({ sessions: 1, timeoutS: 120 });
    expect(events.find((e) => e['event'] === 'drain.end')).toMatchObject({ reason: 'sessions ended', sessions: 0 });
    expect(result.stderr).not.toContain(STUDIO_KEY);
  });

  it('stops after --drain-timeout with a session still live, exit 0; a second signal or SIGINT stops at once', async () => {
    const timed = await serve(['--log-format', 'json', '--drain-timeout', '2']);
    const studio = new StudioClient(timed.port);
    await studio.start([{ id: 'local', url: `${timed.rtmp}/${STUDIO_KEY}` }]);
    await studio.waitState('local', 'live');
    const signalled = performance.now();
    timed.onair.kill('SIGTERM');
    const result = await timed.onair.result;
    const took = performance.now() - signalled;
    console.log(`drain timeout 2 s: exit ${took.toFixed(0)} ms after SIGTERM`);
    expect(result.code, describeResult(result)).toBe(0);
    expect(took).toBeGreaterThanOrEqual(1900);
    expect(timed.events().find((e) => e['event'] === 'drain.end')).toMatchObject({ reason: 'timeout', sessions: 1 });
    expect(timed.events().some((e) => e['event'] === 'studio.session.end')).toBe(true);
    studio.close();

    for (const signals of [['SIGINT'], ['SIGTERM', 'SIGTERM']] as const) {
      const s = await serve(['--drain-timeout', '300']);
      const client = new StudioClient(s.port);
      await client.start([{ id: 'local', url: `${s.rtmp}/${STUDIO_KEY}` }]);
      await client.waitState('local', 'live');
      const at = performance.now();
      for (const signal of signals) {
        s.onair.kill(signal);
        await sleep(300);
      }
      const r = await s.onair.result;
      console.log(`${signals.join(' + ')} with a live session: exit ${(performance.now() - at).toFixed(0)} ms after`);
      expect(r.code, describeResult(r)).toBe(0);
      expect(performance.now() - at).toBeLessThan(20_000);
      // Text logging: the drain is told in sentences.
      if (signals.length === 2) expect(r.stderr).toMatch(/onair: draining: .*1 studio session\(s\) live/);
      else expect(r.stderr).not.toContain('draining');
      client.close();
    }
  });
});

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseFlvTag, parseStudioServerMessage, parseWatchServerMessage, TagKind, tagKind, type FlvTag, type StudioServerMessage } from '@onair/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { WatchMetrics } from '../src/watch/index.js';
import { REPO_ROOT } from './harness/fixtures.js';
import { NGINX_MODULES_DIR } from './harness/nginx.js';
import { freePort, waitForPort } from './harness/ports.js';
import { makeTempDir, removeTempDir, runChecked, spawnTracked, waitFor, type Child } from './harness/proc.js';
import { killOnairProcesses, ONAIR_BIN, startOnair, type OnairProcess } from './harness/run.js';
import { makeTestCertificates, type TestCertificates } from './harness/tls.js';

// The reference deployment of deploy/ on loopback, run from its own files with only ports and
// paths replaced: nginx (deploy/nginx/onair.conf: the TLS load balancer, the RTMP origin and two
// edges pulling from it) and three bridges started the way deploy/systemd/onair.service starts
// them, with the settings of deploy/systemd/onair.env.

const run = promisify(execFile);
const DEPLOY = join(REPO_ROOT, 'deploy');
const TOKEN = 'deploy-test-token-0123456789';
const VIEWERS = 60;
const STREAM = 'show';

/** `text` with every `from` replaced; a `from` the file no longer holds fails the test. */
function substitute(text: string, pairs: [string, string][]): string {
  let out = text;
  for (const [from, to] of pairs) {
    if (!out.includes(from)) throw new Error(`the deploy file no longer contains "${from}"`);
    out = out.replaceAll(from, to);
  }
  return out;
}

/** `KEY=VALUE` lines as systemd's EnvironmentFile= reads them (comments and blank lines skipped). */
function environmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m !== null && !line.trimStart().startsWith('#')) env[m[1]!] = m[2]!.trim();
  }
  return env;
}

/** One unit setting (`Key=`), every occurrence. */
function unitSettings(unit: string, key: string): string[] {
  return unit
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));
}

/**
 * A watch viewer that behaves like the watch page's transport: on close it reconnects through the
 * load balancer (0.3 s, ×1.5, at most 5 s). It records every socket's tags apart.
 */
class Viewer {
  readonly sockets: { openedAt: number; closedAt?: number; tags: FlvTag[]; firstKeyframeAt?: number }[] = [];
  #ws: WebSocket | undefined;
  #delayMs = 300;
  #stopped = false;

  constructor(
    readonly url: string,
    readonly ca: Buffer,
  ) {
    this.#open();
  }

  get current(): Viewer['sockets'][number] {
    return this.sockets[this.sockets.length - 1]!;
  }

  #open(): void {
    if (this.#stopped) return;
    const socket: Viewer['sockets'][number] = { openedAt: performance.now(), tags: [] };
    this.sockets.push(socket);
    const ws = new WebSocket(this.url, { ca: this.ca });
    this.#ws = ws;
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => {
      const bytes = data as Buffer;
      if (!isBinary) {
        parseWatchServerMessage(bytes.toString('utf8'));
        return;
      }
      const tag = parseFlvTag(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
      socket.tags.push(tag);
      if (socket.firstKeyframeAt === undefined && tagKind(tag) === TagKind.Keyframe) {
        socket.firstKeyframeAt = performance.now();
        this.#delayMs = 300;
      }
    });
    ws.on('close', () => {
      socket.closedAt = performance.now();
      if (this.#stopped) return;
      setTimeout(() => this.#open(), this.#delayMs);
      this.#delayMs = Math.min(this.#delayMs * 1.5, 5000);
    });
  }

  close(): void {
    this.#stopped = true;
    this.#ws?.terminate();
  }
}

/** What is wrong with one socket's tags: video must start on a keyframe and time must run on. */
function streamFaults(tags: FlvTag[]): string[] {
  const faults: string[] = [];
  const kinds = tags.map(tagKind);
  const firstVideo = kinds.findIndex((k) => k === TagKind.Keyframe || k === TagKind.Frame);
  if (firstVideo < 0) faults.push('no video');
  else if (kinds[firstVideo] !== TagKind.Keyframe) faults.push('video does not start on a keyframe');
  else if (kinds.indexOf(TagKind.VideoConfig) > firstVideo || kinds.indexOf(TagKind.VideoConfig) < 0) faults.push('no AVC sequence header before the first frame');
  for (const type of [8, 9]) {
    const media = tags.filter((t, i) => t.type === type && (kinds[i] === TagKind.Keyframe || kinds[i] === TagKind.Frame || kinds[i] === TagKind.Audio));
    for (let i = 1; i < media.length; i++) {
      const step = media[i]!.timestamp - media[i - 1]!.timestamp;
      // 30 fps video and AAC frames every 21 ms: anything past half a second is a hole or a jump.
      if (step < 0 || step > 500) {
        faults.push(`${type === 9 ? 'video' : 'audio'} timestamp ${media[i - 1]!.timestamp} → ${media[i]!.timestamp}`);
        break;
      }
    }
  }
  return faults;
}

describe('the deploy/ reference deployment on loopback: nginx load balancer and RTMP origin/edges, three bridges', () => {
  let certs: TestCertificates;
  let prefix: string;
  let nginx: Child;
  let publisher: Child;
  const bridges: { port: number; edge: number; process: OnairProcess }[] = [];
  let lb: number;
  let ca: Buffer;
  let originPort: number;

  const metrics = async (port: number): Promise<WatchMetrics> => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    if (res.status !== 200) throw new Error(`/metrics of the bridge on ${port}: ${res.status}`);
    return (await res.json()) as WatchMetrics;
  };
  const nginxLog = (): string => readFileSync(join(prefix, 'error.log'), 'utf8').trimEnd().split('\n').slice(-20).join('\n');

  beforeAll(async () => {
    certs = await makeTestCertificates();
    ca = readFileSync(certs.caCert);
    prefix = makeTempDir('onair-deploy-');
    const [http, https, origin, edgeA, edgeB, ...bridgePorts] = await Promise.all(Array.from({ length: 8 }, () => freePort()));
    lb = https!;
    originPort = origin!;
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((name) => `${name}_temp_path ${prefix}/${name};`).join(' ');
    const conf = substitute(readFileSync(join(DEPLOY, 'nginx', 'onair.conf'), 'utf8'), [
      // One process that never switches user (the test is not root everywhere), like the harness's nginx.
      ['user www-data;', 'master_process off;'],
      ['pid /run/onair-nginx.pid;', `pid ${prefix}/nginx.pid;`],
      ['error_log /var/log/nginx/onair-error.log;', `error_log ${prefix}/error.log info;`],
      ['include /etc/nginx/modules-enabled/*.conf;', `load_module ${NGINX_MODULES_DIR}/ngx_rtmp_module.so;`],
      ['access_log /var/log/nginx/onair-access.log;', `access_log ${prefix}/access.log; ${temp}`],
      ['/etc/ssl/onair/fullchain.pem', certs.cert],
      ['/etc/ssl/onair/privkey.pem', certs.key],
      ['listen 80;', `listen 127.0.0.1:${http};`],
      ['listen 443 ssl;', `listen 127.0.0.1:${https} ssl;`],
      ['listen 1935;', `listen 127.0.0.1:${origin};`],
      ['listen 1936;', `listen 127.0.0.1:${edgeA};`],
      ['listen 1937;', `listen 127.0.0.1:${edgeB};`],
      ['rtmp://127.0.0.1:1935/live', `rtmp://127.0.0.1:${origin}/live`],
      ...bridgePorts.map((port, i): [string, string] => [`127.0.0.1:${8081 + i}`, `127.0.0.1:${port}`]),
    ]);
    const confPath = join(prefix, 'nginx.conf');
    writeFileSync(confPath, conf);
    nginx = spawnTracked('nginx', ['-p', prefix, '-c', confPath, '-e', join(prefix, 'error.log'), '-g', 'daemon off;']);
    const alive = (): boolean => nginx.process.exitCode === null;
    try {
      for (const port of [http!, https!, origin!, edgeA!, edgeB!]) await waitForPort(port, 10_000, alive);
    } catch (err) {
      throw new Error(`nginx did not start: ${(err as Error).message}\n${nginx.tail()}`, { cause: err });
    }

    // The bridges: the unit's command with the unit's and the environment file's settings.
    const unit = readFileSync(join(DEPLOY, 'systemd', 'onair.service'), 'utf8');
    expect(unitSettings(unit, 'ExecStart')).toEqual(['/usr/bin/onair serve']);
    expect(unitSettings(unit, 'EnvironmentFile')).toEqual(['/etc/onair/onair.env']);
    const fromUnit = Object.fromEntries(unitSettings(unit, 'Environment').map((e) => e.split('=', 2) as [string, string]));
    const fromFile = environmentFile(readFileSync(join(DEPLOY, 'systemd', 'onair.env'), 'utf8'));
    expect(Object.keys(fromFile).sort()).toEqual(['ONAIR_HOST', 'ONAIR_NO_LOCAL_RTMP', 'ONAIR_PORT', 'ONAIR_PUBLIC_URL', 'ONAIR_TOKEN', 'ONAIR_TRUSTED_PROXY', 'ONAIR_WATCH_UPSTREAM']);
    expect(fromFile['ONAIR_TRUSTED_PROXY']).toBe('127.0.0.1');
    const edges = [edgeA!, edgeA!, edgeB!];
    for (const [i, port] of bridgePorts.entries()) {
      const configDir = join(prefix, `bridge-${i}`);
      const env = {
        ...fromUnit,
        ...fromFile,
        ONAIR_CONFIG_DIR: configDir,
        ONAIR_HOST: '127.0.0.1',
        ONAIR_PORT: String(port),
        ONAIR_TOKEN: TOKEN,
        ONAIR_PUBLIC_URL: `https://127.0.0.1:${https}`,
        ONAIR_WATCH_UPSTREAM: substitute(fromFile['ONAIR_WATCH_UPSTREAM']!, [['127.0.0.1:1936', `127.0.0.1:${edges[i]}`]]),
      };
      bridges.push({ port, edge: edges[i]!, process: startOnair(['serve'], { env, timeoutMs: 170_000 }) });
    }
    await Promise.all(bridges.map((b) => waitForPort(b.port, 20_000, () => b.process.process.exitCode === null)));

    // 1 Mbps: 640x360 H.264 (a keyframe every 2 s) and AAC, looped into the origin as an encoder would.
    const file = join(prefix, 'show.flv');
    await runChecked('ffmpeg', [
      '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-t', '10', '-map', '0:v', '-map', '1:a',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-bf', '0', '-g', '60', '-keyint_min', '60', '-sc_threshold', '0',
      '-b:v', '900k', '-maxrate', '900k', '-bufsize', '1800k', '-c:a', 'aac', '-ac', '2', '-ar', '48000', '-b:a', '96k',
      '-f', 'flv', file,
    ], { timeoutMs: 120_000 });
    publisher = spawnTracked('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', file, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${origin}/live/${STREAM}`]);
  }, 180_000);

  afterAll(async () => {
    await publisher?.stop();
    await killOnairProcesses();
    await nginx?.stop('SIGQUIT');
    if (prefix !== undefined) removeTempDir(prefix);
    certs?.dispose();
  });

  it.skipIf(!existsSync('/usr/bin/systemd-analyze'))('the unit passes systemd-analyze verify without a warning', async () => {
    const dir = join(prefix, 'unit');
    const unit = substitute(readFileSync(join(DEPLOY, 'systemd', 'onair.service'), 'utf8'), [['/usr/bin/onair', ONAIR_BIN]]);
    mkdirSync(dir);
    writeFileSync(join(dir, 'onair.service'), unit);
    const { stderr } = await run('systemd-analyze', ['verify', join(dir, 'onair.service')], { timeout: 30_000 });
    expect(stderr).toBe('');
  });

  it(`${VIEWERS} viewers through the load balancer: one upstream per bridge, keyframe-started continuous FLV; a bridge killed, its viewers play again from the others within 3 s`, async () => {
    const url = `wss://127.0.0.1:${lb}/watch-ws/live/${STREAM}`;
    const viewers = Array.from({ length: VIEWERS }, () => new Viewer(url, ca));
    try {
      await waitFor('every viewer to play', () => (viewers.every((v) => v.current.firstKeyframeAt !== undefined && v.current.tags.length > 60) ? true : undefined), 40_000, 100).catch(
        (err: unknown) => {
          throw new Error(`${(err as Error).message}: ${viewers.filter((v) => v.current.firstKeyframeAt === undefined).length} without a keyframe\n${nginxLog()}`, { cause: err });
        },
      );
      const before = await Promise.all(bridges.map((b) => metrics(b.port)));
      console.log(`viewers per bridge: ${before.map((m) => m.viewers.ws).join(', ')}`);
      expect(before.reduce((n, m) => n + m.viewers.ws, 0)).toBe(VIEWERS);
      for (const m of before) {
        // Every bridge carries viewers, and holds one upstream for all of them.
        expect(m.viewers.ws).toBeGreaterThan(0);
        expect(m.upstreams).toBe(1);
        expect(m.streams).toHaveLength(1);
        expect(m.streams[0]).toMatchObject({ upstreamConnected: true, upstreamSessions: 1 });
      }
      for (const v of viewers) expect(streamFaults(v.current.tags), 'a viewer before the kill').toEqual([]);

      // kill -9 the bridge with the most viewers.
      const victim = before.reduce((best, m, i) => (m.viewers.ws > before[best]!.viewers.ws ? i : best), 0);
      const killedAt = performance.now();
      bridges[victim]!.process.kill('SIGKILL');
      const moved = await waitFor(
        "the killed bridge's viewers to notice",
        () => {
          const dropped = viewers.filter((v) => v.sockets.some((s) => s.closedAt !== undefined && s.closedAt >= killedAt));
          return dropped.length >= before[victim]!.viewers.ws ? dropped : undefined;
        },
        5_000,
      );
      expect(moved).toHaveLength(before[victim]!.viewers.ws);
      const back = await waitFor('the moved viewers to play again', () => {
        const times = moved.map((v) => v.current.firstKeyframeAt);
        return times.every((t) => t !== undefined && t > killedAt) ? times.map((t) => t! - killedAt) : undefined;
      }, 10_000);
      const slowest = Math.max(...back);
      console.log(`after kill -9 of a bridge: ${moved.length} viewers playing again on the others after ${Math.min(...back).toFixed(0)}-${slowest.toFixed(0)} ms`);
      expect(slowest).toBeLessThan(3000);

      await new Promise((resolve) => setTimeout(resolve, 3000));
      const after = await Promise.all(bridges.filter((_, i) => i !== victim).map((b) => metrics(b.port)));
      expect(after.reduce((n, m) => n + m.viewers.ws, 0)).toBe(VIEWERS);
      for (const m of after) expect([m.upstreams, m.streams[0]?.upstreamSessions]).toEqual([1, 1]);
      for (const v of viewers) {
        expect(streamFaults(v.current.tags), 'a viewer after the kill').toEqual([]);
        expect(v.current.tags.length).toBeGreaterThan(60);
      }
    } finally {
      for (const v of viewers) v.close();
    }
  }, 90_000);

  it('HTTP-FLV through the load balancer decodes (ffprobe), and a studio socket resumes on the bridge its ?session= hashes to', async () => {
    const { stdout } = await run('ffprobe', ['-v', 'error', '-read_intervals', '%+3', '-count_frames', '-show_streams', '-of', 'json', `https://127.0.0.1:${lb}/live/${STREAM}.flv`], { timeout: 30_000 });
    const streams = (JSON.parse(stdout) as { streams: { codec_name: string; width?: number; nb_read_frames?: string }[] }).streams;
    expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    const video = streams.find((s) => s.codec_name === 'h264');
    expect(video?.width).toBe(640);
    expect(Number(video?.nb_read_frames)).toBeGreaterThan(30);

    // Without affinity, least_conn would send a second socket elsewhere two times in three: five
    // sessions that all resume say the hash holds.
    const studio = (session: string): Promise<{ ws: WebSocket; next: () => Promise<StudioServerMessage> }> =>
      new Promise((resolve, reject) => {
        const ws = new WebSocket(`wss://127.0.0.1:${lb}/studio-ws?session=${session}`, { ca, headers: { authorization: `Bearer ${TOKEN}` } });
        const queue: StudioServerMessage[] = [];
        const waiting: ((m: StudioServerMessage) => void)[] = [];
        ws.on('message', (data, isBinary) => {
          if (isBinary) return;
          const msg = parseStudioServerMessage((data as Buffer).toString('utf8'));
          const w = waiting.shift();
          if (w !== undefined) w(msg);
          else queue.push(msg);
        });
        ws.once('error', reject);
        ws.once('open', () =>
          resolve({ ws, next: () => new Promise((r) => (queue.length > 0 ? r(queue.shift()!) : waiting.push(r))) }),
        );
      });
    for (let i = 0; i < 5; i++) {
      const affinity = `a${i}${Math.random().toString(16).slice(2, 10)}`;
      const first = await studio(affinity);
      expect((await first.next()).type).toBe('welcome');
      first.ws.send(JSON.stringify({ type: 'start', destinations: [{ id: 'origin', url: `rtmp://127.0.0.1:${originPort}/live/studio${i}` }] }));
      let session: StudioServerMessage;
      do session = await first.next();
      while (session.type !== 'session');
      first.ws.terminate();
      const second = await studio(affinity);
      expect((await second.next()).type).toBe('welcome');
      second.ws.send(JSON.stringify({ type: 'resume', session: session.id, token: session.token }));
      let answer: StudioServerMessage;
      do answer = await second.next();
      while (answer.type === 'status');
      expect(answer, `session ${i}`).toMatchObject({ type: 'resumed' });
      second.ws.send(JSON.stringify({ type: 'stop' }));
      second.ws.close();
    }
  }, 60_000);
});

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseFlvTag, parseStudioServerMessage, parseWatchServerMessage, TagKind, tagKind, type FlvTag, type StudioServerMessage } from '@onair/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { WatchMetrics } from '../src/watch/index.js';
import { startDeployment, unitForVerify, type DeployedBridge, type Deployment } from './harness/deploy.js';
import { waitFor, type Child } from './harness/proc.js';

// The reference deployment of deploy/ on loopback, run from its own files (harness/deploy.ts):
// nginx as the TLS load balancer with the RTMP origin and two edges, three bridges as the systemd
// unit starts them. docs/deploy.md, "The test".

const run = promisify(execFile);
const VIEWERS = 60;
const STREAM = 'show';

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
  let deployment: Deployment;
  let publisher: Child;
  let lb: number;
  let ca: Buffer;

  const metrics = async (bridge: DeployedBridge): Promise<WatchMetrics> => (await deployment.metrics(bridge)) as WatchMetrics;

  beforeAll(async () => {
    deployment = await startDeployment();
    ({ lbPort: lb, ca } = deployment);
    publisher = await deployment.publish(STREAM);
  }, 180_000);

  afterAll(async () => {
    await publisher?.stop();
    await deployment?.dispose();
  });

  it.skipIf(!existsSync('/usr/bin/systemd-analyze'))('the unit passes systemd-analyze verify without a warning', async () => {
    const { stderr } = await run('systemd-analyze', ['verify', unitForVerify(join(deployment.prefix, 'unit'))], { timeout: 30_000 });
    expect(stderr).toBe('');
  });

  it(`${VIEWERS} viewers through the load balancer: one upstream per bridge, keyframe-started continuous FLV; a bridge killed, its viewers play again from the others within 3 s`, async () => {
    const url = `wss://127.0.0.1:${lb}/watch-ws/live/${STREAM}`;
    const viewers = Array.from({ length: VIEWERS }, () => new Viewer(url, ca));
    try {
      await waitFor('every viewer to play', () => (viewers.every((v) => v.current.firstKeyframeAt !== undefined && v.current.tags.length > 60) ? true : undefined), 40_000, 100).catch(
        (err: unknown) => {
          throw new Error(`${(err as Error).message}: ${viewers.filter((v) => v.current.firstKeyframeAt === undefined).length} without a keyframe\n${deployment.nginxLogTail()}`, { cause: err });
        },
      );
      const bridges = deployment.bridges;
      const before = await Promise.all(bridges.map(metrics));
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
      bridges[victim]!.child.process.kill('SIGKILL');
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
      const attempts = moved.map((v) => v.sockets.filter((s) => s.openedAt > killedAt).length);
      const closedAfter = moved.map((v) => v.sockets.find((s) => s.closedAt !== undefined && s.closedAt >= killedAt)!.closedAt! - killedAt);
      console.log(
        `after kill -9 of a bridge: ${moved.length} viewers playing again on the others after ${Math.min(...back).toFixed(0)}-${slowest.toFixed(0)} ms ` +
          `(their sockets closed after ${Math.min(...closedAfter).toFixed(0)}-${Math.max(...closedAfter).toFixed(0)} ms; ${Math.max(...attempts)} attempts at most)`,
      );
      expect(slowest).toBeLessThan(3000);

      await new Promise((resolve) => setTimeout(resolve, 3000));
      const after = await Promise.all(bridges.filter((_, i) => i !== victim).map(metrics));
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
        const ws = new WebSocket(`wss://127.0.0.1:${lb}/studio-ws?session=${session}`, { ca, headers: { authorization: `Bearer ${deployment.token}` } });
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
      first.ws.send(JSON.stringify({ type: 'start', destinations: [{ id: 'origin', url: `rtmp://127.0.0.1:${deployment.originPort}/live/studio${i}` }] }));
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

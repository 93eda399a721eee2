import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  parseFlvTag,
  parseStudioServerMessage,
  parseWatchServerMessage,
  STUDIO_WS_PATH,
  studioSocketUrl,
  TagKind,
  tagKind,
  type FlvTag,
  type StudioServerMessage,
} from '@onair/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startDeployment, unitForVerify, type DeployedBridge, type Deployment } from './harness/deploy.js';
import { promValue } from './harness/prometheus.js';
import { waitFor, type Child } from './harness/proc.js';

// The reference deployment of deploy/ on loopback, run from its own files (harness/deploy.ts):
// nginx as the TLS load balancer with the RTMP origin and two edges, three bridges as the systemd
// unit starts them. docs/deploy.md, "The test".

const run = promisify(execFile);
const VIEWERS = 60;
const STREAM = 'show';

/**
 * A watch viewer that behaves like the watch page's transport: told `reconnect` (a draining
 * bridge) it opens a new socket at once; on a close it reconnects after 0.3 s, ×1.5, at most 5 s;
 * both through the load balancer. It records every socket's tags apart.
 */
class Viewer {
  readonly sockets: { openedAt: number; closedAt?: number; told?: boolean; tags: FlvTag[]; firstKeyframeAt?: number }[] = [];
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
        const msg = parseWatchServerMessage(bytes.toString('utf8'));
        if (msg.type === 'reconnect' && this.#ws === ws && !this.#stopped) {
          socket.told = true;
          socket.closedAt = performance.now();
          this.#ws = undefined;
          ws.close();
          this.#open();
        }
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
      if (this.#ws !== ws) return;
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

/** A studio socket whose messages are read in order with next(). */
interface StudioSocket {
  ws: WebSocket;
  next(): Promise<StudioServerMessage>;
}

function openStudio(url: string, options: WebSocket.ClientOptions): Promise<StudioSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
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
    ws.once('open', () => resolve({ ws, next: () => new Promise((r) => (queue.length > 0 ? r(queue.shift()!) : waiting.push(r))) }));
  });
}

describe('the deploy/ reference deployment on loopback: nginx load balancer and RTMP origin/edges, three bridges', () => {
  let deployment: Deployment;
  let publisher: Child;
  let lb: number;
  let ca: Buffer;

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

  it('HTTP-FLV through the load balancer decodes (ffprobe), and a studio socket resumes on the bridge its affinity id hashes to', async () => {
    const { stdout } = await run('ffprobe', ['-v', 'error', '-read_intervals', '%+3', '-count_frames', '-show_streams', '-of', 'json', `https://127.0.0.1:${lb}/live/${STREAM}.flv`], { timeout: 30_000 });
    const streams = (JSON.parse(stdout) as { streams: { codec_name: string; width?: number; nb_read_frames?: string }[] }).streams;
    expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    const video = streams.find((s) => s.codec_name === 'h264');
    expect(video?.width).toBe(640);
    // At least a second's worth: on a loaded machine the 3 s window can close on a timestamp jump
    // between the GOP the bridge keeps and the live edge.
    expect(Number(video?.nb_read_frames)).toBeGreaterThanOrEqual(30);

    const studio = (url: string): Promise<StudioSocket> => openStudio(url, { ca, headers: { authorization: `Bearer ${deployment.token}` } });
    // The URLs the page makes (studioSocketUrl). Without the hash, least_conn would send the
    // second socket elsewhere two times in three: five sessions that all resume say it holds.
    const base = `wss://127.0.0.1:${lb}${STUDIO_WS_PATH}`;
    for (let i = 0; i < 5; i++) {
      const affinity = randomBytes(8).toString('hex');
      const first = await studio(studioSocketUrl(base, affinity));
      expect((await first.next()).type).toBe('welcome');
      first.ws.send(JSON.stringify({ type: 'start', destinations: [{ id: 'origin', url: `rtmp://127.0.0.1:${deployment.originPort}/live/studio${i}` }] }));
      let session: StudioServerMessage;
      do session = await first.next();
      while (session.type !== 'session');
      first.ws.terminate();
      const second = await studio(studioSocketUrl(base, affinity, session.id));
      expect((await second.next()).type).toBe('welcome');
      second.ws.send(JSON.stringify({ type: 'resume', session: session.id, token: session.token }));
      let answer: StudioServerMessage;
      do answer = await second.next();
      while (answer.type === 'status');
      expect(answer, `session ${i}`).toMatchObject({ type: 'resumed' });
      second.ws.send(JSON.stringify({ type: 'stop' }));
    }
    // Stopped sessions end, so no bridge has a studio session to wait for when it drains below.
    await waitFor('every studio session to end', async () => {
      const left = await Promise.all(deployment.bridges.map(async (b) => promValue(await deployment.metrics(b), 'onair_studio_sessions')));
      return left.every((n) => n === 0) ? true : undefined;
    }, 15_000, 200);
  }, 60_000);

  it(`${VIEWERS} viewers through the load balancer: one upstream per bridge, keyframe-started continuous FLV; kill -9 of a bridge and SIGTERM of another, their viewers play again from the others within 3 s`, async () => {
    const url = `wss://127.0.0.1:${lb}/watch-ws/live/${STREAM}`;
    const viewers = Array.from({ length: VIEWERS }, () => new Viewer(url, ca));
    const bridges = deployment.bridges;
    /** Waits for the viewers with a socket closed after `since` to have a keyframe on a new one; ms after `since` each. */
    const playingAgain = async (since: number, count: number, what: string): Promise<{ moved: Viewer[]; ms: number[] }> => {
      const moved = await waitFor(`${what}: ${count} viewers to lose their socket`, () => {
        const left = viewers.filter((v) => v.sockets.some((s) => s.closedAt !== undefined && s.closedAt >= since));
        return left.length >= count ? left : undefined;
      }, 5_000);
      expect(moved, what).toHaveLength(count);
      const ms = await waitFor(`${what}: the moved viewers to play again`, () => {
        const times = moved.map((v) => v.current.firstKeyframeAt);
        return times.every((t) => t !== undefined && t > since) ? times.map((t) => t! - since) : undefined;
      }, 10_000);
      const attempts = moved.map((v) => v.sockets.filter((s) => s.openedAt > since).length);
      const closedAfter = moved.map((v) => v.sockets.find((s) => s.closedAt !== undefined && s.closedAt >= since)!.closedAt! - since);
      console.log(
        `${what}: ${moved.length} viewers playing again on the others after ${Math.min(...ms).toFixed(0)}-${Math.max(...ms).toFixed(0)} ms ` +
          `(their sockets closed after ${Math.min(...closedAfter).toFixed(0)}-${Math.max(...closedAfter).toFixed(0)} ms; ${Math.max(...attempts)} attempts at most)`,
      );
      return { moved, ms };
    };
    const expectOneUpstreamEach = async (live: readonly DeployedBridge[], what: string): Promise<number[]> => {
      const states = await Promise.all(live.map((b) => deployment.watchState(b)));
      expect(states.reduce((n, s) => n + s.viewers, 0), what).toBe(VIEWERS);
      // Each bridge holds one upstream for all its viewers, and has not needed another.
      for (const s of states) expect([s.upstreams, s.streams, s.upstreamReconnects], what).toEqual([1, 1, 0]);
      for (const v of viewers) expect(streamFaults(v.current.tags), what).toEqual([]);
      return states.map((s) => s.viewers);
    };
    try {
      await waitFor('every viewer to play', () => (viewers.every((v) => v.current.firstKeyframeAt !== undefined && v.current.tags.length > 60) ? true : undefined), 40_000, 100).catch(
        (err: unknown) => {
          throw new Error(`${(err as Error).message}: ${viewers.filter((v) => v.current.firstKeyframeAt === undefined).length} without a keyframe\n${deployment.nginxLogTail()}`, { cause: err });
        },
      );
      const before = await expectOneUpstreamEach(bridges, 'three bridges');
      console.log(`viewers per bridge: ${before.join(', ')}`);
      // Every bridge carries viewers: the one upstream each is not one for all.
      for (const n of before) expect(n).toBeGreaterThan(0);

      // kill -9 of the bridge with the most viewers.
      const killed = before.indexOf(Math.max(...before));
      const killedAt = performance.now();
      bridges[killed]!.child.process.kill('SIGKILL');
      const afterKill = await playingAgain(killedAt, before[killed]!, 'kill -9 of a bridge');
      expect(Math.max(...afterKill.ms)).toBeLessThan(3000);
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const two = bridges.filter((_, i) => i !== killed);
      const held = await expectOneUpstreamEach(two, 'two bridges after the kill');

      // SIGTERM of the busier of the other two, with a studio live on it: it drains, its viewers
      // are told to move, and it exits 0 once the studio stops.
      const drained = two[held.indexOf(Math.max(...held))]!;
      const live = await openStudio(`ws://127.0.0.1:${drained.port}${STUDIO_WS_PATH}`, { headers: { authorization: `Bearer ${deployment.token}` } });
      live.ws.send(JSON.stringify({ type: 'start', destinations: [{ id: 'origin', url: `rtmp://127.0.0.1:${deployment.originPort}/live/draining` }] }));
      let started: StudioServerMessage;
      do started = await live.next();
      while (started.type !== 'session');
      expect(await deployment.readyz(drained)).toBe(200);
      const exited = drained.child.exited;
      const termAt = performance.now();
      drained.child.process.kill('SIGTERM');
      await waitFor('/readyz to fail', async () => ((await deployment.readyz(drained)) === 503 ? true : undefined), 5_000, 20);
      const notReadyMs = performance.now() - termAt;
      const afterTerm = await playingAgain(termAt, Math.max(...held), 'SIGTERM of a bridge');
      const told = afterTerm.moved.filter((v) => v.sockets.some((s) => s.told === true)).length;
      console.log(`/readyz 503 ${notReadyMs.toFixed(0)} ms after SIGTERM; ${told} of the ${afterTerm.moved.length} viewers told to reconnect`);
      expect(notReadyMs).toBeLessThan(1000);
      expect(told).toBe(afterTerm.moved.length);
      expect(Math.max(...afterTerm.ms)).toBeLessThan(3000);
      // Still draining while the studio is live; its stop lets the bridge go.
      expect(drained.child.process.exitCode).toBeNull();
      live.ws.send(JSON.stringify({ type: 'stop' }));
      expect(await Promise.race([exited, new Promise((resolve) => setTimeout(() => resolve('still running 20 s after the stop'), 20_000))])).toEqual({ code: 0, signal: null });
      await new Promise((resolve) => setTimeout(resolve, 2000));
      await expectOneUpstreamEach(two.filter((b) => b !== drained), 'the last bridge');
      for (const v of viewers) expect(v.current.tags.length).toBeGreaterThan(30);
    } finally {
      for (const v of viewers) v.close();
    }
  }, 120_000);
});

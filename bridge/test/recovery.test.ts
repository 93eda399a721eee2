import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { FlvReader, TagKind, flvHeader, parseFlvTag, parseWatchServerMessage, tagKind, type WatchServerMessage, type WatchStatusMessage } from '@onair/shared';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { WatchService, type WatchMetrics } from '../src/watch/watch-service.js';
import { flvFixture } from './harness/fixtures.js';
import { ffprobeStreams } from './harness/judge.js';
import { startNginxRtmp, type NginxRtmp } from './harness/nginx.js';
import { freePort, waitForPort } from './harness/ports.js';
import { makeTempDir, spawnTracked, waitFor, type Child } from './harness/proc.js';
import { startChaosProxy, type ChaosProxy } from './harness/proxy.js';
import { killOnairProcesses, runOnair, startOnair, type OnairProcess } from './harness/run.js';
import { StudioClient } from './harness/studio-client.js';

/** A watch viewer on a WebSocket: every binary frame (one FLV tag) with its arrival time. */
interface Viewer {
  ws: WebSocket;
  frames: { at: number; bytes: Uint8Array; kind: TagKind }[];
  messages: WatchServerMessage[];
  closed: boolean;
}

function openViewer(url: string): Viewer {
  const ws = new WebSocket(url);
  const viewer: Viewer = { ws, frames: [], messages: [], closed: false };
  ws.on('error', () => undefined);
  ws.on('close', () => (viewer.closed = true));
  ws.on('message', (data, isBinary) => {
    const b = data as Buffer;
    if (!isBinary) {
      viewer.messages.push(parseWatchServerMessage(b.toString('utf8')));
      return;
    }
    const bytes = new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
    viewer.frames.push({ at: performance.now(), bytes, kind: tagKind(parseFlvTag(bytes)) });
  });
  return viewer;
}

const isMedia = (kind: TagKind): boolean => kind === TagKind.Keyframe || kind === TagKind.Frame || kind === TagKind.Audio;

/** ffprobe decodes these frames (FLV file form) as H.264 + AAC; returns the decoded video frame count. */
async function judgeFrames(frames: readonly { bytes: Uint8Array }[], file: string): Promise<number> {
  writeFileSync(file, Buffer.concat([flvHeader({ audio: true, video: true }), ...frames.map((f) => f.bytes)]));
  const streams = await ffprobeStreams(file, { decode: true });
  // The relay stamps onMetaData with the continued timeline: ffmpeg lists one past 0 as a text stream.
  const media = streams.filter((s) => s.codec_type === 'video' || s.codec_type === 'audio');
  expect(media.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
  return Number(media.find((s) => s.codec_type === 'video')?.nb_read_frames ?? 0);
}

function publishLoop(file: string, url: string): Child {
  return spawnTracked('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', file, '-c', 'copy', '-f', 'flv', url]);
}

/** An FLV whose only tag is an onMetaData with a strict array announcing 2^32−1 items it does not hold. */
function badMetadataFlv(file: string): string {
  const name = Buffer.from('onMetaData');
  const body = Buffer.concat([Buffer.from([0x02, 0x00, name.length]), name, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff])]);
  const tag = Buffer.alloc(11);
  tag[0] = 18;
  tag.writeUIntBE(body.length, 1, 3);
  const previous = Buffer.alloc(4);
  previous.writeUInt32BE(tag.length + body.length);
  writeFileSync(file, Buffer.concat([Buffer.from(flvHeader({ audio: true, video: true })), tag, body, previous]));
  return file;
}

/** The embedded server's child processes of `pid` running now (Linux /proc). */
function localRtmpChildren(pid: number): string[] {
  const read = (path: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return '';
    }
  };
  return read(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/).filter((child) => child !== '' && read(`/proc/${child}/cmdline`).includes('local-rtmp/child.js'));
}

interface Serve {
  onair: OnairProcess;
  base: string;
  rtmp: string;
  metrics(): Promise<WatchMetrics>;
}

async function startServeProcess(options: { rtmpPort?: number; whileStarting?: (onairPid: number) => Promise<void> } = {}): Promise<Serve> {
  const port = await freePort();
  const rtmpPort = options.rtmpPort ?? (await freePort());
  const webRoot = makeTempDir('onair-web-');
  writeFileSync(join(webRoot, 'index.html'), '<!doctype html><title>onair test</title>\n');
  const onair = startOnair(['serve', '--port', String(port), '--local-rtmp-port', String(rtmpPort), '--web-root', webRoot], { timeoutMs: 180_000 });
  await options.whileStarting?.(onair.process.pid!);
  await waitForPort(port, 60_000, () => onair.process.exitCode === null);
  const base = `http://127.0.0.1:${port}`;
  return {
    onair,
    base,
    rtmp: `rtmp://127.0.0.1:${rtmpPort}/live`,
    metrics: async () => (await fetch(`${base}/metrics.json`)).json() as Promise<WatchMetrics>,
  };
}

describe('the embedded RTMP server runs in a supervised child process', () => {
  afterEach(killOnairProcesses);

  it('a malformed onMetaData crashes the child, not the bridge: it is restarted and a new publish plays back', async () => {
    const serve = await startServeProcess();
    const dir = makeTempDir('onair-recovery-');
    const first = (await serve.metrics()).localRtmp;
    expect(first).toMatchObject({ state: 'up', restarts: 0, lastExit: null });

    // Before the child process, this ended `onair serve` with node-media-server's RangeError.
    await runOnair(['publish', badMetadataFlv(join(dir, 'badmeta.flv')), `${serve.rtmp}/badmeta`], { timeoutMs: 20_000 });
    const after = await waitFor('the child to be restarted', async () => {
      const local = (await serve.metrics()).localRtmp;
      return local?.state === 'up' && local.restarts === 1 ? local : undefined;
    }, 20_000);
    expect(after.pid).not.toBe(first?.pid);
    expect(after.lastExit).toMatchObject({ code: 70, signal: null, reason: expect.stringMatching(/ERR_BUFFER_OUT_OF_BOUNDS/) });
    expect(serve.onair.process.exitCode).toBeNull();
    expect(serve.onair.stderr()).toMatch(/local RTMP server crashed \(RangeError \[ERR_BUFFER_OUT_OF_BOUNDS\].*\); restarting in/);
    expect(serve.onair.stderr()).toMatch(/local RTMP server is back/);
    for (const path of ['/', '/api/config', '/metrics.json']) expect((await fetch(`${serve.base}${path}`)).status, path).toBe(200);

    // Crashing again at once, it is restarted again, after a longer wait.
    await runOnair(['publish', join(dir, 'badmeta.flv'), `${serve.rtmp}/badmeta2`], { timeoutMs: 20_000 });
    await waitFor('the second restart', async () => ((await serve.metrics()).localRtmp?.restarts === 2 && (await serve.metrics()).localRtmp?.state === 'up') || undefined, 20_000);
    const delays = [...serve.onair.stderr().matchAll(/restarting in ([\d.]+) s/g)].map((m) => Number(m[1]));
    expect(delays).toHaveLength(2);
    expect(delays[0]).toBeLessThan(0.5);
    expect(delays[1]).toBeGreaterThanOrEqual(1);

    // A real publisher on the restarted server, watched over HTTP-FLV and judged by ffprobe.
    const publisher = publishLoop(await flvFixture({ seconds: 4 }), `${serve.rtmp}/after`);
    try {
      await waitFor('the stream warm in the bridge', async () => ((await serve.metrics()).streams.find((s) => s.source.includes('/live/'))?.tagsIn ?? 0) > 50 || undefined, 20_000);
      const abort = new AbortController();
      const res = await fetch(`${serve.base}/live/after.flv`, { signal: abort.signal });
      expect(res.status).toBe(200);
      const chunks: Uint8Array[] = [];
      let bytes = 0;
      const reader = res.body!.getReader();
      const until = performance.now() + 3000;
      while (performance.now() < until && bytes < 8 * 1024 * 1024) {
        const { value, done } = await reader.read();
        if (done) break;
        chunks.push(value);
        bytes += value.length;
      }
      abort.abort();
      const file = join(dir, 'after.flv');
      writeFileSync(file, Buffer.concat(chunks));
      const streams = await ffprobeStreams(file, { decode: true });
      expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
      expect(Number(streams.find((s) => s.codec_type === 'video')?.nb_read_frames)).toBeGreaterThan(30);
    } finally {
      await publisher.stop();
    }
  });

  it('kill -9 of the child mid-stream: the bridge stays up, the child is back within seconds, and the same viewer gets media again after a republish', async () => {
    const serve = await startServeProcess();
    const dir = makeTempDir('onair-recovery-');
    const file = await flvFixture({ seconds: 4 });
    const url = `${serve.rtmp}/crash`;
    const publisher = publishLoop(file, url);
    let republisher: Child | undefined;
    const viewer = openViewer(`${serve.base.replace(/^http/, 'ws')}/watch-ws/live/crash`);
    try {
      await waitFor('media at the viewer', () => viewer.frames.filter((f) => isMedia(f.kind)).length > 60 || undefined, 20_000);
      const { pid } = (await serve.metrics()).localRtmp!;
      expect(pid).toBeGreaterThan(0);
      const killedAt = performance.now();
      process.kill(pid!, 'SIGKILL');
      // The publisher's connection died with the server.
      await waitFor('the publisher to fail', () => publisher.process.exitCode ?? publisher.process.signalCode ?? undefined, 20_000);

      const upAt = await waitFor('the child back', async () => {
        const local = (await serve.metrics()).localRtmp;
        return local?.state === 'up' && local.restarts === 1 ? performance.now() : undefined;
      }, 20_000, 20);
      expect((await serve.metrics()).localRtmp).toMatchObject({ lastExit: { signal: 'SIGKILL' } });
      expect(upAt - killedAt).toBeLessThan(5000);
      const reconnectedAt = await waitFor('the relay back on the new child', async () => {
        const stream = (await serve.metrics()).streams.find((s) => s.source.endsWith('/live/***'));
        return stream !== undefined && stream.upstreamSessions >= 2 && stream.upstreamConnected ? performance.now() : undefined;
      }, 20_000, 20);

      const before = viewer.frames.length;
      republisher = publishLoop(file, url);
      const mediaAt = await waitFor('media again at the same viewer', () => viewer.frames.slice(before).find((f) => isMedia(f.kind))?.at, 20_000, 5);
      await waitFor('two seconds of media after the republish', () => viewer.frames.slice(before).filter((f) => isMedia(f.kind)).length > 150 || undefined, 20_000);
      console.log(
        `local RTMP child: back ${(upAt - killedAt).toFixed(0)} ms after kill -9; watch upstream reconnected ${(reconnectedAt - upAt).toFixed(0)} ms after it was back; ` +
          `first media at the viewer ${(mediaAt - upAt).toFixed(0)} ms after it was back (republished then)`,
      );
      expect(viewer.closed).toBe(false);
      expect(viewer.messages.filter((m) => m.type === 'welcome')).toHaveLength(1);
      const states = viewer.messages.filter((m): m is WatchStatusMessage => m.type === 'status').map((m) => m.state);
      expect(states.slice(states.indexOf('waiting'))).toContain('live');
      expect(await judgeFrames(viewer.frames.slice(before), join(dir, 'after-restart.flv'))).toBeGreaterThan(30);
      expect(serve.onair.process.exitCode).toBeNull();
    } finally {
      viewer.ws.close();
      await publisher.stop();
      await republisher?.stop();
    }
  });

  it('kill -9 of the child under a studio session: its destination on the embedded server is live again within 3 s of the child being back, and the viewer gets media by itself', async () => {
    const serve = await startServeProcess();
    const dir = makeTempDir('onair-recovery-studio-');
    const port = Number(new URL(serve.base).port);
    const tags = new FlvReader().push(readFileSync(await flvFixture({ seconds: 20 })));
    const studio = new StudioClient(port);
    const viewer = openViewer(`${serve.base.replace(/^http/, 'ws')}/watch-ws/live/studiocrash`);
    try {
      await studio.start([{ id: 'local', url: `${serve.rtmp}/studiocrash` }]);
      await studio.waitState('local', 'live');
      const sending = studio.sendTags(tags, true);
      await waitFor('media at the viewer', () => viewer.frames.filter((f) => isMedia(f.kind)).length > 60 || undefined, 20_000);
      const { pid } = (await serve.metrics()).localRtmp!;
      process.kill(pid!, 'SIGKILL');
      await studio.waitState('local', 'retrying', 10_000);
      const upAt = await waitFor('the child back', async () => {
        const local = (await serve.metrics()).localRtmp;
        return local?.state === 'up' && local.restarts === 1 ? performance.now() : undefined;
      }, 20_000, 20);
      const before = viewer.frames.length;
      await studio.waitState('local', 'live', 10_000);
      const liveAt = performance.now();
      const mediaAt = await waitFor('media again at the same viewer', () => viewer.frames.slice(before).find((f) => isMedia(f.kind))?.at, 20_000, 5);
      console.log(`studio destination on the embedded server live again ${(liveAt - upAt).toFixed(0)} ms after the child was back; first media at the viewer ${(mediaAt - upAt).toFixed(0)} ms after`);
      expect(liveAt - upAt).toBeLessThanOrEqual(3000);
      await waitFor('a second of media after the restart', () => viewer.frames.slice(before).filter((f) => isMedia(f.kind)).length > 60 || undefined, 20_000);
      expect(await judgeFrames(viewer.frames.slice(before), join(dir, 'after-restart.flv'))).toBeGreaterThan(20);
      expect(viewer.closed).toBe(false);
      expect(serve.onair.process.exitCode).toBeNull();
      await sending;
      await studio.stop();
    } finally {
      studio.close();
      viewer.ws.close();
    }
  });

  it('a port taken while the child restarts: the bridge stays up and retries until it is free', async () => {
    const serve = await startServeProcess();
    const port = Number(new URL(serve.rtmp).port);
    const { pid } = (await serve.metrics()).localRtmp!;
    process.kill(pid!, 'SIGKILL');
    const squatter = createNetServer();
    // The dead child's listener goes as the kernel reaps it: take the port as soon as it is free.
    await waitFor('the port', () => new Promise<true | undefined>((resolve) => {
      squatter.once('error', () => resolve(undefined));
      squatter.listen(port, '127.0.0.1', () => resolve(true));
    }), 5000, 5);
    try {
      const failed = await waitFor('a failed restart', async () => {
        const local = (await serve.metrics()).localRtmp;
        return local !== undefined && /cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/.test(local.lastExit?.reason ?? '') ? local : undefined;
      }, 20_000);
      expect(failed).toMatchObject({ state: 'restarting', pid: null, lastExit: { code: 71, upMs: 0 } });
      expect((await fetch(`${serve.base}/api/config`)).status).toBe(200);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
    const up = await waitFor('the child back', async () => {
      const local = (await serve.metrics()).localRtmp;
      return local?.state === 'up' ? local : undefined;
    }, 20_000);
    expect(up.restarts).toBeGreaterThanOrEqual(2);
    expect(serve.onair.process.exitCode).toBeNull();
  });

  it('the child dies with the bridge, even when the bridge is killed', async () => {
    const serve = await startServeProcess();
    const { pid } = (await serve.metrics()).localRtmp!;
    const alive = (p: number): boolean => {
      try {
        process.kill(p, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(alive(pid!)).toBe(true);
    serve.onair.kill('SIGKILL');
    await serve.onair.result;
    await waitFor('the child to exit', () => !alive(pid!) || undefined, 10_000);
  });

  it('a new onair waits a moment for a local RTMP port that a dying one still holds', async () => {
    const rtmpPort = await freePort();
    const holder = createNetServer();
    await new Promise<void>((resolve) => holder.listen(rtmpPort, '127.0.0.1', resolve));
    const serve = await startServeProcess({
      rtmpPort,
      // Free the port once onair has tried it twice (two child processes seen).
      whileStarting: async (onairPid) => {
        const children = new Set<string>();
        await waitFor('a second attempt at the port', () => {
          for (const pid of localRtmpChildren(onairPid)) children.add(pid);
          return children.size >= 2 || undefined;
        }, 20_000, 10);
        holder.close();
      },
    });
    await waitFor('the child up', async () => ((await serve.metrics()).localRtmp?.state === 'up' ? true : undefined), 20_000);
    expect(serve.onair.stderr()).not.toMatch(/PORT_IN_USE|is back/);
  });
});

describe('WatchService.retryLocalNow', () => {
  it('ends the backoff wait of every stream on the embedded server', async () => {
    let connects = 0;
    const service = new WatchService({
      policy: { isAllowed: () => undefined, connectOptions: () => ({}) },
      localRtmp: { port: 1 },
      connect: () => {
        connects++;
        return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:1'));
      },
      relay: { retry: { baseMs: 60_000, factor: 1, maxMs: 60_000, jitter: 0 } },
    });
    const release = service.warmLocal('live', 'back');
    try {
      await waitFor('the first attempt', () => connects === 1 || undefined);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(connects).toBe(1); // a minute to wait
      service.retryLocalNow();
      await waitFor('the next attempt at once', () => connects === 2 || undefined, 1000, 5);
    } finally {
      release();
      await service.close();
    }
  });
});

describe('a watch upstream that goes silent', () => {
  let nginx: NginxRtmp;
  let proxy: ChaosProxy;
  let service: WatchService;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    nginx = await startNginxRtmp({ record: false });
    proxy = await startChaosProxy(nginx.rtmpPort);
    service = new WatchService({
      policy: { isAllowed: () => undefined, connectOptions: () => ({}) },
      relay: { silenceMs: 1000, reopenMs: 3000, retry: { baseMs: 200, factor: 1.5, maxMs: 1000, jitter: 0.2 } },
    });
    server = createServer((req, res) => service.handleRequest(req, res) || res.writeHead(404).end());
    server.on('upgrade', (req, socket, head) => service.handleUpgrade(req, socket, head) || socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await service?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await proxy?.close();
    await nginx?.dispose();
  });

  it('is reopened after reopenMs without media, and media flows on the new session', async () => {
    const publisher = publishLoop(await flvFixture({ seconds: 4 }), nginx.url('live', 'stall'));
    const source = `rtmp://127.0.0.1:${proxy.port}/live/stall`;
    const viewer = openViewer(`${base}/watch-ws?src=${encodeURIComponent(source)}`);
    try {
      await waitFor('media at the viewer', () => viewer.frames.filter((f) => isMedia(f.kind)).length > 30 || undefined, 20_000);
      expect(service.metrics().streams[0]).toMatchObject({ upstreamSessions: 1, upstreamConnected: true });
      // The upstream connection stays open and says nothing, as a half-open one does; connections
      // opened meanwhile are silent too until the hole closes.
      const holeAt = performance.now();
      const hole = proxy.blackhole(6000);
      const reopenedAt = await waitFor('the reopen', () =>
        viewer.messages.find((m): m is WatchStatusMessage => m.type === 'status' && /reopening/.test(m.reason ?? '')) ? performance.now() : undefined, 15_000, 20);
      await hole;
      const before = viewer.frames.length;
      await waitFor('media again', () => viewer.frames.slice(before).filter((f) => isMedia(f.kind)).length > 30 || undefined, 20_000);
      const states = viewer.messages.filter((m): m is WatchStatusMessage => m.type === 'status');
      const waitingAt = states.findIndex((m) => m.state === 'waiting' && /no media from the source for 1 s/.test(m.reason ?? ''));
      const reopenAt = states.findIndex((m) => /no media from the source for 3 s: reopening/.test(m.reason ?? ''));
      expect(waitingAt).toBeGreaterThanOrEqual(0);
      expect(reopenAt).toBeGreaterThan(waitingAt);
      expect(reopenedAt - holeAt).toBeGreaterThan(2500);
      // Without the reopen the old session would have carried on after the hole: a new one did.
      expect(service.metrics().streams[0]).toMatchObject({ upstreamSessions: 2, upstreamConnected: true, state: 'live' });
      expect(viewer.closed).toBe(false);
    } finally {
      viewer.ws.close();
      await publisher.stop();
    }
  });
});

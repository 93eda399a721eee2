import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { connect as connectNet, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import type { LookupFunction } from 'node:net';
import { promisify } from 'node:util';
import { parseFlvTag, type FlvTag } from '@onair/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { flvFixture } from '../../test/harness/fixtures.js';
import { startNginxRtmp, type NginxRtmp } from '../../test/harness/nginx.js';
import { spawnTracked, waitFor, type Child } from '../../test/harness/proc.js';
import { parseWatchServerMessage, type WatchServerMessage } from '@onair/shared';
import { GopCache } from '../media/gop-cache.js';
import { TagKind, tagKind } from '@onair/shared';
import { TickCorker } from './tick-corker.js';
import { DEFAULT_VIEWER_LIMITS, ViewerGate } from './viewer-gate.js';
import { StreamRelay, type StreamStats, type TagSource, type ViewerSink } from './stream-relay.js';
import { WatchService, type WatchMetrics } from './watch-service.js';
import { parseServeArgs, startServe } from '../serve.js';
import { freePort } from '../../test/harness/ports.js';
import { ServerPolicy } from '../server/policy.js';

const run = promisify(execFile);

// Tag bodies as an encoder writes them (FLV spec E.4.2/E.4.3), built by hand.
const meta: FlvTag = { type: 18, timestamp: 0, data: new Uint8Array([2, 0, 10, ...Array.from('onMetaData', (c) => c.charCodeAt(0)), 5]) };
const avcConfig: FlvTag = { type: 9, timestamp: 0, data: new Uint8Array([0x17, 0, 0, 0, 0, 1, 0x42, 0, 0x1f]) };
const aacConfig: FlvTag = { type: 8, timestamp: 0, data: new Uint8Array([0xaf, 0, 0x11, 0x90]) };
const key = (ts: number, size = 10): FlvTag => ({ type: 9, timestamp: ts, data: new Uint8Array([0x17, 1, 0, 0, 0, ...new Uint8Array(size)]) });
const inter = (ts: number, size = 10): FlvTag => ({ type: 9, timestamp: ts, data: new Uint8Array([0x27, 1, 0, 0, 0, ...new Uint8Array(size)]) });
const audio = (ts: number): FlvTag => ({ type: 8, timestamp: ts, data: new Uint8Array([0xaf, 1, 0x21, 0x10]) });

describe('GOP cache and viewer gate', () => {
  it('classifies legacy and Enhanced RTMP tags from their first bytes', () => {
    expect([meta, avcConfig, aacConfig, key(0), inter(0), audio(0)].map(tagKind)).toEqual([
      TagKind.Metadata,
      TagKind.VideoConfig,
      TagKind.AudioConfig,
      TagKind.Keyframe,
      TagKind.Frame,
      TagKind.Audio,
    ]);
    const ex = (b0: number): FlvTag => ({ type: 9, timestamp: 0, data: new Uint8Array([b0, 0x68, 0x76, 0x63, 0x31, 0, 0, 0]) });
    expect([ex(0x90), ex(0x91), ex(0xa3), ex(0x92)].map(tagKind)).toEqual([TagKind.VideoConfig, TagKind.Keyframe, TagKind.Frame, TagKind.Other]);
    expect(tagKind({ type: 9, timestamp: 0, data: new Uint8Array([0x57, 0]) })).toBe(TagKind.Other); // command frame
  });

  it('keeps headers and the frames since the last keyframe, within its limits', () => {
    const cache = new GopCache({ maxTags: 5 });
    const push = (t: FlvTag): void => cache.push(t, tagKind(t));
    [meta, avcConfig, aacConfig, inter(0), key(33), audio(40), inter(66), key(100), audio(101), inter(133)].forEach(push);
    const snap = cache.snapshot();
    expect(snap.headers).toEqual([meta, avcConfig, aacConfig]);
    expect(snap.gop.map((t) => t.timestamp)).toEqual([100, 101, 133]);
    [inter(166), inter(200), inter(233)].forEach(push);
    expect(cache.snapshot().gop).toEqual([]); // over maxTags: dropped until the next keyframe
    push(inter(266));
    expect(cache.snapshot().gop).toEqual([]);
    push(key(300));
    expect(cache.snapshot().gop.map((t) => t.timestamp)).toEqual([300]);
  });

  it('starts a viewer on an Enhanced RTMP keyframe (also behind ModEx) with the Enhanced RTMP sequence start', () => {
    const hvc = (b0: number, ts: number, ...rest: number[]): FlvTag => ({ type: 9, timestamp: ts, data: new Uint8Array([b0, 0x68, 0x76, 0x63, 0x31, ...rest]) });
    const exConfig = hvc(0x90, 0, 1, 2, 3);
    const exKey = (ts: number): FlvTag => hvc(0x91, ts, 0, 0, 0, 0x26);
    const exInter = (ts: number): FlvTag => hvc(0xa3, ts, 0x02);
    // ModEx TimestampOffsetNano (3 bytes), then CodedFrames of a keyframe.
    const modExKey = (ts: number): FlvTag => ({ type: 9, timestamp: ts, data: new Uint8Array([0x97, 2, 0, 1, 0xf4, 0x01, 0x68, 0x76, 0x63, 0x31, 0, 0, 0, 0x26]) });
    const colorInfo = hvc(0x94, 50, 5);
    const cache = new GopCache();
    const push = (t: FlvTag): void => cache.push(t, tagKind(t));
    [meta, exConfig, aacConfig, exInter(0), exKey(33), audio(40), colorInfo, exInter(66)].forEach(push);
    expect(cache.snapshot()).toEqual({ headers: [meta, exConfig, aacConfig], gop: [exKey(33), audio(40), exInter(66)] });
    [modExKey(100), exInter(133)].forEach(push);
    expect(cache.snapshot().gop).toEqual([modExKey(100), exInter(133)]);
    const gate = new ViewerGate({ maxBufferedBytes: 1000 });
    const admit = (t: FlvTag): boolean => gate.admit(tagKind(t), 0, true);
    expect([exConfig, exInter(0), colorInfo, modExKey(100), exInter(133)].map(admit)).toEqual([true, false, false, true, true]);
  });

  it('starts a viewer on a keyframe and skips a slow one to the next keyframe', () => {
    const gate = new ViewerGate({ maxBufferedBytes: 1000 });
    const admit = (t: FlvTag, buffered = 0): boolean => gate.admit(tagKind(t), buffered, true);
    expect([admit(meta), admit(avcConfig), admit(audio(0)), admit(inter(0)), admit(key(33)), admit(audio(34)), admit(inter(66))]).toEqual([
      true, true, false, false, true, true, true,
    ]);
    expect(admit(inter(100), 5000)).toBe(false);
    expect(admit(audio(101), 10)).toBe(false); // still waiting for a keyframe
    expect(admit(key(133), 5000)).toBe(false); // the queue is still too long for it
    expect(admit(key(166), 10)).toBe(true);
    expect([gate.skips, gate.dropped]).toEqual([1, 5]);
  });
});

describe('TickCorker', () => {
  it("holds one tick's writes to a socket for one writev, in order, and sends them when the tick ends", async () => {
    const received: Buffer[] = [];
    let peer: Socket | undefined;
    const server = createNetServer((s) => {
      peer = s;
      s.on('data', (d: Buffer) => received.push(d));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const socket = connectNet((server.address() as AddressInfo).port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    const corker = new TickCorker();
    try {
      corker.write(socket, Buffer.from('one,'));
      corker.write(socket, Buffer.from('two,'));
      // Nothing leaves before the tick ends: all of it waits, corked once.
      expect(socket.writableCorked).toBe(1);
      expect(socket.writableLength).toBe(8);
      await new Promise<void>((resolve) => process.nextTick(resolve));
      expect(socket.writableCorked).toBe(0);
      corker.write(socket, Buffer.from('three'));
      expect(socket.writableCorked).toBe(1);
      await waitFor('the peer to receive every write', () => (Buffer.concat(received).toString() === 'one,two,three' ? true : undefined), 5000);
      expect(socket.writableCorked).toBe(0);
      corker.write(socket, Buffer.from('!'));
      corker.close();
      expect(socket.writableCorked).toBe(0);
    } finally {
      socket.destroy();
      peer?.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('StreamRelay', () => {
  it('says waiting when a session stays open without media, and live when media returns', async () => {
    // A scripted upstream, as node-media-server behaves when its publisher leaves and returns.
    async function* session(): AsyncGenerator<FlvTag> {
      yield meta;
      yield avcConfig;
      yield aacConfig;
      yield key(1000);
      yield audio(1010);
      await new Promise((resolve) => setTimeout(resolve, 400));
      yield avcConfig;
      yield key(0); // the new publisher starts its clock at 0 again
      yield inter(33);
      await new Promise((resolve) => setTimeout(resolve, 5000));
    }
    const source = session();
    const relay = new StreamRelay(
      'rtmp://h/live/key',
      'rtmp://h/live/***',
      async () => Object.assign(source, { destroy: () => undefined }),
      { lingerMs: 100, retry: { baseMs: 50, factor: 1.5, maxMs: 100, jitter: 0.2 }, silenceMs: 200, gop: {}, viewer: DEFAULT_VIEWER_LIMITS },
      () => relay.close(),
    );
    const states: string[] = [];
    const tags: FlvTag[] = [];
    const sink: ViewerSink = {
      kind: 'ws',
      bufferedBytes: () => 0,
      sendTag: (bytes) => tags.push(parseFlvTag(bytes)),
      sendStatus: (s) => states.push(s.state),
      close: () => undefined,
    };
    relay.add(sink);
    await waitFor('media after the silence', () => (tags.filter((t) => tagKind(t) === TagKind.Frame).length > 0 ? true : undefined), 3000);
    relay.close();
    expect(states.filter((s, i) => s !== states[i - 1])).toEqual(['connecting', 'live', 'waiting', 'live']);
    // One rising timeline: the restarted clock continues after the last relayed tag.
    const media = tags.filter((t) => tagKind(t) === TagKind.Keyframe || tagKind(t) === TagKind.Frame || tagKind(t) === TagKind.Audio);
    expect(media.map((t) => t.timestamp)).toEqual([1000, 1010, 1050, 1083]);
  });
});

interface Client {
  ws: WebSocket;
  messages: WatchServerMessage[];
  tags: FlvTag[];
  closed: Promise<void>;
}

function openClient(url: string): Client {
  const ws = new WebSocket(url);
  const client: Client = { ws, messages: [], tags: [], closed: new Promise((resolve) => ws.once('close', () => resolve())) };
  ws.on('message', (data, isBinary) => {
    const bytes = data as Buffer;
    if (isBinary) client.tags.push(parseFlvTag(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)));
    else client.messages.push(parseWatchServerMessage(bytes.toString('utf8')));
  });
  return client;
}

describe('WatchService against nginx-rtmp', () => {
  let nginx: NginxRtmp;
  let server: Server;
  let service: WatchService;
  let base: string;
  let source: string;
  let publisher: Child | undefined;

  const publish = async (): Promise<Child> => {
    const file = await flvFixture({ seconds: 4 });
    return spawnTracked('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', file, '-c', 'copy', '-f', 'flv', source]);
  };
  const metrics = async (): Promise<ReturnType<WatchService['metrics']>> => (await fetch(`${base}/metrics.json`)).json() as Promise<ReturnType<WatchService['metrics']>>;

  beforeAll(async () => {
    nginx = await startNginxRtmp({ record: false, stat: true });
    source = nginx.url('live', 'watchtest');
    service = new WatchService({ policy: { isAllowed: () => undefined, connectOptions: () => ({}) }, relay: { lingerMs: 500, retry: { baseMs: 200, factor: 1.5, maxMs: 2000, jitter: 0.2 } } });
    server = createServer((req, res) => {
      if (!service.handleRequest(req, res)) {
        res.writeHead(404);
        res.end();
      }
    });
    server.on('upgrade', (req, socket, head) => {
      if (!service.handleUpgrade(req, socket, head)) socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    publisher = await publish();
    await waitFor('the publisher on nginx', async () => (/<name>watchtest<\/name>[\s\S]*?<publishing\/>/.test(await nginx.stat()) ? true : undefined), 15_000);
  });

  afterAll(async () => {
    await publisher?.stop();
    await service?.close();
    await new Promise((resolve) => server?.close(resolve));
    await nginx?.dispose();
  });

  it('serves HTTP-FLV that ffprobe reads as H.264 1280x720 + AAC, starting on a keyframe', async () => {
    const url = `${base}/flv?src=${encodeURIComponent(source)}`;
    const { stdout } = await run('ffprobe', ['-v', 'error', '-read_intervals', '%+3', '-show_streams', '-show_packets', '-of', 'json', url], { timeout: 20_000 });
    const probe = JSON.parse(stdout) as { streams: Record<string, unknown>[]; packets: Record<string, string>[] };
    const streams = probe.streams.map((s) => [s['codec_name'], s['width'] ?? s['sample_rate']]);
    expect(streams).toEqual(expect.arrayContaining([['h264', 1280], ['aac', '48000']]));
    const video = probe.packets.filter((p) => p['codec_type'] === 'video');
    expect(video.length).toBeGreaterThan(10);
    expect(video[0]?.['flags']).toMatch(/^K/);
  });

  it('serves /live/<stream>.flv from the embedded server, and 404 without one', async () => {
    // nginx stands in for the embedded server: same URL shape, rtmp://127.0.0.1:<port>/live/<stream>.
    const local = new WatchService({ policy: { isAllowed: () => Promise.reject(new Error('the policy is not asked for local streams')), connectOptions: () => ({}) }, localRtmp: { port: nginx.rtmpPort } });
    const none = new WatchService({ policy: { isAllowed: () => undefined, connectOptions: () => ({}) } });
    const servers = [local, none].map((w) => createServer((req, res) => w.handleRequest(req, res) || res.writeHead(404).end()));
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))));
    const [withLocal, without] = servers.map((s) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`);
    try {
      const { stdout } = await run('ffprobe', ['-v', 'error', '-read_intervals', '%+1', '-show_streams', '-of', 'json', `${withLocal}/live/watchtest.flv`], { timeout: 20_000 });
      const codecs = (JSON.parse(stdout) as { streams: { codec_name: string }[] }).streams.map((s) => s.codec_name).sort();
      expect(codecs).toEqual(['aac', 'h264']);
      expect((await fetch(`${without}/live/watchtest.flv`)).status).toBe(404);
      expect((await fetch(`${withLocal}/live/a/b.flv`)).status).toBe(404); // not a watch route
    } finally {
      await Promise.all([local.close(), none.close()]);
      servers.forEach((s) => s.closeAllConnections());
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    }
  });

  it('refuses a source the policy refuses, with the reason and no key', async () => {
    const refusing = new WatchService({ policy: { isAllowed: () => Promise.reject(new Error('nope for rtmp://h/app/SECRETKEY')), connectOptions: () => ({}) } });
    const s = createServer((req, res) => refusing.handleRequest(req, res));
    s.on('upgrade', (req, socket, head) => refusing.handleUpgrade(req, socket, head));
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    const port = (s.address() as AddressInfo).port;
    const c = openClient(`ws://127.0.0.1:${port}/watch-ws?src=${encodeURIComponent('rtmp://h/app/SECRETKEY')}`);
    await c.closed;
    expect(c.messages).toEqual([{ type: 'error', code: 'WATCH_FAILED', message: 'nope for rtmp://h/app/***' }]);
    const res = await fetch(`http://127.0.0.1:${port}/flv?src=${encodeURIComponent('rtmp://h/app/SECRETKEY')}`);
    expect(res.status).toBe(403);
    expect(await res.text()).not.toContain('SECRETKEY');
    await refusing.close();
    await new Promise((resolve) => s.close(resolve));
  });

  it('dials a source only at addresses the policy accepts, even when its DNS answer changes (rebinding)', async () => {
    // A name that resolves to a public address for the policy's early check and to loopback at
    // connect time; a counting server on loopback shows whether anything reached it.
    let lookups = 0;
    const lookup: LookupFunction = (_hostname, options, callback) => {
      const address = lookups++ === 0 ? '8.8.8.8' : '127.0.0.1';
      setImmediate(() => (options.all ? callback(null, [{ address, family: 4 }]) : callback(null, address, 4)));
    };
    let reached = 0;
    const target = createNetServer((socket) => {
      reached++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const targetPort = (target.address() as AddressInfo).port;
    const guarded = new WatchService({ policy: new ServerPolicy({ host: '0.0.0.0', token: 't', lookup }) });
    const s = createServer((req, res) => guarded.handleRequest(req, res));
    s.on('upgrade', (req, socket, head) => guarded.handleUpgrade(req, socket, head));
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    try {
      const src = `rtmp://rebind.onair.test:${targetPort}/live/SECRETKEY`;
      const c = openClient(`ws://127.0.0.1:${(s.address() as AddressInfo).port}/watch-ws?src=${encodeURIComponent(src)}`);
      await c.closed;
      const failed = c.messages.find((m) => m.type === 'status' && m.state === 'failed');
      expect(failed).toMatchObject({ reason: expect.stringContaining('refused to connect to 127.0.0.1') });
      expect(JSON.stringify(c.messages)).not.toContain('SECRETKEY');
      expect(lookups).toBeGreaterThanOrEqual(2);
      expect(reached).toBe(0);
    } finally {
      await guarded.close();
      await new Promise((resolve) => s.close(resolve));
      await new Promise((resolve) => target.close(resolve));
    }
  });

  it('serves 50 WebSocket viewers from one upstream RTMP connection, each starting on a keyframe', async () => {
    const clients = Array.from({ length: 50 }, () => openClient(`${base.replace('http', 'ws')}/watch-ws?src=${encodeURIComponent(source)}`));
    await waitFor('every viewer to get video', () => (clients.every((c) => c.tags.filter((t) => t.type === 9).length > 30) ? true : undefined), 20_000);
    const m = await metrics();
    expect(m.upstreams).toBe(1);
    expect(m.viewers.ws).toBe(50);
    expect(m.streams).toHaveLength(1);
    expect(m.streams[0]?.upstreamSessions).toBe(1);
    // nginx's own count: the publisher and exactly one player.
    const stat = await nginx.stat();
    expect(/<name>watchtest<\/name>[\s\S]*?<nclients>(\d+)<\/nclients>/.exec(stat)?.[1]).toBe('2');
    for (const c of clients) {
      expect(c.messages[0]).toEqual({ type: 'welcome', version: 1, source: nginx.url('live', '***') });
      expect(c.messages.some((m) => m.type === 'status' && m.state === 'live')).toBe(true);
      // Each configuration before its track's first frame (a cold upstream from nginx-rtmp sends
      // audio first and video from the next keyframe on), and video starts on a keyframe.
      const kinds = c.tags.map(tagKind);
      expect(kinds[0]).toBe(TagKind.Metadata);
      const firstVideo = kinds.findIndex((k) => k === TagKind.Keyframe || k === TagKind.Frame);
      expect(kinds[firstVideo]).toBe(TagKind.Keyframe);
      expect(kinds.indexOf(TagKind.VideoConfig)).toBeLessThan(firstVideo);
      expect(kinds.indexOf(TagKind.AudioConfig)).toBeLessThan(kinds.indexOf(TagKind.Audio));
      expect(kinds.indexOf(TagKind.AudioConfig)).toBeGreaterThan(0);
    }
    for (const c of clients) c.ws.close();
    await Promise.all(clients.map((c) => c.closed));
    await waitFor('the upstream to close after the linger', async () => ((await metrics()).upstreams === 0 ? true : undefined), 5_000);
    expect((await metrics()).streams).toEqual([]);
  });

  it('onair serve --watch-upstream plays the watch paths from that server: one upstream per stream for every viewer', async () => {
    const edge = `rtmp://127.0.0.1:${nginx.rtmpPort}/live`;
    const serve = await startServe({ ...parseServeArgs(['--port', '0', '--no-local-rtmp', '--watch-upstream', edge], {}), webRoot: '/nonexistent' }, () => undefined);
    const http = serve.server.url().replace(/\/$/, '');
    const ws = http.replace(/^http/, 'ws');
    const served = async (): Promise<WatchMetrics> => (await fetch(`${http}/metrics.json`)).json() as Promise<WatchMetrics>;
    const clients = Array.from({ length: 5 }, () => openClient(`${ws}/watch-ws/live/watchtest`));
    const flv = new AbortController();
    try {
      await waitFor('every viewer to get video', () => (clients.every((c) => c.tags.some((t) => tagKind(t) === TagKind.Frame)) ? true : undefined), 20_000);
      const res = await fetch(`${http}/live/watchtest.flv`, { signal: flv.signal });
      expect([res.status, res.headers.get('content-type')]).toEqual([200, 'video/x-flv']);
      const reader = res.body!.getReader();
      let flvBytes = 0;
      while (flvBytes < 20_000) flvBytes += (await reader.read()).value?.length ?? 0;
      const m = await served();
      expect(m.streams).toHaveLength(1);
      expect(m.streams[0]).toMatchObject({ upstreamConnected: true, upstreamSessions: 1, viewers: { ws: 5, flv: 1 } });
      for (const c of clients) {
        expect(c.messages[0]).toEqual({ type: 'welcome', version: 1, source: nginx.url('live', '***') });
        expect(c.tags.map(tagKind).find((k) => k === TagKind.Keyframe || k === TagKind.Frame)).toBe(TagKind.Keyframe);
      }
      // nginx's count: the describe's publisher and one player, this bridge's.
      await waitFor('one player on nginx', async () => ((await nginx.streamClients('live', 'watchtest')).players === 1 ? true : undefined), 10_000);
      // Another app than the upstream's is not there; the embedded server's paths are the upstream's now.
      const other = openClient(`${ws}/watch-ws/other/watchtest`);
      await other.closed;
      expect(other.messages).toEqual([{ type: 'error', code: 'WATCH_NO_SUCH_APP', message: 'this bridge serves streams of app live only' }]);
      expect((await served()).streams).toHaveLength(1);
    } finally {
      flv.abort();
      for (const c of clients) c.ws.close();
      await serve.close();
    }
    // Any app when the URL names none; a URL that is not rtmp://host[:port][/app] stops the server.
    expect(parseServeArgs(['--watch-upstream', 'rtmps://edge.example:443'], {}).watchUpstream).toEqual({ base: 'rtmps://edge.example:443', app: undefined });
    expect(parseServeArgs([], { ONAIR_WATCH_UPSTREAM: 'rtmp://edge/live/' }).watchUpstream).toEqual({ base: 'rtmp://edge', app: 'live' });
    for (const bad of ['http://edge/live', 'rtmp://edge/a/b', 'rtmp://edge/live?x=1', 'rtmp://u:p@edge/live', 'edge:1935']) {
      expect(() => parseServeArgs(['--watch-upstream', bad], {}), bad).toThrow(expect.objectContaining({ code: 'USAGE' }) as Error);
    }
  });

  it('keeps one rising timeline across a publisher restart and says so in status messages', async () => {
    const c = openClient(`${base.replace('http', 'ws')}/watch-ws?src=${encodeURIComponent(source)}`);
    await waitFor('video', () => (c.tags.some((t) => tagKind(t) === TagKind.Frame) ? true : undefined), 15_000);
    await publisher?.stop();
    await waitFor('a waiting status', () => (c.messages.some((m) => m.type === 'status' && m.state === 'waiting') ? true : undefined), 10_000);
    const before = c.tags.length;
    publisher = await publish();
    await waitFor('video again', () => (c.tags.slice(before).filter((t) => tagKind(t) === TagKind.Frame).length > 10 ? true : undefined), 15_000);
    const states = c.messages.flatMap((m) => (m.type === 'status' ? [m.state] : []));
    expect(states.lastIndexOf('live')).toBeGreaterThan(states.indexOf('waiting'));
    const media = c.tags.filter((t) => t.type !== 18 && tagKind(t) !== TagKind.VideoConfig && tagKind(t) !== TagKind.AudioConfig);
    const video = media.filter((t) => t.type === 9).map((t) => t.timestamp);
    for (let i = 1; i < video.length; i++) expect(video[i]!).toBeGreaterThanOrEqual(video[i - 1]!);
    expect(tagKind(c.tags.slice(before).find((t) => t.type === 9 && tagKind(t) !== TagKind.VideoConfig)!)).toBe(TagKind.Keyframe);
    c.ws.close();
    await c.closed;
  });

  it('skips a viewer that stops reading to the next keyframe, its queue bounded', async () => {
    const slow = openClient(`${base.replace('http', 'ws')}/watch-ws?src=${encodeURIComponent(source)}`);
    await waitFor('video', () => (slow.tags.some((t) => t.type === 9) ? true : undefined), 15_000);
    // Stop reading: the kernel buffers fill, then the bridge's send queue grows.
    const raw = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    raw.pause();
    await waitFor('a skip', async () => ((await metrics()).streams[0]!.skips > 0 ? true : undefined), 30_000);
    for (let i = 0; i < 15; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      // The gate refuses every tag above the limit: the queue never passes it by more than a tag.
      expect((await metrics()).streams[0]!.maxViewerBufferedBytes).toBeLessThan(DEFAULT_VIEWER_LIMITS.maxBufferedBytes + 512 * 1024);
    }
    const dropped = (await metrics()).streams[0]!.droppedTags;
    expect(dropped).toBeGreaterThan(0);
    const seen = slow.tags.length;
    raw.resume();
    // The socket first delivers what the kernel and the bridge had queued, then the gap.
    const gapIn = (after: FlvTag[]): number => after.findIndex((t, i) => i > 0 && t.timestamp - after[i - 1]!.timestamp > 500);
    await waitFor('the gap and video after it', () => {
      const after = slow.tags.slice(seen);
      const at = gapIn(after);
      return at > 0 && after.slice(at).some((t) => t.type === 9) ? true : undefined;
    }, 30_000);
    const after = slow.tags.slice(seen);
    const gapAt = gapIn(after);
    expect(tagKind(after.slice(gapAt).find((t) => t.type === 9)!)).toBe(TagKind.Keyframe);
    slow.ws.close();
    await slow.closed;
  });
});

describe('warm start', () => {
  it('holds an upstream open with no viewer, serves a joiner from its cache, and lets go after the release', async () => {
    let connects = 0;
    let destroyed = 0;
    async function* session(): AsyncGenerator<FlvTag> {
      yield meta;
      yield avcConfig;
      yield aacConfig;
      yield key(0);
      yield inter(33);
      yield audio(40);
      await new Promise((resolve) => setTimeout(resolve, 10_000));
    }
    let idle = 0;
    const relay: StreamRelay = new StreamRelay(
      'rtmp://h/live/key',
      'rtmp://h/live/***',
      async () => {
        connects++;
        return Object.assign(session(), { destroy: () => void destroyed++ });
      },
      { lingerMs: 100, retry: { baseMs: 50, factor: 1.5, maxMs: 100, jitter: 0.2 }, silenceMs: 5000, gop: {}, viewer: DEFAULT_VIEWER_LIMITS },
      () => {
        idle++;
        relay.close();
      },
    );
    const release = relay.hold();
    await waitFor('the cached GOP', () => (relay.stats().tagsIn === 6 ? true : undefined), 2000);
    expect(relay.stats()).toMatchObject({ warm: true, upstreamConnected: true, viewers: { ws: 0, flv: 0 } });
    // A viewer arriving now gets headers and the GOP synchronously, from the same upstream.
    const tags: FlvTag[] = [];
    const sink: ViewerSink = { kind: 'ws', bufferedBytes: () => 0, sendTag: (b) => tags.push(parseFlvTag(b)), sendStatus: () => undefined, close: () => undefined };
    relay.add(sink);
    expect(tags.map(tagKind)).toEqual([TagKind.Metadata, TagKind.VideoConfig, TagKind.AudioConfig, TagKind.Keyframe, TagKind.Frame, TagKind.Audio]);
    relay.remove(sink);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect([relay.closed, idle]).toEqual([false, 0]); // still held
    release();
    release(); // idempotent
    await waitFor('the relay to close after the linger', () => (relay.closed ? true : undefined), 2000);
    expect([connects, destroyed, idle]).toEqual([1, 1, 1]);
  });

  it('onair serve warms every stream published to the embedded server: the first viewer starts at once', async () => {
    const rtmpPort = await freePort();
    const serve = await startServe(
      { ...parseServeArgs([], {}), port: 0, localRtmpPort: rtmpPort, webRoot: '/nonexistent' },
      () => undefined,
    );
    // The same embedded server, watched through a service that does not warm: the cold path.
    const cold = new WatchService({ policy: { isAllowed: () => undefined, connectOptions: () => ({}) }, localRtmp: { port: rtmpPort } });
    const coldServer = createServer((req, res) => cold.handleRequest(req, res) || res.writeHead(404).end());
    coldServer.on('upgrade', (req, socket, head) => cold.handleUpgrade(req, socket, head) || socket.destroy());
    await new Promise<void>((resolve) => coldServer.listen(0, '127.0.0.1', resolve));
    const file = await flvFixture({ seconds: 4 });
    const publisher = spawnTracked('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', file, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${rtmpPort}/live/warmtest`]);
    const firstKeyframeMs = async (wsBase: string): Promise<number> => {
      const started = performance.now();
      const c = openClient(`${wsBase}/watch-ws/live/warmtest`);
      await waitFor('a keyframe', () => (c.tags.some((t) => tagKind(t) === TagKind.Keyframe) ? true : undefined), 10_000, 5);
      const ms = performance.now() - started;
      c.ws.close();
      await c.closed;
      return ms;
    };
    try {
      const warm = async (): Promise<StreamStats | undefined> => ((await (await fetch(new URL('/metrics.json', serve.server.url()))).json()) as WatchMetrics).streams[0];
      await waitFor('a warm upstream with a keyframe cached', async () => (((await warm())?.tagsIn ?? 0) > 100 ? true : undefined), 15_000);
      expect(await warm()).toMatchObject({ warm: true, upstreamConnected: true, upstreamSessions: 1, viewers: { ws: 0, flv: 0 } });
      const coldMs = await firstKeyframeMs(`ws://127.0.0.1:${(coldServer.address() as AddressInfo).port}`);
      const warmMs = await firstKeyframeMs(serve.server.url().replace(/^http/, 'ws').replace(/\/$/, ''));
      console.log(`first keyframe on a watch socket: cold upstream ${coldMs.toFixed(0)} ms, warm ${warmMs.toFixed(0)} ms`);
      expect(warmMs).toBeLessThan(150);
      expect(await warm()).toMatchObject({ upstreamSessions: 1 }); // the viewer joined the warm upstream
    } finally {
      await publisher.stop();
      await cold.close();
      coldServer.closeAllConnections();
      await new Promise((resolve) => coldServer.close(resolve));
      await serve.close();
    }
  });
});

describe('watch limits', () => {
  /** A source that never ends: headers, a keyframe, then frames every 33 ms until destroyed. */
  function endless(): TagSource {
    let done = false;
    async function* tags(): AsyncGenerator<FlvTag> {
      yield meta;
      yield avcConfig;
      yield aacConfig;
      for (let ts = 0; !done; ts += 33) {
        yield ts % 2000 === 0 ? key(ts) : inter(ts);
        await new Promise((resolve) => setTimeout(resolve, 33));
      }
    }
    return Object.assign(tags(), { destroy: () => void (done = true) });
  }

  it('refuses viewers and upstreams past their limits: 1013 on the WebSocket, 503 with Retry-After over HTTP', async () => {
    const service = new WatchService({
      policy: { isAllowed: () => undefined, connectOptions: () => ({}) },
      connect: async () => endless(),
      limits: { maxViewers: 3, maxUpstreams: 1 },
      relay: { lingerMs: 100 },
    });
    const server = createServer((req, res) => service.handleRequest(req, res) || res.writeHead(404).end());
    server.on('upgrade', (req, socket, head) => service.handleUpgrade(req, socket, head) || socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const a = encodeURIComponent('rtmp://a.example/live/one');
    const b = encodeURIComponent('rtmp://b.example/live/two');
    try {
      const viewers = [openClient(`ws://${base}/watch-ws?src=${a}`), openClient(`ws://${base}/watch-ws?src=${a}`)];
      await waitFor('two viewers with video', () => (viewers.every((v) => v.tags.some((t) => t.type === 9)) ? true : undefined), 5000);
      // A second source while one is relayed: the upstream limit.
      const other = openClient(`ws://${base}/watch-ws?src=${b}`);
      const otherCode = await new Promise<number>((resolve) => other.ws.once('close', (code) => resolve(code)));
      expect(otherCode).toBe(1013);
      expect(other.messages.find((m) => m.type === 'error')).toMatchObject({ code: 'RELAY_LIMIT' });
      // A third viewer of the first: allowed; a fourth: the viewer limit.
      const third = openClient(`ws://${base}/watch-ws?src=${a}`);
      await waitFor('the third viewer', () => (third.tags.length > 0 ? true : undefined), 5000);
      const fourth = openClient(`ws://${base}/watch-ws?src=${a}`);
      expect(await new Promise<number>((resolve) => fourth.ws.once('close', (code) => resolve(code)))).toBe(1013);
      expect(fourth.messages.find((m) => m.type === 'error')).toMatchObject({ code: 'VIEWER_LIMIT' });
      const flv = await fetch(`http://${base}/flv?src=${a}`);
      expect(flv.status).toBe(503);
      expect(flv.headers.get('retry-after')).toBe('10');
      expect(await flv.text()).toMatch(/VIEWER_LIMIT/);
      // A viewer leaving frees its place.
      third.ws.close();
      await third.closed;
      const again = openClient(`ws://${base}/watch-ws?src=${a}`);
      await waitFor('a viewer again', () => (again.tags.length > 0 ? true : undefined), 5000);
      for (const v of [...viewers, again]) v.ws.close();
    } finally {
      await service.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('counts headers against a slow viewer’s queue: a flood of script tags is held to one, sent before the next keyframe', async () => {
    let flood = 0;
    async function* session(): AsyncGenerator<FlvTag> {
      yield meta;
      yield avcConfig;
      yield aacConfig;
      yield key(0);
      for (let i = 0; i < 20_000; i++) {
        flood++;
        yield { type: 18, timestamp: 10, data: meta.data };
      }
      yield key(2000);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const relay = new StreamRelay(
      'rtmp://h/live/key',
      'rtmp://h/live/***',
      async () => Object.assign(session(), { destroy: () => undefined }),
      { lingerMs: 100, retry: { baseMs: 50, factor: 1.5, maxMs: 100, jitter: 0.2 }, silenceMs: 2000, reopenMs: 10_000, gop: {}, viewer: { maxBufferedBytes: 64 * 1024 } },
      () => relay.close(),
    );
    let queued = 0;
    const kinds: TagKind[] = [];
    const sink: ViewerSink = {
      kind: 'ws',
      // The viewer reads nothing during the flood and catches up just before the second keyframe.
      bufferedBytes: () => (flood < 20_000 ? queued : 0),
      sendTag: (bytes) => {
        queued += bytes.length;
        kinds.push(tagKind(parseFlvTag(bytes)));
      },
      sendStatus: () => undefined,
      close: () => undefined,
    };
    relay.add(sink);
    await waitFor('the second keyframe', () => (kinds.filter((k) => k === TagKind.Keyframe).length === 2 ? true : undefined), 5000);
    relay.close();
    // Without the budget every one of the 20 000 script tags would have been queued.
    expect(queued).toBeLessThan(2 * 64 * 1024 + 64 * 1024);
    const second = kinds.lastIndexOf(TagKind.Keyframe);
    expect(kinds[second - 1]).toBe(TagKind.Metadata);
  });
});

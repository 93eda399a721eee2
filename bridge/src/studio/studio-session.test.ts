import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type LookupFunction, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FlvReader, flvHeader, flvTag, parseStudioServerMessage, type DestinationStatus, type FlvTag, type StudioServerMessage } from '@onair/shared';
import { flvFixture, shortFlv } from '../../test/harness/fixtures.js';
import { comparePackets, ffprobeStreams, framemd5 } from '../../test/harness/judge.js';
import { startNginxRtmp, type NginxRtmp } from '../../test/harness/nginx.js';
import { freePort } from '../../test/harness/ports.js';
import { runChecked, waitFor } from '../../test/harness/proc.js';
import { OnairServer } from '../server/onair-server.js';
import { ServerPolicy } from '../server/policy.js';
import { DestinationRelay } from './destination-relay.js';
import { TagRole, tagRole } from './tags.js';

/** A studio page stand-in: the WebSocket protocol, driven by hand. */
class StudioClient {
  readonly ws: WebSocket;
  readonly messages: StudioServerMessage[] = [];
  closeCode: number | undefined;

  constructor(port: number) {
    this.ws = new WebSocket(`ws://127.0.0.1:${port}/studio-ws`, { origin: `http://127.0.0.1:${port}` });
    this.ws.on('message', (data, binary) => {
      if (!binary) this.messages.push(parseStudioServerMessage(data.toString()));
    });
    this.ws.on('close', (code) => (this.closeCode = code));
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  destination(id: string): DestinationStatus | undefined {
    for (let i = this.messages.length - 1; i >= 0; i--) {
      const m = this.messages[i];
      if (m?.type === 'status') return m.destinations.find((d) => d.id === id);
    }
    return undefined;
  }

  waitState(id: string, state: DestinationStatus['state'], timeoutMs = 15_000): Promise<DestinationStatus> {
    return waitFor(`${id} ${state}`, () => {
      const d = this.destination(id);
      return d?.state === state ? d : undefined;
    }, timeoutMs);
  }

  start(destinations: { id: string; url: string }[]): void {
    this.ws.send(JSON.stringify({ type: 'start', destinations }));
  }

  async sendTags(tags: readonly FlvTag[], realtime = false): Promise<void> {
    const t0 = performance.now();
    for (const tag of tags) {
      if (realtime) {
        const wait = tag.timestamp - (performance.now() - t0);
        if (wait > 5) await new Promise((r) => setTimeout(r, wait));
      }
      this.ws.send(flvTag(tag));
    }
    await waitFor('socket drained', () => (this.ws.bufferedAmount === 0 ? true : undefined));
  }

  close(): void {
    this.ws.close();
  }
}

/** Forwards TCP to a server; can cut every connection or stop reading to simulate a stalled link. */
class TcpProxy {
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  #stalled = false;
  port = 0;

  constructor(targetPort: number) {
    this.#server = createServer((client) => {
      const upstream = createConnection(targetPort, '127.0.0.1');
      const pair: [Socket, Socket] = [client, upstream];
      this.#pairs.add(pair);
      client.pipe(upstream);
      upstream.pipe(client);
      if (this.#stalled) client.pause();
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        this.#pairs.delete(pair);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
  }

  cut(): void {
    for (const [a, b] of this.#pairs) {
      a.destroy();
      b.destroy();
    }
  }

  stall(on: boolean): void {
    this.#stalled = on;
    for (const [client] of this.#pairs) {
      if (on) {
        client.unpipe();
        client.pause();
      } else {
        client.pipe([...this.#pairs].find(([c]) => c === client)![1]);
        client.resume();
      }
    }
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

function readFlv(path: string): FlvTag[] {
  const reader = new FlvReader();
  return reader.push(readFileSync(path));
}

function writeFlv(path: string, tags: readonly FlvTag[]): void {
  writeFileSync(path, Buffer.concat([flvHeader({ audio: true, video: true }), ...tags.map((t) => flvTag(t))]));
}

interface ProbePacket {
  stream_index: number;
  dts_time: string;
  flags: string;
}

async function videoPackets(file: string): Promise<ProbePacket[]> {
  const out = await runChecked('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=stream_index,dts_time,flags', '-of', 'json', file], { captureStdout: true });
  return (JSON.parse(out.toString()) as { packets: ProbePacket[] }).packets;
}

const FAST_RETRY = { baseMs: 200, factor: 1.5, maxMs: 1000, jitter: 0.1 };

describe('studio session: WebSocket FLV tags relayed to RTMP servers', () => {
  let nginx: NginxRtmp;
  let server: OnairServer;
  let scratch: string;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'onair-studio-'));
    nginx = await startNginxRtmp({ record: true });
    server = await OnairServer.listen({
      host: '127.0.0.1',
      port: 0,
      webRoot: scratch,
      policy: new ServerPolicy({ host: '127.0.0.1' }),
      studioConfig: { localRtmp: null },
      studio: { retry: FAST_RETRY, statusIntervalMs: 200, maxBufferedBytes: 256 * 1024 },
    });
  });

  afterAll(async () => {
    await server?.close();
    await nginx?.dispose();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('judges the address dialled: a name rebinding to 127.0.0.1 fails, and reaches nginx when private destinations are allowed', async () => {
    const url = `rtmp://rebind.onair.test:${nginx.rtmpPort}/live/relaykey4`;
    // Public for isAllowed, loopback for the connect that follows: a rebinding DNS server.
    const answers = ['8.8.8.8', '127.0.0.1'];
    let calls = 0;
    const lookup: LookupFunction = (_host, options, callback) => {
      const address = answers[Math.min(calls++, answers.length - 1)] ?? '';
      setImmediate(() => (options.all ? callback(null, [{ address, family: 4 }]) : callback(null, address, 4)));
    };
    const relay = (policy: ServerPolicy): DestinationRelay =>
      new DestinationRelay({
        id: 'rebind',
        url,
        policy,
        streamStart: () => ({ metadata: undefined, audioConfig: undefined, videoConfig: undefined, gop: [] }),
        onChange: () => undefined,
        retry: FAST_RETRY,
      });
    const guarded = relay(new ServerPolicy({ host: '0.0.0.0', token: 't', lookup }));
    await waitFor('refused', () => (guarded.state === 'failed' ? true : undefined));
    const reason = guarded.status().reason ?? '';
    expect(reason).toMatch(/refused to connect to 127\.0\.0\.1 \(rebind\.onair\.test\).*\[DESTINATION_REFUSED\]$/);
    expect(reason).not.toContain('relaykey4');
    expect(calls).toBe(2);
    const open = relay(new ServerPolicy({ host: '0.0.0.0', token: 't', allowPrivateDestinations: true, lookup }));
    await waitFor('live', () => (open.state === 'live' ? true : undefined));
    await open.stop();
    expect(open.state).toBe('stopped');
  });

  it('relays every tag unchanged, replays the first GOP, and one dead destination does not stop the other', async () => {
    const input = readFlv(await shortFlv());
    const client = new StudioClient(server.port);
    await client.opened();
    await waitFor('welcome', () => (client.messages[0]?.type === 'welcome' ? true : undefined));
    const deadPort = await freePort();
    client.start([
      { id: 'nginx', url: nginx.url('live', 'relay1') },
      { id: 'dead', url: `rtmp://127.0.0.1:${deadPort}/live/secret-dead-key` },
    ]);
    // The first second goes out before the destination is live: it must come from the GOP cache.
    const firstSecond = input.filter((t) => t.timestamp < 1000);
    await client.sendTags(firstSecond);
    await client.waitState('nginx', 'live');
    await client.sendTags(input.slice(firstSecond.length));
    const dead = await client.waitState('dead', 'retrying');
    expect(dead.reason).toMatch(/refused/);
    expect(JSON.stringify(client.messages)).not.toContain('secret-dead-key');
    expect(dead.url).toBe(`rtmp://127.0.0.1:${deadPort}/live/***`);
    await waitFor('all sent', () => (client.destination('nginx')!.bytes >= input.reduce((n, t) => n + t.data.length, 0) * 0.99 ? true : undefined));
    client.ws.send(JSON.stringify({ type: 'stop' }));
    await client.waitState('nginx', 'stopped');
    await client.waitState('dead', 'stopped');
    client.close();

    // What nginx recorded equals the input from its first keyframe on (audio before it goes).
    const firstKey = input.findIndex((t) => tagRole(t) === TagRole.VideoKey);
    const expected = input.filter((t, i) => i >= firstKey || tagRole(t) === TagRole.Metadata || tagRole(t) === TagRole.AudioConfig || tagRole(t) === TagRole.VideoConfig);
    const expectedFile = join(scratch, 'expected1.flv');
    writeFlv(expectedFile, expected);
    const recorded = await nginx.recordingDone('relay1');
    const cmp = comparePackets(await framemd5(expectedFile), await framemd5(recorded), 'exact');
    expect(cmp.equal, cmp.summary).toBe(true);
    expect(client.destination('nginx')!.dropped).toBe(0);
  });

  it('reconnects after the link drops: metadata and headers again, timestamps from 0, video from a keyframe', async () => {
    const input = readFlv(await shortFlv());
    const proxy = new TcpProxy(nginx.rtmpPort);
    await proxy.listen();
    const client = new StudioClient(server.port);
    await client.opened();
    client.start([{ id: 'p', url: `rtmp://127.0.0.1:${proxy.port}/live/relay2` }]);
    await client.waitState('p', 'live');
    const cutAt = input.findIndex((t) => t.timestamp > 1000);
    await client.sendTags(input.slice(0, cutAt), true);
    proxy.cut();
    await client.waitState('p', 'retrying');
    await client.waitState('p', 'live');
    await client.sendTags(input.slice(cutAt), true);
    client.ws.send(JSON.stringify({ type: 'stop' }));
    await client.waitState('p', 'stopped');
    client.close();
    await proxy.close();

    // nginx truncates the recording when the stream is published again: what is left is the
    // second connection, which must stand on its own.
    const recorded = await nginx.recordingDone('relay2');
    const packets = await videoPackets(recorded);
    expect(packets[0]?.flags.startsWith('K')).toBe(true);
    expect(Number(packets[0]?.dts_time)).toBe(0);
    // Source keyframes are at 0 s and 2 s: the second connection starts at 2 s, 60 frames left.
    expect(packets.length).toBe(60);
    const streams = await ffprobeStreams(recorded, { decode: true });
    expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
  });

  it('drops video to the next keyframe when a destination falls behind, and memory stays bounded', async () => {
    const input = readFlv(await flvFixture({ seconds: 60 }));
    const proxy = new TcpProxy(nginx.rtmpPort);
    await proxy.listen();
    const client = new StudioClient(server.port);
    await client.opened();
    client.start([{ id: 'slow', url: `rtmp://127.0.0.1:${proxy.port}/live/relay3` }]);
    await client.waitState('slow', 'live');
    proxy.stall(true);
    await client.sendTags(input.slice(0, input.length / 2));
    await waitFor('status after the burst', () => (client.destination('slow')!.dropped > 0 ? true : undefined));
    const during = client.destination('slow')!;
    // 256 KiB limit: audio may add up to twice that, never the 10 MB sent meanwhile.
    expect(during.bufferedBytes).toBeLessThan(1024 * 1024);
    proxy.stall(false);
    await client.sendTags(input.slice(input.length / 2));
    client.ws.send(JSON.stringify({ type: 'stop' }));
    await client.waitState('slow', 'stopped', 30_000);
    client.close();
    await proxy.close();
    // Every frame nginx got decodes: nothing references a dropped frame.
    const recorded = await nginx.recordingDone('relay3');
    await ffprobeStreams(recorded, { decode: true });
  });
});

describe('destination retry schedule', () => {
  it('backs off ×factor up to the cap, against a real refused connection', async () => {
    const port = await freePort();
    const delays: number[] = [];
    // onChange fires from inside the constructor (state "connecting"), before `relay` is assigned.
    const box: { relay?: DestinationRelay } = {};
    const relay = new DestinationRelay({
      id: 'd',
      url: `rtmp://127.0.0.1:${port}/live/k`,
      policy: { isAllowed: () => undefined, connectOptions: () => ({}) },
      streamStart: () => ({ metadata: undefined, audioConfig: undefined, videoConfig: undefined, gop: [] }),
      onChange: () => {
        const s = box.relay?.status();
        if (s?.state === 'retrying') delays.push(s.retryInMs ?? -1);
      },
      retry: { baseMs: 100, factor: 2, maxMs: 400, jitter: 0 },
    });
    box.relay = relay;
    await waitFor('five attempts', () => (delays.length >= 5 ? true : undefined), 10_000);
    await relay.stop();
    expect(relay.state).toBe('stopped');
    expect(delays.slice(0, 5).map((d) => Math.round(d / 10) * 10)).toEqual([100, 200, 400, 400, 400]);
  });
});

describe('studio session shutdown', () => {
  it('a bridge shutting down closes the page socket with 1001 (going away)', async () => {
    const webRoot = mkdtempSync(join(tmpdir(), 'onair-studio-shutdown-'));
    const server = await OnairServer.listen({ host: '127.0.0.1', port: 0, webRoot, policy: new ServerPolicy({ host: '127.0.0.1' }), studioConfig: { localRtmp: null } });
    try {
      const client = new StudioClient(server.port);
      await client.opened();
      await waitFor('welcome', () => (client.messages[0]?.type === 'welcome' ? true : undefined));
      await server.close();
      await waitFor('closed', () => client.closeCode);
      expect(client.closeCode).toBe(1001);
    } finally {
      await server.close().catch(() => undefined);
      rmSync(webRoot, { recursive: true, force: true });
    }
  });
});

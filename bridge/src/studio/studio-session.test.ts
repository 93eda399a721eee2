import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlvReader, TagKind, flvHeader, flvTag, tagKind, type FlvTag } from '@onair/shared';
import { flvFixture, shortFlv } from '../../test/harness/fixtures.js';
import { comparePackets, ffprobeStreams, framemd5 } from '../../test/harness/judge.js';
import { startNginxRtmp, type NginxRtmp } from '../../test/harness/nginx.js';
import { freePort } from '../../test/harness/ports.js';
import { runChecked, spawnTracked, waitFor } from '../../test/harness/proc.js';
import { startChaosProxy } from '../../test/harness/proxy.js';
import { StudioClient } from '../../test/harness/studio-client.js';
import { OnairServer, type StudioServerOptions } from '../server/onair-server.js';
import { ServerPolicy } from '../server/policy.js';
import { DestinationRelay } from '../relay/destination-relay.js';

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

/** A bridge on a free loopback port with its studio options, and an nginx-rtmp recording: set up for one describe. */
function studioBridge(studio: StudioServerOptions): { nginx: NginxRtmp; server: OnairServer; scratch: string } {
  const ctx = {} as { nginx: NginxRtmp; server: OnairServer; scratch: string };
  beforeAll(async () => {
    ctx.scratch = mkdtempSync(join(tmpdir(), 'onair-studio-'));
    ctx.nginx = await startNginxRtmp({ record: true });
    ctx.server = await OnairServer.listen({
      host: '127.0.0.1',
      port: 0,
      webRoot: ctx.scratch,
      policy: new ServerPolicy({ host: '127.0.0.1' }),
      studioConfig: { localRtmp: null },
      studio: { retry: FAST_RETRY, statusIntervalMs: 200, ...studio },
    });
  });
  afterAll(async () => {
    await ctx.server?.close();
    await ctx.nginx?.dispose();
    if (ctx.scratch) rmSync(ctx.scratch, { recursive: true, force: true });
  });
  return ctx;
}

describe('studio session: WebSocket FLV tags relayed to RTMP servers', () => {
  const ctx = studioBridge({ maxBufferedBytes: 256 * 1024 });

  it('judges the address dialled: a name rebinding to 127.0.0.1 fails, and reaches nginx when private destinations are allowed', async () => {
    const url = `rtmp://rebind.onair.test:${ctx.nginx.rtmpPort}/live/relaykey4`;
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
        streamStart: () => ({ headers: [], gop: [] }),
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
    const client = new StudioClient(ctx.server.port);
    await client.opened();
    await waitFor('welcome', () => (client.messages[0]?.type === 'welcome' ? true : undefined));
    const deadPort = await freePort();
    await client.start([
      { id: 'nginx', url: ctx.nginx.url('live', 'relay1') },
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
    await client.stop();
    expect(client.destination('nginx')?.state).toBe('stopped');
    expect(client.destination('dead')?.state).toBe('stopped');
    client.close();

    // What nginx recorded equals the input from its first keyframe on (audio before it goes).
    const firstKey = input.findIndex((t) => tagKind(t) === TagKind.Keyframe);
    const expected = input.filter((t, i) => i >= firstKey || [TagKind.Metadata, TagKind.AudioConfig, TagKind.VideoConfig].includes(tagKind(t)));
    const expectedFile = join(ctx.scratch, 'expected1.flv');
    writeFlv(expectedFile, expected);
    const recorded = await ctx.nginx.recordingDone('relay1');
    const cmp = comparePackets(await framemd5(expectedFile), await framemd5(recorded), 'exact');
    expect(cmp.equal, cmp.summary).toBe(true);
    expect(client.destination('nginx')!.dropped).toBe(0);
  });

  it('reconnects after the link drops: metadata and headers again, timestamps from 0, video from a keyframe', async () => {
    const input = readFlv(await shortFlv());
    const proxy = await startChaosProxy(ctx.nginx.rtmpPort);
    const client = new StudioClient(ctx.server.port);
    await client.start([{ id: 'p', url: `rtmp://127.0.0.1:${proxy.port}/live/relay2` }]);
    await client.waitState('p', 'live');
    const cutAt = input.findIndex((t) => t.timestamp > 1000);
    await client.sendTags(input.slice(0, cutAt), true);
    await proxy.reset();
    await client.waitState('p', 'retrying');
    await client.waitState('p', 'live');
    await client.sendTags(input.slice(cutAt), true);
    await client.stop();
    client.close();
    await proxy.close();

    // nginx truncates the recording when the stream is published again: what is left is the
    // second connection, which must stand on its own.
    const recorded = await ctx.nginx.recordingDone('relay2');
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
    const proxy = await startChaosProxy(ctx.nginx.rtmpPort);
    const client = new StudioClient(ctx.server.port);
    await client.start([{ id: 'slow', url: `rtmp://127.0.0.1:${proxy.port}/live/relay3` }]);
    await client.waitState('slow', 'live');
    proxy.pause(true);
    await client.sendTags(input.slice(0, input.length / 2));
    await waitFor('status after the burst', () => (client.destination('slow')!.dropped > 0 ? true : undefined));
    const during = client.destination('slow')!;
    // 256 KiB limit: audio may add up to twice that, never the 10 MB sent meanwhile.
    expect(during.bufferedBytes).toBeLessThan(1024 * 1024);
    proxy.pause(false);
    await client.sendTags(input.slice(input.length / 2));
    await client.stop();
    client.close();
    await proxy.close();
    // Every frame nginx got decodes: nothing references a dropped frame.
    const recorded = await ctx.nginx.recordingDone('relay3');
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
      streamStart: () => ({ headers: [], gop: [] }),
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

/** The input from its first keyframe on, with the headers: what a destination records of it. */
function fromFirstKeyframe(input: readonly FlvTag[]): FlvTag[] {
  const firstKey = input.findIndex((t) => tagKind(t) === TagKind.Keyframe);
  return input.filter((t, i) => i >= firstKey || [TagKind.Metadata, TagKind.AudioConfig, TagKind.VideoConfig].includes(tagKind(t)));
}

/** `publish: name='…'` lines in nginx's log: one per publish of the stream. */
function publishes(nginx: NginxRtmp, name: string): number {
  return nginx.errorLog().split('\n').filter((l) => l.includes(`publish: name='${name}'`)).length;
}

describe('studio session: the socket drops, the session stays', () => {
  const GRACE_MS = 1500;
  const ctx = studioBridge({ graceMs: GRACE_MS, limits: { maxSessions: 3 } });

  it('a page that comes back resends what the bridge missed: one publish, every frame once', async () => {
    const input = readFlv(await shortFlv());
    const client = new StudioClient(ctx.server.port);
    const welcome = await client.next('welcome');
    expect(welcome).toMatchObject({ version: 2, graceMs: GRACE_MS });
    await client.start([{ id: 'n', url: ctx.nginx.url('live', 'resume1') }]);
    await client.waitState('n', 'live');
    const third = Math.floor(input.length / 3);
    await client.sendTags(input.slice(0, third), true);
    await waitFor('an acknowledgement', () => (client.acked > 0 ? true : undefined));
    // Frames written just before the cut may or may not have reached the bridge.
    for (const tag of input.slice(third, third + 20)) client.sendFrame(flvTag(tag));
    client.drop();
    // Encoding goes on while the page is away.
    await client.sendTags(input.slice(third + 20, 2 * third), true);
    const received = await client.resume();
    expect(received).toBeGreaterThanOrEqual(third);
    expect(received).toBeLessThanOrEqual(third + 20);
    expect(client.destination('n')?.state).toBe('live');
    await client.sendTags(input.slice(2 * third), true);
    await client.stop();
    client.close();

    const expectedFile = join(ctx.scratch, 'resume1.flv');
    writeFlv(expectedFile, fromFirstKeyframe(input));
    const recorded = await ctx.nginx.recordingDone('resume1');
    const cmp = comparePackets(await framemd5(expectedFile), await framemd5(recorded), 'exact');
    expect(cmp.equal, cmp.summary).toBe(true);
    expect(publishes(ctx.nginx, 'resume1')).toBe(1);
  });

  it('a resume supersedes a half-open socket: it is closed, and what it still carries is ignored', async () => {
    const input = readFlv(await shortFlv());
    const client = new StudioClient(ctx.server.port);
    await client.start([{ id: 'n', url: ctx.nginx.url('live', 'resume2') }]);
    await client.waitState('n', 'live');
    const half = Math.floor(input.length / 2);
    await client.sendTags(input.slice(0, half));
    await waitFor('everything acknowledged', () => (client.acked === half ? true : undefined));
    const old = client.ws;
    const oldClosed = new Promise<number>((resolve) => old.once('close', (code) => resolve(code)));
    await client.resume();
    expect(await oldClosed).toBe(4001);
    await client.sendTags(input.slice(half));
    await client.stop();
    client.close();
    const expectedFile = join(ctx.scratch, 'resume2.flv');
    writeFlv(expectedFile, fromFirstKeyframe(input));
    const cmp = comparePackets(await framemd5(expectedFile), await framemd5(await ctx.nginx.recordingDone('resume2')), 'exact');
    expect(cmp.equal, cmp.summary).toBe(true);
  });

  it('a gap the page could not resend: the timeline continues at the next keyframe, without a jump', async () => {
    const input = readFlv(await flvFixture({ seconds: 8 }));
    const client = new StudioClient(ctx.server.port);
    await client.start([{ id: 'n', url: ctx.nginx.url('live', 'gap1') }]);
    await client.waitState('n', 'live');
    const before = input.filter((t) => t.timestamp < 1500);
    await client.sendTags(before, true);
    client.drop();
    // Lost: everything up to the keyframe at 4 s. The page says so, then sends the headers and
    // media from that keyframe on.
    const keyAt = input.findIndex((t) => t.timestamp >= 4000 && tagKind(t) === TagKind.Keyframe);
    const headers = input.filter((t) => [TagKind.Metadata, TagKind.AudioConfig, TagKind.VideoConfig].includes(tagKind(t)));
    await client.resume(false);
    client.send({ type: 'gap', frames: 75, ms: 2500 });
    await client.sendTags([...headers, ...input.slice(keyAt)], true);
    await waitFor('the gap reported', () => {
      const last = client.messages.findLast((m) => m.type === 'status');
      return last?.type === 'status' && last.gaps.count === 1 ? last.gaps : undefined;
    });
    await client.stop();
    client.close();
    const recorded = await ctx.nginx.recordingDone('gap1');
    const packets = await videoPackets(recorded);
    const times = packets.map((p) => Number(p.dts_time));
    const jumps = times.slice(1).map((t, i) => t - times[i]!);
    expect(Math.max(...jumps)).toBeLessThan(0.1);
    const expectedFrames = input.filter((t, i) => (t.timestamp < 1500 || i >= keyAt) && (tagKind(t) === TagKind.Keyframe || tagKind(t) === TagKind.Frame)).length;
    expect(packets.length).toBe(expectedFrames);
    await ffprobeStreams(recorded, { decode: true });
    expect(publishes(ctx.nginx, 'gap1')).toBe(1);
  });

  it('a page that does not come back within the grace period: destinations unpublish, the session is gone', async () => {
    const input = readFlv(await shortFlv());
    const client = new StudioClient(ctx.server.port);
    await client.start([{ id: 'n', url: ctx.nginx.url('live', 'grace1') }]);
    await client.waitState('n', 'live');
    await client.sendTags(input.slice(0, 100));
    client.drop();
    const droppedAt = Date.now();
    await ctx.nginx.recordingDone('grace1', GRACE_MS + 10_000);
    expect(Date.now() - droppedAt).toBeGreaterThanOrEqual(GRACE_MS - 100);
    await expect(client.resume()).rejects.toThrow();
    expect(client.closeCode).toBe(4002);
    expect(client.messages.findLast((m) => m.type === 'error')).toMatchObject({ code: 'SESSION_UNKNOWN' });
  });

  it('caps the sessions: one too many is told to try again later (1013)', async () => {
    const port = await freePort();
    const held = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const c = new StudioClient(ctx.server.port);
        await c.start([{ id: 'x', url: `rtmp://127.0.0.1:${port}/live/cap${i}` }]);
        return c;
      }),
    );
    const extra = new StudioClient(ctx.server.port);
    await extra.opened();
    extra.send({ type: 'start', destinations: [{ id: 'x', url: `rtmp://127.0.0.1:${port}/live/cap3` }] });
    await waitFor('refused', () => extra.closeCode);
    expect(extra.closeCode).toBe(1013);
    expect(extra.messages.findLast((m) => m.type === 'error')).toMatchObject({ code: 'SESSION_LIMIT' });
    for (const c of held) await c.stop();
  });
});

describe('studio session: a destination that stops reading', () => {
  it('is found out by its missing acknowledgements and retried within 30 s; the other destination carries on', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'onair-stall-'));
    const [stalled, healthy] = await Promise.all([startNginxRtmp({ record: true }), startNginxRtmp({ record: true })]);
    const server = await OnairServer.listen({
      host: '127.0.0.1',
      port: 0,
      webRoot: scratch,
      policy: new ServerPolicy({ host: '127.0.0.1' }),
      studioConfig: { localRtmp: null },
      studio: { retry: { baseMs: 60_000, factor: 1, maxMs: 60_000, jitter: 0 }, statusIntervalMs: 200 },
    });
    try {
      const input = readFlv(await flvFixture({ seconds: 60 }));
      const client = new StudioClient(server.port);
      await client.start([
        { id: 'stalled', url: stalled.url('live', 'stall1') },
        { id: 'healthy', url: healthy.url('live', 'stall2') },
      ]);
      await Promise.all([client.waitState('stalled', 'live'), client.waitState('healthy', 'live')]);
      const sending = client.sendTags(input.filter((t) => t.timestamp < 20_000), true);
      await new Promise((r) => setTimeout(r, 3000));
      process.kill(stalled.pid, 'SIGSTOP');
      const stoppedAt = Date.now();
      try {
        const retrying = await client.waitState('stalled', 'retrying', 30_000);
        const after = Date.now() - stoppedAt;
        console.log(`a destination that stopped reading was retried ${after} ms later: ${retrying.reason}`);
        expect(retrying.reason).toMatch(/RTMP_ACK_STALLED|RTMP_SEND_STALLED/);
        expect(client.destination('healthy')?.state).toBe('live');
      } finally {
        process.kill(stalled.pid, 'SIGCONT');
      }
      await sending;
      await client.stop();
      client.close();
      const recorded = await healthy.recordingDone('stall2');
      const packets = await videoPackets(recorded);
      const times = packets.map((p) => Number(p.dts_time));
      expect(Math.max(...times.slice(1).map((t, i) => t - times[i]!))).toBeLessThan(0.1);
      expect(times[times.length - 1]).toBeGreaterThan(18);
    } finally {
      await server.close();
      await Promise.all([stalled.dispose(), healthy.dispose()]);
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe('studio session: what a page may not send', () => {
  const ctx = studioBridge({});

  const script = (body: number[]): Uint8Array => flvTag({ type: 18, timestamp: 0, data: Uint8Array.from(body) });
  const name = (s: string): number[] => [0x02, 0, s.length, ...Buffer.from(s)];

  it.each([
    ['a script tag other than onMetaData', script([...name('onEvil'), 0x05])],
    ['onMetaData with a strict array announcing 4 billion entries', script([...name('onMetaData'), 0x0a, 0xff, 0xff, 0xff, 0xff])],
    ['onMetaData nested past the AMF depth limit', script([...name('onMetaData'), ...Array<number>(40).fill(0x0a).flatMap((m) => [m, 0, 0, 0, 1])])],
  ])('refuses %s: error, close 1007, the session ends and its destination unpublishes', async (_what, bytes) => {
    const key = `hostile${Math.random().toString(36).slice(2, 8)}`;
    const input = readFlv(await shortFlv());
    const client = new StudioClient(ctx.server.port);
    await client.start([{ id: 'n', url: ctx.nginx.url('live', key) }]);
    await client.waitState('n', 'live');
    await client.sendTags(input.slice(0, 80));
    client.sendFrame(bytes);
    await waitFor('closed', () => client.closeCode);
    expect(client.closeCode).toBe(1007);
    expect(client.messages.findLast((m) => m.type === 'error')).toMatchObject({ code: 'FLV_SCRIPT_REFUSED' });
    await ctx.nginx.recordingDone(key);
  });

  it('refuses a binary frame before start with 1008', async () => {
    const client = new StudioClient(ctx.server.port);
    await client.opened();
    client.ws.send(flvTag({ type: 9, timestamp: 0, data: Uint8Array.of(0x17, 1, 0, 0, 0) }));
    await waitFor('closed', () => client.closeCode);
    expect(client.closeCode).toBe(1008);
  });

  it('stops retrying a stream key the server keeps refusing, and says what to check', async () => {
    const taken = 'taken1';
    const source = await flvFixture({ seconds: 20 });
    const publisher = spawnTracked('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-i', source, '-c', 'copy', '-f', 'flv', ctx.nginx.url('live', taken)]);
    await waitFor('ffmpeg publishing', async () => (publishes(ctx.nginx, taken) > 0 ? true : undefined), 10_000);
    const client = new StudioClient(ctx.server.port);
    await client.start([{ id: 'n', url: ctx.nginx.url('live', taken) }]);
    const failed = await client.waitState('n', 'failed', 20_000);
    expect(failed.reason).toMatch(/refused the stream key: check it in the platform's dashboard/);
    expect(failed.reason).toMatch(/RTMP_PUBLISH_BADNAME/);
    expect(failed.reason).not.toContain(taken);
    await client.stop();
    client.close();
    await publisher.stop();
  });
});

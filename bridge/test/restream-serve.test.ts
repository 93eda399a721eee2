import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { RestreamInputStatus, RestreamState } from '@onair/shared';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { flvFixture } from './harness/fixtures.js';
import { framemd5, type FrameMd5, type PacketLine } from './harness/judge.js';
import { startNginxRtmp, type NginxRtmp } from './harness/nginx.js';
import { startNodeMediaServer, type NodeMediaServerHandle } from './harness/nms.js';
import { freePort, waitForPort } from './harness/ports.js';
import { makeTempDir, removeTempDir, spawnTracked, waitFor } from './harness/proc.js';
import { killOnairProcesses, startOnair, type OnairProcess } from './harness/run.js';

// The restream of `onair serve`, through its HTTP API, against the real process: an encoder
// (ffmpeg) publishes to the embedded server with an ingest key; the bridge relays it to
// nginx-rtmp and node-media-server at once. Judged by the servers' recordings (ffmpeg framemd5).

let nginx: NginxRtmp;
/** Drops a publisher that sent nothing for 2 s, as SRS does after 5–9 s; appends every publish to one recording. */
let dropping: NginxRtmp;
let nms: NodeMediaServerHandle;
let source: string;
let sourcePackets: FrameMd5;
let dir: string;

beforeAll(async () => {
  source = await flvFixture({ seconds: 20 });
  sourcePackets = await framemd5(source);
  [nginx, dropping, nms] = await Promise.all([
    startNginxRtmp({ stat: true }),
    startNginxRtmp({ liveDirectives: 'drop_idle_publisher 2s; record_append on;' }),
    startNodeMediaServer({ record: true, publishGraceMs: 0 }),
  ]);
  dir = makeTempDir('onair-restream-serve-');
});
afterEach(killOnairProcesses);
afterAll(async () => {
  await Promise.all([nginx?.dispose(), dropping?.dispose(), nms?.stop()]);
  if (dir) removeTempDir(dir);
});

interface Serve {
  onair: OnairProcess;
  api: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: RestreamState & { error?: string } }>;
  rtmpPort: number;
  base: string;
}

async function serve(configDir: string, extra: readonly string[] = []): Promise<Serve> {
  const port = await freePort();
  const rtmpPort = await freePort();
  const onair = startOnair(['serve', '--port', String(port), '--local-rtmp-port', String(rtmpPort), '--config-dir', configDir, '--restream-grace', '8', '--verbose', ...extra], { timeoutMs: 300_000 });
  await waitForPort(port, 60_000, () => onair.process.exitCode === null);
  await waitForPort(rtmpPort, 20_000, () => onair.process.exitCode === null);
  const api: Serve['api'] = async (method, path, body) => {
    const res = await fetch(`http://127.0.0.1:${port}/api/restream${path}`, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    });
    return { status: res.status, body: (await res.json()) as RestreamState & { error?: string } };
  };
  return { onair, api, rtmpPort, base: `http://127.0.0.1:${port}` };
}

function input(state: RestreamState, id: string): RestreamInputStatus {
  const found = state.inputs.find((i) => i.id === id);
  if (found === undefined) throw new Error(`input ${id} missing`);
  return found;
}

function streamOf(f: FrameMd5, type: string): PacketLine[] {
  const index = [...f.mediaTypes].find(([, t]) => t === type)?.[0];
  return f.packets.filter((p) => p.stream === index);
}

/**
 * The recording is the source's first `k` packets, then the whole source again from its first
 * keyframe (the encoder started over), payloads byte for byte; `k` is returned.
 */
function expectPrefixThenWhole(recorded: PacketLine[], expected: PacketLine[], slack: number): number {
  const r = recorded.map((p) => p.md5);
  const e = expected.map((p) => p.md5);
  // Where the second run starts: the last place the source's first packet appears.
  const restart = r.lastIndexOf(e[0]!);
  expect(restart, 'the encoder restart is in the recording').toBeGreaterThan(0);
  expect(r.slice(0, restart), 'before the drop: the source from its start').toEqual(e.slice(0, restart));
  const second = r.slice(restart);
  // After the restart everything but at most `slack` packets (audio before the first keyframe).
  const skipped = e.length - second.length;
  expect(skipped).toBeGreaterThanOrEqual(0);
  expect(skipped).toBeLessThanOrEqual(slack);
  expect(second).toEqual(e.slice(skipped));
  return restart;
}

/** Publishes the fixture in real time; resolves with ffmpeg's exit status (non-zero when refused). */
async function publishFor(url: string, ms: number): Promise<number | null> {
  const ffmpeg = spawnTracked('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-i', source, '-map', '0', '-c', 'copy', '-f', 'flv', url]);
  const timer = setTimeout(() => void ffmpeg.stop('SIGKILL'), ms);
  const exit = await ffmpeg.exited;
  clearTimeout(timer);
  return exit.code;
}

describe('onair serve restreams an encoder', () => {
  it('relays an ingest to nginx-rtmp and node-media-server at once; an encoder killed and back 5 s later continues the same publish on one timeline; a server that drops the silent publisher gets a clean republish', async () => {
    const { onair, api, rtmpPort } = await serve(join(dir, 'config-a'));
    const created = await api('POST', '/inputs', { name: 'OBS' });
    expect(created.status).toBe(201);
    const id = created.body.inputs[0]!.id;
    const key = created.body.inputs[0]!.streamKey!;
    expect(key).toMatch(/^live_[0-9a-f]{32}$/);
    for (const url of [nginx.url('live', 'rs-a'), nms.url('live', 'rs-a'), dropping.url('live', 'rs-a')]) {
      const added = await api('POST', `/inputs/${id}/destinations`, { url, autoStart: true });
      expect(added.status, added.body.error).toBe(201);
    }
    // The setup is on disk for the owner only.
    expect(statSync(join(dir, 'config-a', 'restream.json')).mode & 0o777).toBe(0o600);

    // Destination states, sampled all along: they must never leave `live` once there.
    const seen: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const s = (await api('GET', '')).body;
        const i = input(s, id);
        // The first two must stay live; the third (dropping) reconnects during the pause.
        seen.push(`${i.state}:${i.destinations.slice(0, 2).map((d) => d.state).join(',')}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();

    const ingest = `rtmp://127.0.0.1:${rtmpPort}/live/${key}`;
    const encoder = (): ReturnType<typeof spawnTracked> =>
      spawnTracked('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-i', source, '-map', '0', '-c', 'copy', '-f', 'flv', ingest]);
    const first = encoder();
    await waitFor('every destination live', async () => (input((await api('GET', '')).body, id).destinations.every((d) => d.state === 'live') ? true : undefined), 20_000);
    const live = input((await api('GET', '')).body, id);
    expect(live.state).toBe('live');
    await new Promise((r) => setTimeout(r, 6000));
    const stats = input((await api('GET', '')).body, id).stats;
    expect(stats).toMatchObject({ videoCodec: expect.stringMatching(/^avc1\./), audioCodec: 'mp4a.40.2', width: 1280, height: 720 });
    expect(stats.fps).toBeGreaterThan(20);
    expect(stats.bitrateKbps).toBeGreaterThan(1000);
    await first.stop('SIGKILL');
    await waitFor('the input to be away', async () => (input((await api('GET', '')).body, id).state === 'reconnecting' ? true : undefined), 5000);
    await new Promise((r) => setTimeout(r, 5000));
    const second = encoder();
    await second.exited;
    await waitFor('the input to end after the grace period', async () => (input((await api('GET', '')).body, id).state === 'ended' ? true : undefined), 20_000);
    sampling = false;
    await sampler;

    const states = seen.filter((s) => !s.startsWith('waiting'));
    const firstLive = states.findIndex((s) => s.endsWith('live,live'));
    const lastLive = states.findLastIndex((s) => s.endsWith('live,live'));
    expect(states.slice(firstLive, lastLive + 1).every((s) => s.endsWith('live,live')), states.join(' ')).toBe(true);
    expect(states.some((s) => s.startsWith('reconnecting:live,live'))).toBe(true);
    expect(input((await api('GET', '')).body, id).stats.reconnects).toBe(1);

    for (const file of [await nginx.recordingDone('rs-a'), await nms.recordingDone('live', 'rs-a')]) {
      const recorded = await framemd5(file);
      const video = streamOf(recorded, 'video');
      expectPrefixThenWhole(video, streamOf(sourcePackets, 'video'), 0);
      expectPrefixThenWhole(streamOf(recorded, 'audio'), streamOf(sourcePackets, 'audio'), 3);
      // One timeline: no step between video frames over 100 ms, none backwards.
      const steps = video.slice(1).map((p, i) => p.dts - video[i]!.dts);
      expect(Math.max(...steps)).toBeLessThanOrEqual(100);
      expect(Math.min(...steps)).toBeGreaterThanOrEqual(0);
    }
    // nginx-rtmp saw one publish: a second would have restarted its recording without the first part.
    // The server that dropped the silent publisher got a new publish, started cleanly at a keyframe
    // of the returning encoder (its first, or the next one when the handshake ended after it): the
    // publishes appended to one recording hold the first part, then the second run from that keyframe.
    const republished = streamOf(await framemd5(await dropping.recordingDone('rs-a')), 'video').map((p) => p.md5);
    const whole = streamOf(sourcePackets, 'video').map((p) => p.md5);
    // The fixture has a keyframe every 60 frames (-g 60, closed GOPs): decode order 0, 60, 120…
    const keyframes = whole.flatMap((_, i) => (i % 60 === 0 ? [i] : []));
    const resumedAt = keyframes.find((k) => republished.lastIndexOf(whole[k]!) > 0 && republished.slice(republished.lastIndexOf(whole[k]!)).join() === whole.slice(k).join());
    expect(resumedAt, 'the second run, from a keyframe to its end').toBeDefined();
    expect(resumedAt!).toBeLessThanOrEqual(keyframes[1]!);
    const cut = republished.lastIndexOf(whole[resumedAt!]!);
    expect(republished.slice(0, cut)).toEqual(whole.slice(0, cut));
    expect(onair.process.exitCode).toBeNull();
  });

  it('keeps inputs, ingest keys and destinations across a restart; refuses bad requests in plain words', async () => {
    const configDir = join(dir, 'config-b');
    const a = await serve(configDir);
    const created = await a.api('POST', '/inputs', { name: 'Phone' });
    const { id, streamKey } = created.body.inputs[0]!;
    await a.api('POST', `/inputs/${id}/destinations`, { url: nginx.url('live', 'kept-key'), autoStart: false });
    const bad = await a.api('POST', `/inputs/${id}/destinations`, { url: 'http://example.com/x', autoStart: false });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/rtmp/);
    const dup = await a.api('POST', `/inputs/${id}/destinations`, { url: nginx.url('live', 'kept-key'), autoStart: false });
    expect(dup.status).toBe(409);
    // Another site's page cannot change the setup.
    const crossSite = await fetch(`${a.base}/api/restream/inputs`, {
      method: 'POST',
      body: JSON.stringify({ name: 'evil' }),
      headers: { 'content-type': 'application/json', origin: 'http://evil.example' },
    });
    expect(crossSite.status).toBe(403);
    // Bodies are JSON, and small.
    const asText = await fetch(`${a.base}/api/restream/inputs`, { method: 'POST', body: JSON.stringify({ name: 'x' }), headers: { 'content-type': 'text/plain' } });
    expect(asText.status).toBe(415);
    const huge = await fetch(`${a.base}/api/restream/inputs`, { method: 'POST', body: JSON.stringify({ name: 'x'.repeat(20_000) }), headers: { 'content-type': 'application/json' } });
    expect(huge.status).toBe(413);
    expect(((await huge.json()) as { error: string }).error).toMatch(/16384 bytes/);
    await a.onair.kill('SIGTERM');
    await a.onair.result;

    const b = await serve(configDir);
    const state = (await b.api('GET', '')).body;
    expect(state.inputs).toHaveLength(1);
    expect(state.inputs[0]).toMatchObject({ id, name: 'Phone', kind: 'ingest', streamKey, state: 'waiting' });
    expect(state.inputs[0]!.destinations).toMatchObject([{ url: nginx.url('live', '***'), autoStart: false, state: 'stopped' }]);
    const removed = await b.api('DELETE', `/inputs/${id}`);
    expect(removed.status).toBe(200);
    expect(removed.body.inputs).toHaveLength(0);

    // A stream publishing with a key of its own (the ingest is open on loopback) is listed, and
    // becomes an input on request.
    const adhoc = spawnTracked('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-i', source, '-map', '0', '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${b.rtmpPort}/live/adhoc-key`]);
    const listed = await waitFor('the stream to be listed', async () => (await b.api('GET', '')).body.unclaimed.find((u) => u.key === 'adhoc-key'), 15_000);
    expect(listed.watchPath).toBe('/watch/live/adhoc-key');
    const adopted = await b.api('POST', '/inputs', { name: 'Ad hoc', key: 'adhoc-key' });
    expect(adopted.status, adopted.body.error).toBe(201);
    expect(adopted.body.unclaimed).toEqual([]);
    const adoptedId = adopted.body.inputs[0]!.id;
    await waitFor('the adopted input to be live', async () => (input((await b.api('GET', '')).body, adoptedId).state === 'live' ? true : undefined), 10_000);
    expect((await b.api('POST', '/inputs', { name: 'Twice', key: 'adhoc-key' })).status).toBe(409);
    await adhoc.stop('SIGKILL');
  });

  it('with the embedded server on every address, takes only ingest keys made in the Restream view, also after a restart', async () => {
    const configDir = join(dir, 'config-c');
    const a = await serve(configDir, ['--local-rtmp-host', '0.0.0.0']);
    const created = await a.api('POST', '/inputs', { name: 'Remote OBS' });
    expect(created.body.ingest).toMatchObject({ host: null, open: false, app: 'live', port: a.rtmpPort });
    const { id, streamKey } = created.body.inputs[0]!;
    // An unknown key is refused at once: ffmpeg gives up long before the 10 s it would take.
    expect(await publishFor(`rtmp://127.0.0.1:${a.rtmpPort}/live/live_0123456789abcdef0123456789abcdef`, 10_000)).not.toBe(0);
    const goodA = publishFor(`rtmp://127.0.0.1:${a.rtmpPort}/live/${streamKey!}`, 15_000);
    await waitFor('the input to be live', async () => (input((await a.api('GET', '')).body, id).state === 'live' ? true : undefined), 10_000);
    await a.onair.kill('SIGTERM');
    await a.onair.result;
    await goodA;

    const b = await serve(configDir, ['--local-rtmp-host', '0.0.0.0']);
    expect(await publishFor(`rtmp://127.0.0.1:${b.rtmpPort}/live/not-a-key`, 10_000)).not.toBe(0);
    const goodB = publishFor(`rtmp://127.0.0.1:${b.rtmpPort}/live/${streamKey!}`, 15_000);
    await waitFor('the input to be live after the restart', async () => (input((await b.api('GET', '')).body, id).state === 'live' ? true : undefined), 10_000);
    // Removing the input revokes its key: the encoder is cut and cannot come back.
    await b.api('DELETE', `/inputs/${id}`);
    expect(await goodB).not.toBe(0);
    expect(await publishFor(`rtmp://127.0.0.1:${b.rtmpPort}/live/${streamKey!}`, 10_000)).not.toBe(0);
  });

  it('the embedded server killed under a live restream: the bridge stays up, destinations hold, the encoder comes back on the same publish', async () => {
    const { onair, api, rtmpPort, base } = await serve(join(dir, 'config-d'));
    const id = (await api('POST', '/inputs', { name: 'Crash' })).body.inputs[0]!.id;
    const key = input((await api('GET', '')).body, id).streamKey!;
    await api('POST', `/inputs/${id}/destinations`, { url: nginx.url('live', 'crash-a'), autoStart: true });
    const ingest = `rtmp://127.0.0.1:${rtmpPort}/live/${key}`;
    const encode = (): ReturnType<typeof spawnTracked> =>
      spawnTracked('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-i', source, '-map', '0', '-c', 'copy', '-f', 'flv', ingest]);
    const first = encode();
    await waitFor('the destination live', async () => (input((await api('GET', '')).body, id).destinations[0]?.state === 'live' ? true : undefined), 20_000);
    await new Promise((r) => setTimeout(r, 4000));
    const pid = ((await (await fetch(`${base}/metrics.json`)).json()) as { localRtmp: { pid: number } }).localRtmp.pid;
    process.kill(pid, 'SIGKILL');
    // The encoder loses its server; like OBS, it tries again until the server is back.
    await first.exited;
    await waitFor('the embedded server back', async () => {
      const local = ((await (await fetch(`${base}/metrics.json`)).json()) as { localRtmp: { state: string; pid: number } }).localRtmp;
      return local.state === 'up' && local.pid !== pid ? true : undefined;
    }, 20_000);
    const second = encode();
    await waitFor('the input live again', async () => (input((await api('GET', '')).body, id).state === 'live' ? true : undefined), 15_000);
    expect(input((await api('GET', '')).body, id).destinations[0]?.state).toBe('live');
    await second.exited;
    await waitFor('the input to end after the grace period', async () => (input((await api('GET', '')).body, id).state === 'ended' ? true : undefined), 20_000);
    expect(onair.process.exitCode).toBeNull();
    // One publish on nginx-rtmp, one timeline: the first part, then the whole second run.
    const recorded = await framemd5(await nginx.recordingDone('crash-a'));
    const video = streamOf(recorded, 'video');
    expectPrefixThenWhole(video, streamOf(sourcePackets, 'video'), 0);
    const steps = video.slice(1).map((p, i) => p.dts - video[i]!.dts);
    expect(Math.max(...steps)).toBeLessThanOrEqual(100);
  });
});

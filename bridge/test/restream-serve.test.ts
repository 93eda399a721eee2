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
let nms: NodeMediaServerHandle;
let source: string;
let sourcePackets: FrameMd5;
let dir: string;

beforeAll(async () => {
  source = await flvFixture({ seconds: 20 });
  sourcePackets = await framemd5(source);
  [nginx, nms] = await Promise.all([startNginxRtmp({ stat: true }), startNodeMediaServer({ record: true, publishGraceMs: 0 })]);
  dir = makeTempDir('onair-restream-serve-');
});
afterEach(killOnairProcesses);
afterAll(async () => {
  await Promise.all([nginx?.dispose(), nms?.stop()]);
  if (dir) removeTempDir(dir);
});

interface Serve {
  onair: OnairProcess;
  api: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: RestreamState & { error?: string } }>;
  rtmpPort: number;
  base: string;
}

async function serve(configDir: string, ports?: { port: number; rtmpPort: number }): Promise<Serve> {
  const port = ports?.port ?? (await freePort());
  const rtmpPort = ports?.rtmpPort ?? (await freePort());
  const onair = startOnair(['serve', '--port', String(port), '--local-rtmp-port', String(rtmpPort), '--config-dir', configDir, '--restream-grace', '8', '--verbose'], { timeoutMs: 300_000 });
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

describe('onair serve restreams an encoder', () => {
  it('relays an ingest to nginx-rtmp and node-media-server at once; an encoder killed and back 5 s later continues the same publish on one timeline', async () => {
    const { onair, api, rtmpPort } = await serve(join(dir, 'config-a'));
    const created = await api('POST', '/inputs', { name: 'OBS' });
    expect(created.status).toBe(201);
    const id = created.body.inputs[0]!.id;
    const key = created.body.inputs[0]!.streamKey!;
    expect(key).toMatch(/^live_[0-9a-f]{32}$/);
    for (const url of [nginx.url('live', 'rs-a'), nms.url('live', 'rs-a')]) {
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
        seen.push(`${i.state}:${i.destinations.map((d) => d.state).join(',')}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();

    const ingest = `rtmp://127.0.0.1:${rtmpPort}/live/${key}`;
    const encoder = (): ReturnType<typeof spawnTracked> =>
      spawnTracked('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-i', source, '-map', '0', '-c', 'copy', '-f', 'flv', ingest]);
    const first = encoder();
    await waitFor('both destinations live', async () => (input((await api('GET', '')).body, id).destinations.every((d) => d.state === 'live') ? true : undefined), 20_000);
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
  });
});

import { createConnection, createServer, type AddressInfo, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalRtmp, type LocalRtmpOptions, type LocalRtmpStatus } from '../src/local-rtmp/local-rtmp.js';
import { ffmpegPublish } from './harness/ffmpeg.js';
import { flvFixture } from './harness/fixtures.js';
import { ffprobeStreams } from './harness/judge.js';
import { freePort, waitForPort } from './harness/ports.js';
import { makeTempDir, spawnTracked, waitFor, type Child, type Exit } from './harness/proc.js';
import { killOnairProcesses, startOnair } from './harness/run.js';

// The embedded server as a public ingest: only publish keys may publish, whoever the client is,
// and beyond loopback only this machine may play. Real node-media-server child processes, real
// ffmpeg publishers and players; ffprobe judges what a player got.

const servers: LocalRtmp[] = [];
const children: Child[] = [];

afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop('SIGKILL')));
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await killOnairProcesses();
});

interface Ingest {
  local: LocalRtmp;
  /** Streams announced as published (the bridge's warm hook: once per stream until it ends), in order. */
  published: string[];
  /** `rtmp://127.0.0.1:<port>/live/<key>` */
  url(key: string): string;
}

async function startIngest(opts: Partial<LocalRtmpOptions>): Promise<Ingest> {
  const lines: string[] = [];
  const local = await LocalRtmp.start({ port: await freePort(), verbose: true, log: (line) => lines.push(line), ...opts });
  servers.push(local);
  const published: string[] = [];
  local.warmPublished((_app, stream) => {
    published.push(stream);
    return () => undefined;
  });
  return { local, published, url: (key) => `rtmp://127.0.0.1:${local.port}/live/${key}` };
}

function publishLoop(file: string, url: string): Child {
  const child = spawnTracked('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', file, '-c', 'copy', '-f', 'flv', url]);
  children.push(child);
  return child;
}

/** ffmpeg's exit and how long after its start it came; throws if it is still publishing after `ms`. */
async function refusedWithin(child: Child, ms: number): Promise<{ exit: Exit; afterMs: number }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([child.exited, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]).finally(() => clearTimeout(timer));
  if (exit === undefined) throw new Error(`ffmpeg still publishing ${ms} ms after it started; the server did not refuse it`);
  return { exit, afterMs: performance.now() - started };
}

/** Plays `url` for 3 s with ffmpeg into an FLV and returns the video frames ffprobe decodes from it. */
async function playDecodes(url: string, dir: string, name: string): Promise<number> {
  const file = join(dir, `${name}.flv`);
  const player = spawnTracked('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-i', url, '-t', '3', '-c', 'copy', '-f', 'flv', '-y', file]);
  children.push(player);
  const timer = setTimeout(() => player.process.kill('SIGKILL'), 30_000);
  const exit = await player.exited.finally(() => clearTimeout(timer));
  if (exit.code !== 0) throw new Error(`playing ${name} failed (${exit.code ?? exit.signal}):\n${player.tail()}`);
  const streams = await ffprobeStreams(file, { decode: true });
  expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
  return Number(streams.find((s) => s.codec_type === 'video')?.nb_read_frames ?? 0);
}

/** Publishes `key` and checks that it is accepted: published, still going, and a play of it decodes. */
async function expectAccepted(ingest: Ingest, file: string, key: string, dir: string, playName: string): Promise<Child> {
  const before = ingest.published.length;
  const publisher = publishLoop(file, ingest.url(key));
  await waitFor(`the publish of ${playName}`, () => ingest.published.slice(before).includes(key) || undefined, 20_000);
  expect(await playDecodes(ingest.url(key), dir, playName)).toBeGreaterThan(30);
  expect(publisher.process.exitCode).toBeNull();
  return publisher;
}

async function expectRefused(ingest: Ingest, file: string, key: string): Promise<number> {
  const refusedBefore = ingest.local.status().refusedPublishes;
  const publishedBefore = ingest.published.length;
  const { exit, afterMs } = await refusedWithin(publishLoop(file, ingest.url(key)), 10_000);
  expect(exit.code).not.toBe(0);
  expect(ingest.local.status().refusedPublishes).toBe(refusedBefore + 1);
  expect(ingest.published.slice(publishedBefore)).toEqual([]);
  return afterMs;
}

describe('the embedded RTMP server as an ingest with publish keys', () => {
  it('bound to 0.0.0.0: only the keys set publish, a key change applies to the next publish and ends a revoked one, and the keys survive kill -9 of the child', async () => {
    const file = await flvFixture({ seconds: 4 });
    const dir = makeTempDir('onair-ingest-');
    const ingest = await startIngest({ host: '0.0.0.0', publishKeys: ['k1'] });
    expect(ingest.local.open).toBe(false);
    expect(ingest.local.dialHost).toBe('127.0.0.1');
    expect(ingest.local.url).toBe(`rtmp://127.0.0.1:${ingest.local.port}/live`);
    const refusals: number[] = [];

    refusals.push(await expectRefused(ingest, file, 'unknown'));
    const k1 = await expectAccepted(ingest, file, 'k1', dir, 'k1');
    // Another app with an allowed name is no ingest.
    const otherApp = publishLoop(file, `rtmp://127.0.0.1:${ingest.local.port}/other/k1`);
    expect((await refusedWithin(otherApp, 10_000)).exit.code).not.toBe(0);
    await k1.stop();

    ingest.local.setPublishKeys(['k2']);
    refusals.push(await expectRefused(ingest, file, 'k1'));
    const k2 = await expectAccepted(ingest, file, 'k2', dir, 'k2');

    // A key taken away ends its publish.
    ingest.local.setPublishKeys(['k3']);
    const revoked = await refusedWithin(k2, 10_000);
    expect(revoked.exit.code).not.toBe(0);

    ingest.local.setPublishKeys(['k2']);
    const { pid } = ingest.local.status();
    process.kill(pid!, 'SIGKILL');
    await waitFor('the child back', () => (ingest.local.status().state === 'up' && ingest.local.status().restarts === 1) || undefined, 20_000);
    expect(ingest.local.status().pid).not.toBe(pid);
    refusals.push(await expectRefused(ingest, file, 'k1'));
    await (await expectAccepted(ingest, file, 'k2', dir, 'k2-after-restart')).stop();

    expect(ingest.local.status()).toMatchObject({ refusedPublishes: 4, refusedPlays: 0 });
    console.log(`refused publishers: ffmpeg exited ${refusals.map((ms) => `${(ms / 1000).toFixed(2)} s`).join(', ')} after it started; a revoked one ${(revoked.afterMs / 1000).toFixed(2)} s after the change`);
  });

  it('bound beyond loopback without keys: nothing publishes but the bridge’s own keys', async () => {
    const file = await flvFixture({ seconds: 4 });
    const dir = makeTempDir('onair-ingest-');
    const ingest = await startIngest({ host: '0.0.0.0', bridgeKeys: ['studio1', 'studio2'] });
    expect(ingest.local.open).toBe(false);
    await expectRefused(ingest, file, 'anything');
    await (await expectAccepted(ingest, file, 'studio1', dir, 'studio1')).stop();
    // Keys set later add to the bridge's own.
    ingest.local.setPublishKeys(['k1']);
    await (await expectAccepted(ingest, file, 'studio2', dir, 'studio2')).stop();
    // Open when told so.
    ingest.local.setPublishKeys(null);
    expect(ingest.local.open).toBe(true);
    await (await expectAccepted(ingest, file, 'anything', dir, 'anything')).stop();
  });

  it('on loopback (the default) with no keys: any key publishes, as before', async () => {
    const file = await flvFixture({ seconds: 4 });
    const dir = makeTempDir('onair-ingest-');
    const ingest = await startIngest({});
    expect(ingest.local.host).toBe('127.0.0.1');
    expect(ingest.local.open).toBe(true);
    await (await expectAccepted(ingest, file, 'whatever', dir, 'whatever')).stop();
    expect(ingest.local.status()).toMatchObject({ refusedPublishes: 0 });
  });

  it('refuses keys that node-media-server could never take, without naming them', () => {
    return LocalRtmp.start({ port: 0, verbose: false, log: () => undefined, publishKeys: ['ok', 'not/a key'] }).then(
      () => expect.unreachable(),
      (err: Error) => {
        expect(err.message).toBe('publish key #2 is not 1-256 characters of A-Z, a-z, 0-9, _ and -');
      },
    );
  });

  // A client on another machine, played here: this machine's global IPv6 address dialled from its
  // link-local one, so the server sees a peer address that is neither loopback nor its own.
  const [ifName, eth] = Object.entries(networkInterfaces()).find(([, list]) => list?.some((a) => a.family === 'IPv6' && !a.internal && a.scopeid === 0) && list.some((a) => a.family === 'IPv6' && a.scopeid !== 0)) ?? [];
  const globalV6 = eth?.find((a) => a.family === 'IPv6' && !a.internal && a.scopeid === 0)?.address;
  const linkLocalV6 = eth?.find((a) => a.family === 'IPv6' && a.scopeid !== 0)?.address;
  it.skipIf(globalV6 === undefined || linkLocalV6 === undefined)('bound beyond loopback: a player on another address is refused, one on this machine plays', async () => {
    const file = await flvFixture({ seconds: 4 });
    const dir = makeTempDir('onair-ingest-');
    const ingest = await startIngest({ host: '::', publishKeys: ['k1'] });
    const publisher = await expectAccepted(ingest, file, 'k1', dir, 'k1-loopback');
    // This machine dialled on its own global address plays too (the bridge does so for a specific bind).
    expect(await playDecodes(`rtmp://[${globalV6}]:${ingest.local.port}/live/k1`, dir, 'k1-own-address')).toBeGreaterThan(30);

    // ffmpeg cannot choose its source address: it plays through a forwarder that can.
    const forwarder: Server = createServer((client) => {
      const upstream = createConnection({ host: globalV6, port: ingest.local.port, localAddress: `${linkLocalV6}%${ifName}` });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      client.pipe(upstream).pipe(client);
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => forwarder.listen(0, '127.0.0.1', resolve));
    try {
      const url = `rtmp://127.0.0.1:${(forwarder.address() as AddressInfo).port}/live/k1`;
      const player = spawnTracked('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-i', url, '-t', '3', '-c', 'copy', '-f', 'flv', '-y', join(dir, 'remote.flv')]);
      children.push(player);
      const { exit } = await refusedWithin(player, 15_000);
      expect(exit.code, player.tail()).not.toBe(0);
      // ffmpeg may be told before the bridge hears of it.
      await waitFor('the refusal counted', () => ingest.local.status().refusedPlays === 1 || undefined, 5000);
      expect(publisher.process.exitCode).toBeNull();
    } finally {
      await new Promise((resolve) => forwarder.close(resolve));
      await publisher.stop();
    }
  });

  it('onair serve --local-rtmp-host 0.0.0.0: listed on every address, the studio\'s own key publishes, any other is refused', async () => {
    const [port, rtmpPort] = [await freePort(), await freePort()];
    const webRoot = makeTempDir('onair-web-');
    const onair = startOnair(['serve', '--port', String(port), '--local-rtmp-port', String(rtmpPort), '--local-rtmp-host', '0.0.0.0', '--web-root', webRoot], { timeoutMs: 120_000 });
    await waitForPort(port, 60_000, () => onair.process.exitCode === null);
    const config = (await (await fetch(`http://127.0.0.1:${port}/api/config`)).json()) as { localRtmp: { url: string; key: string } };
    // The bridge dials the wildcard-bound server on loopback.
    expect(config.localRtmp.url).toBe(`rtmp://127.0.0.1:${rtmpPort}/live`);
    await ffmpegPublish(await flvFixture({ seconds: 4 }), `${config.localRtmp.url}/${config.localRtmp.key}`);
    const stranger = publishLoop(await flvFixture({ seconds: 4 }), `${config.localRtmp.url}/stranger`);
    expect((await refusedWithin(stranger, 10_000)).exit.code).not.toBe(0);
    const metrics = (await (await fetch(`http://127.0.0.1:${port}/metrics.json`)).json()) as { localRtmp: LocalRtmpStatus };
    expect(metrics.localRtmp).toMatchObject({ state: 'up', refusedPublishes: 1 });
    onair.kill('SIGTERM');
    const result = await onair.result;
    expect(result.code).toBe(0);
    const ipv4 = Object.values(networkInterfaces()).flat().filter((a) => a?.family === 'IPv4').map((a) => a!.address);
    for (const address of ipv4) expect(result.stdout.toString()).toContain(`onair: local RTMP rtmp://${address}:${rtmpPort}/live\n`);
    expect(result.stderr).toContain('local RTMP server beyond loopback: only ingest keys may publish, only this machine may play');
    expect(result.stdout.toString() + result.stderr).not.toContain(config.localRtmp.key);
  });
});

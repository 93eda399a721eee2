import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { expect, test } from '@playwright/test';
import { startNginxRtmp, type NginxRtmp } from '../bridge/test/harness/nginx.js';
import { spawnTracked, waitFor, type Child } from '../bridge/test/harness/proc.js';
import { parsePrometheus, promValue } from '../bridge/test/harness/prometheus.js';
import { startBridge, type Bridge } from './support/bridge.js';

// A bridge drained on SIGTERM behind a stand-in load balancer (a TCP proxy whose target the test
// moves, as nginx marks a draining upstream down): the watch page gets `reconnect`, opens a new
// socket through the same URL, lands on the other bridge and keeps playing, without a reload.
// Chromium's decoder counters are the judge.

const FPS = 30;

let nginx: NginxRtmp;
let publisher: Child | undefined;
let a: Bridge;
let b: Bridge;

/** A TCP proxy on a free port that sends each new connection to `target()`'s port. */
async function startSwitchProxy(target: () => number): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: target() });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

test.beforeAll(async () => {
  [a, b, nginx] = await Promise.all([startBridge(), startBridge(), startNginxRtmp({ record: false })]);
  publisher = spawnTracked('ffmpeg', [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', `testsrc2=size=640x360:rate=${FPS}`,
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p', '-g', String(FPS),
    '-c:a', 'aac', '-ar', '48000', '-ac', '2',
    '-f', 'flv', nginx.url('live', 'drain'),
  ]);
});

test.afterAll(async () => {
  await publisher?.stop();
  await Promise.all([a?.kill(), b?.stop(), nginx?.dispose()]);
});

test('SIGTERM: the watch page moves to the other bridge on the reconnect message and keeps playing, no reload', async ({ page }) => {
  let target = a.port;
  const proxy = await startSwitchProxy(() => target);
  try {
    page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
    await page.goto(`http://127.0.0.1:${proxy.port}/watch?src=${encodeURIComponent(nginx.url('live', 'drain'))}`);
    const frames = (): Promise<number> => page.evaluate(() => document.querySelector('video')?.getVideoPlaybackQuality().totalVideoFrames ?? 0);
    await page.waitForFunction(() => (document.querySelector('video')?.getVideoPlaybackQuality().totalVideoFrames ?? 0) > 60, undefined, { timeout: 20_000 });
    // Every state the page shows from now on: moving on `reconnect` never passes through
    // "waiting" (reconnecting after a lost socket), which a page ignoring the message would show.
    await page.evaluate(() => {
      const w = window as unknown as { before: boolean; states: string[] };
      w.before = true;
      w.states = [];
      const status = document.querySelector('.status')!;
      new MutationObserver(() => w.states.push(status.getAttribute('data-state') ?? '')).observe(status, { attributes: true, attributeFilter: ['data-state'] });
    });

    // The balancer takes the draining bridge out; the bridge is told to stop.
    target = b.port;
    const signalled = performance.now();
    a.child.process.kill('SIGTERM');
    const viewers = async (bridge: Bridge): Promise<number> => promValue(parsePrometheus(await (await fetch(new URL('/metrics', bridge.url))).text()), 'onair_watch_viewers', { transport: 'ws' });
    const movedAt = await waitFor('the viewer on the other bridge', async () => ((await viewers(b)) === 1 ? performance.now() : undefined), 10_000, 20);
    const atMove = await frames();
    await page.waitForFunction((n) => document.querySelector('video')!.getVideoPlaybackQuality().totalVideoFrames > n, atMove + 2 * FPS, { timeout: 10_000 });
    const playingAt = performance.now();
    console.log(`viewer on the other bridge ${(movedAt - signalled).toFixed(0)} ms after SIGTERM; two more seconds of frames decoded ${(playingAt - signalled).toFixed(0)} ms after`);
    expect(movedAt - signalled).toBeLessThan(3000);
    // The same document (no reload), and never a lost connection on the way.
    expect(await page.evaluate(() => (window as unknown as { before?: boolean }).before)).toBe(true);
    expect(await page.evaluate(() => (window as unknown as { states: string[] }).states)).not.toContain('waiting');
    const exit = await a.child.exited;
    expect(exit.code, a.child.tail()).toBe(0);
    expect(a.child.tail()).toContain('draining');
  } finally {
    await proxy.close();
  }
});

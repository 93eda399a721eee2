import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { startNginxRtmp, type NginxRtmp } from '../bridge/test/harness/nginx.js';
import { startBridge, type Bridge } from './support/bridge.js';
import { probeRecording } from './support/judge.js';
import { decodeVideo, keyframeTimes, partialGops, probeVideoPackets } from './support/gops.js';
import { startThrottleProxy, type ThrottleProxy } from './support/throttle-proxy.js';

// Adaptive bitrate on the studio's uplink (docs/studio.md, "Adaptive bitrate"): the page loads
// through a throttling proxy in front of the bridge, so its WebSocket goes through it too.

const FPS = 30;
const CUT_BPS = 1_000_000;
const CUT_MS = 20_000;

let bridge: Bridge;
let nginx: NginxRtmp;
let proxy: ThrottleProxy;

test.beforeAll(async () => {
  [bridge, nginx] = await Promise.all([startBridge(), startNginxRtmp({ record: true })]);
  proxy = await startThrottleProxy(bridge.port);
});

test.afterAll(async () => {
  await proxy?.close();
  await bridge?.stop();
  await nginx?.stop();
});

interface Target {
  bps: number;
  reason: string;
  halved: boolean;
}

async function target(page: Page): Promise<Target> {
  const dd = page.locator('[data-stat="target-bitrate"]');
  const [bps, reason, halved] = await Promise.all([dd.getAttribute('data-bps'), dd.getAttribute('data-reason'), dd.getAttribute('data-halved')]);
  return { bps: Number(bps), reason: reason ?? '', halved: halved === 'true' };
}

/** Polls the page's target until `ok`, for at most `ms`; returns when it held (ms after the start) and what it was. */
async function waitTarget(page: Page, ms: number, ok: (t: Target) => boolean): Promise<{ afterMs: number; target: Target } | undefined> {
  const start = Date.now();
  while (Date.now() - start < ms) {
    const t = await target(page);
    if (ok(t)) return { afterMs: Date.now() - start, target: t };
    await page.waitForTimeout(250);
  }
  return undefined;
}

test('the uplink cut to 1 Mbps for 20 s: the target falls below it, whole GOPs reach nginx, and it climbs back after', async ({ page }) => {
  test.setTimeout(240_000);
  page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
  await page.goto(proxy.url);
  await expect(page.getByRole('button', { name: 'Go live' })).toBeEnabled();
  await expect(page.getByRole('switch', { name: 'Adapt to the network' })).toBeChecked();
  const server = nginx.url('live', 'abr');
  await page.getByLabel('Server URL', { exact: true }).first().fill(server.slice(0, server.lastIndexOf('/')));
  await page.getByLabel('Stream key', { exact: true }).first().fill('abr');
  await page.getByRole('button', { name: 'Go live' }).click();
  await expect(page.locator('.status[data-state="live"]')).toHaveCount(1, { timeout: 30_000 });
  await page.waitForTimeout(8_000);
  // The chosen rate while the link is clear.
  expect(await target(page)).toEqual({ bps: 2_500_000, reason: 'chosen', halved: false });

  const cutAt = Date.now();
  proxy.setRate(CUT_BPS);
  const fell = await waitTarget(page, 10_000, (t) => t.bps < CUT_BPS);
  console.log(`target below 1 Mbps ${fell === undefined ? 'never' : `after ${fell.afterMs} ms: ${JSON.stringify(fell.target)}`}`);
  expect(fell, 'the target falls below 1 Mbps within 10 s of the cut').toBeDefined();
  expect(fell!.target.reason).toBe('congested');
  await expect(page.locator('[data-bitrate-reason="congested"]')).toContainText('congested');
  const lows: number[] = [];
  while (Date.now() - cutAt < CUT_MS) {
    lows.push((await target(page)).bps);
    await page.waitForTimeout(500);
  }
  console.log(`targets while cut: ${lows.map((b) => Math.round(b / 1000)).join(' ')} kbps`);
  proxy.setRate(undefined);
  const back = await waitTarget(page, 30_000, (t) => t.bps >= 2_000_000);
  console.log(`target back to 2 Mbps ${back === undefined ? 'never' : `after ${back.afterMs} ms`}`);
  expect(back, 'the target climbs back to 2 Mbps within 30 s of the restore').toBeDefined();
  const dropped = await page.locator('[data-stat="frames-dropped"]').getAttribute('data-backlog');
  console.log(`frames the page dropped for the backlog: ${dropped}`);
  await page.waitForTimeout(3_000);
  await page.getByRole('button', { name: 'End stream' }).click();
  await expect(page.getByRole('button', { name: 'Go live' })).toBeVisible({ timeout: 20_000 });

  // One publish, one file.
  const file = await nginx.recordingDone('abr', 20_000);
  expect(readdirSync(join(file, '..')).filter((f) => f.startsWith('abr'))).toEqual(['abr.flv']);
  const packets = probeVideoPackets(file);
  const decoded = decodeVideo(file);
  console.log(`${packets.length} video packets, ${decoded.frames} decoded${decoded.errors === '' ? '' : `; ffmpeg said: ${decoded.errors.slice(0, 500)}`}`);
  expect(decoded.errors).toBe('');
  expect(decoded.frames).toBe(packets.length);
  expect(packets[0]!.key).toBe(true);
  // Keyframes stay regular (a bitrate change brings one early, never late).
  const keys = keyframeTimes(packets);
  const gaps = keys.slice(1).map((k, i) => k - keys[i]!);
  console.log(`keyframe gaps: max ${Math.max(...gaps).toFixed(3)} s over ${keys.length} keyframes`);
  expect(Math.max(...gaps)).toBeLessThanOrEqual(2 + 2 / FPS + 0.01);
  // No partial GOP: every GOP holds the frames its length and frame rate call for.
  expect(partialGops(packets, FPS), 'GOPs missing frames').toEqual([]);
});

test('one destination cut to 1 Mbps drops whole GOPs and says so; the other keeps every frame at full rate', async ({ page }) => {
  test.setTimeout(240_000);
  page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
  const fast = nginx.url('live', 'fast');
  const port = Number(/^rtmp:\/\/127\.0\.0\.1:(\d+)\//.exec(fast)?.[1]);
  const slowProxy = await startThrottleProxy(port);
  try {
    slowProxy.setRate(CUT_BPS);
    await page.goto(bridge.url);
    await expect(page.getByRole('button', { name: 'Go live' })).toBeEnabled();
    await expect(page.getByLabel('Server URL', { exact: true }).first()).toHaveValue(/^rtmp:\/\/127\.0\.0\.1:\d+\/live$/);
    await page.getByLabel('Server URL', { exact: true }).first().fill(fast.slice(0, fast.lastIndexOf('/')));
    await page.getByLabel('Stream key', { exact: true }).first().fill('fast');
    await page.getByRole('button', { name: 'Add destination' }).click();
    await page.getByLabel('Server URL', { exact: true }).nth(1).fill(`rtmp://127.0.0.1:${slowProxy.port}/live`);
    await page.getByLabel('Stream key', { exact: true }).nth(1).fill('slow');
    await page.getByRole('button', { name: 'Go live' }).click();
    await expect(page.locator('.status[data-state="live"]')).toHaveCount(2, { timeout: 30_000 });
    const liveAt = Date.now();
    const slowStatus = page.locator('.status').nth(1);
    await expect(slowStatus.locator('.reason')).toContainText('falling behind: dropping video to keep up', { timeout: 30_000 });
    console.log(`the slow destination says "${await slowStatus.locator('.reason').textContent()}" ${Date.now() - liveAt} ms after going live`);
    await expect(page.locator('.status').first().locator('.reason')).toHaveCount(0);
    await page.waitForTimeout(Math.max(0, 30_000 - (Date.now() - liveAt)));
    const said = (await slowStatus.locator('.reason').textContent()) ?? '';
    const gops = Number(/\((\d+) GOPs?\)/.exec(said)?.[1] ?? 0);
    // The shared uplink is clear: the encoder kept the chosen rate throughout.
    expect(await target(page)).toEqual({ bps: 2_500_000, reason: 'chosen', halved: false });
    await page.getByRole('button', { name: 'End stream' }).click();
    await expect(page.getByRole('button', { name: 'Go live' })).toBeVisible({ timeout: 20_000 });
    const sent = Number(await page.locator('[data-stat="frames-encoded"]').textContent());

    // The fast destination: every frame the page sent, at the chosen rate, whole.
    const fastFile = await nginx.recordingDone('fast', 20_000);
    const fastPackets = probeVideoPackets(fastFile);
    const fastDecoded = decodeVideo(fastFile);
    const fastProbe = await probeRecording(fastFile);
    console.log(`fast: ${fastPackets.length} of the ${sent} frames sent, ${(fastProbe.video.bitrate / 1e6).toFixed(3)} Mbps`);
    expect(fastDecoded.errors).toBe('');
    expect(fastDecoded.frames).toBe(fastPackets.length);
    expect(fastPackets.length).toBeGreaterThanOrEqual(sent - 2);
    expect(Math.abs(fastProbe.video.bitrate - 2_500_000) / 2_500_000).toBeLessThanOrEqual(0.2);
    expect(partialGops(fastPackets, FPS)).toEqual([]);

    // The slow destination: whole GOPs only, fewer of them, each decoding.
    const slowFile = await nginx.recordingDone('slow', 20_000);
    const slowPackets = probeVideoPackets(slowFile);
    const slowDecoded = decodeVideo(slowFile);
    const keys = keyframeTimes(slowPackets);
    const gaps = keys.slice(1).map((k, i) => k - keys[i]!);
    console.log(`slow: ${slowPackets.length} frames, ${gops} GOPs dropped as its status said, keyframe gaps ${gaps.map((g) => g.toFixed(1)).join(' ')} s`);
    expect(gops).toBeGreaterThanOrEqual(1);
    expect(slowDecoded.errors).toBe('');
    expect(slowDecoded.frames).toBe(slowPackets.length);
    expect(slowPackets[0]!.key).toBe(true);
    expect(slowPackets.length).toBeLessThan(fastPackets.length - 2 * FPS);
    expect(partialGops(slowPackets, FPS)).toEqual([]);
  } finally {
    await slowProxy.close();
  }
});

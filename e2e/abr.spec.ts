import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { startNginxRtmp, type NginxRtmp } from '../bridge/test/harness/nginx.js';
import { startBridge, type Bridge } from './support/bridge.js';
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

interface VideoPacket {
  s: number;
  key: boolean;
}

/** The video packets of a file as ffprobe reads them, in presentation order. */
function probePackets(file: string): VideoPacket[] {
  const out = spawnSync('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts_time,flags', '-of', 'json', file], { maxBuffer: 64 * 1024 * 1024, timeout: 60_000 });
  expect(out.status, out.stderr.toString('utf8')).toBe(0);
  const packets = (JSON.parse(out.stdout.toString('utf8')) as { packets: { pts_time: string; flags: string }[] }).packets;
  return packets.map((p) => ({ s: Number(p.pts_time), key: p.flags.startsWith('K') })).sort((a, b) => a.s - b.s);
}

/** ffmpeg decodes every video frame: returns the frames and whatever it complained about. */
function decode(file: string): { frames: number; errors: string } {
  const out = spawnSync('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-i', file, '-map', '0:v', '-f', 'framemd5', '-'], { maxBuffer: 256 * 1024 * 1024, timeout: 120_000 });
  return { frames: out.stdout.toString('utf8').split('\n').filter((l) => /^\s*0,/.test(l)).length, errors: out.stderr.toString('utf8').trim() };
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
  const packets = probePackets(file);
  const decoded = decode(file);
  console.log(`${packets.length} video packets, ${decoded.frames} decoded${decoded.errors === '' ? '' : `; ffmpeg said: ${decoded.errors.slice(0, 500)}`}`);
  expect(decoded.errors).toBe('');
  expect(decoded.frames).toBe(packets.length);
  expect(packets[0]!.key).toBe(true);
  // Keyframes stay regular (a bitrate change brings one early, never late).
  const keys = packets.filter((p) => p.key).map((p) => p.s);
  const gaps = keys.slice(1).map((k, i) => k - keys[i]!);
  console.log(`keyframe gaps: max ${Math.max(...gaps).toFixed(3)} s over ${keys.length} keyframes`);
  expect(Math.max(...gaps)).toBeLessThanOrEqual(2 + 2 / FPS + 0.01);
  // No partial GOP: every GOP (the last one ends with the stream) holds the frames its length and
  // frame rate call for (a halved frame rate shows as frames 2 / FPS apart).
  const short: string[] = [];
  for (let g = 0; g + 1 < keys.length; g++) {
    const inGop = packets.filter((p) => p.s >= keys[g]! && p.s < keys[g + 1]!);
    const steps = inGop
      .slice(1)
      .map((p, i) => p.s - inGop[i]!.s)
      .sort((a, b) => a - b);
    const step = Math.max(1 / FPS, steps[Math.floor(steps.length / 2)] ?? 1 / FPS);
    const expected = (keys[g + 1]! - keys[g]!) / step;
    if (inGop.length < 0.8 * expected) short.push(`GOP at ${keys[g]!.toFixed(2)} s: ${inGop.length} frames of ${expected.toFixed(0)}`);
  }
  expect(short, 'GOPs missing frames').toEqual([]);
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import WebSocket from 'ws';
import { startDeployment, type Deployment } from '../bridge/test/harness/deploy.js';
import type { Child } from '../bridge/test/harness/proc.js';
import { promValue } from '../bridge/test/harness/prometheus.js';

// The watch page through the reference deployment of deploy/ (bridge/test/harness/deploy.ts:
// nginx as the TLS load balancer, the RTMP origin and two edges, three bridges): it plays over
// https from whichever bridge the balancer picks, and when that bridge is killed it plays again
// from another within 3 s, without a reload. Chromium's decoder is the judge.

const FPS = 30;
let deployment: Deployment;
let publisher: Child;

test.describe.configure({ mode: 'serial' });

test.beforeAll(async () => {
  deployment = await startDeployment();
  publisher = await deployment.publish('show');
});

test.afterAll(async () => {
  await publisher?.stop();
  await deployment?.dispose();
});

interface Played {
  frames: number;
  /** Frames buffered ahead of the playhead. */
  ahead: number;
}

test('a watch page through the load balancer plays again from another bridge within 3 s of a kill -9', async ({ browser }) => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  // Other viewers of the stream on every bridge, as in any audience: the page then moves to a
  // bridge that holds the stream already. (A bridge's first viewer waits for the publisher's next
  // keyframe: nginx-rtmp edges keep no GOP, docs/deploy.md.)
  const audience = Array.from({ length: 6 }, () => new WebSocket(`wss://127.0.0.1:${deployment.lbPort}/watch-ws/live/show`, { ca: deployment.ca }));
  for (const ws of audience) ws.on('error', () => undefined);
  try {
    const viewersPerBridge = async (): Promise<number[]> => Promise.all(deployment.bridges.map(async (b) => (await deployment.watchState(b)).viewers));
    await expect.poll(async () => (await Promise.all(deployment.bridges.map((b) => deployment.watchState(b)))).map((s) => s.upstreams).join(' '), { timeout: 20_000 }).toBe('1 1 1');
    const audienceOn = await viewersPerBridge();
    expect(audienceOn.reduce((a, b) => a + b, 0)).toBe(audience.length);
    const page = await context.newPage();
    page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
    await page.goto(`${deployment.url}/watch/live/show`);
    await expect(page.locator('video')).toBeAttached();
    const played = (): Promise<Played> =>
      page.evaluate((fps) => {
        const video = document.querySelector('video')!;
        const end = video.buffered.length > 0 ? video.buffered.end(video.buffered.length - 1) : video.currentTime;
        return { frames: video.getVideoPlaybackQuality().totalVideoFrames, ahead: Math.max(0, end - video.currentTime) * fps };
      }, FPS);
    await expect.poll(async () => (await played()).frames, { timeout: 30_000 }).toBeGreaterThan(2 * FPS);

    // The bridge holding the page's socket: the one that counts a viewer more than before.
    const holders = await viewersPerBridge();
    expect(holders.reduce((a, b) => a + b, 0)).toBe(audience.length + 1);
    const victim = deployment.bridges[holders.findIndex((n, i) => n === audienceOn[i]! + 1)]!;

    const atKill = await played();
    const killedAt = Date.now();
    victim.child.process.kill('SIGKILL');
    // Receiving again: more frames decoded than were buffered at the kill (the count of those is
    // an estimate from the buffered range: five frames more leave no doubt).
    const wanted = atKill.frames + Math.ceil(atKill.ahead) + 5;
    await expect.poll(async () => (await played()).frames, { timeout: 10_000, intervals: [100] }).toBeGreaterThanOrEqual(wanted);
    const backMs = Date.now() - killedAt;
    const others = await Promise.all(deployment.bridges.filter((b) => b !== victim).map(async (b) => (await deployment.watchState(b)).viewers));
    const onVictim = holders[deployment.bridges.indexOf(victim)]!;
    console.log(`watch page decoding again ${backMs} ms after kill -9 of its bridge (${Math.ceil(atKill.ahead)} frames were buffered); stats: ${await page.locator('.stats').textContent().catch(() => '')}`);
    // The page and the audience's sockets on the victim (which do not reconnect) are gone from it.
    expect(others.reduce((a, b) => a + b, 0)).toBe(audience.length + 1 - (onVictim - 1));
    expect(backMs).toBeLessThan(3000);
    await expect(page.locator('video')).toHaveJSProperty('paused', false);
  } finally {
    for (const ws of audience) ws.terminate();
    await context.close();
  }
});

test('a studio page through the load balancer routes on its affinity id, and after kill -9 of its bridge goes live again through another', async ({ browser }) => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  try {
    const page = await context.newPage();
    page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
    await page.goto(`${deployment.url}/?token=${deployment.token}`);
    await expect(page.getByRole('button', { name: 'Go live' })).toBeEnabled();
    // No embedded server behind the balancer: no destination is filled in.
    await page.getByRole('button', { name: 'Add destination' }).click();
    await page.getByLabel('Server URL', { exact: true }).first().fill(`rtmp://127.0.0.1:${deployment.originPort}/live`);
    await page.getByLabel('Stream key', { exact: true }).first().fill('studio');
    await page.getByRole('button', { name: 'Go live' }).click();
    const status = page.locator('.status');
    await expect(status).toHaveAttribute('data-state', 'live', { timeout: 20_000 });

    const live = deployment.bridges.filter((b) => b.child.process.exitCode === null && b.child.process.signalCode === null);
    const sessions = async (): Promise<number[]> => Promise.all(live.map(async (b) => promValue(await deployment.metrics(b), 'onair_studio_sessions')));
    const holding = await sessions();
    expect(holding.reduce((a, b) => a + b, 0)).toBe(1);
    const victim = live[holding.indexOf(1)]!;
    const killedAt = Date.now();
    victim.child.process.kill('SIGKILL');
    // The page tries to resume, lands on another bridge (which does not know the session) and
    // starts a new one there, publishing again from a keyframe.
    await expect(page.locator('[data-link]')).toBeVisible({ timeout: 10_000 });
    await expect(page.locator('[data-link]')).toHaveCount(0, { timeout: 30_000 });
    await expect(status).toHaveAttribute('data-state', 'live', { timeout: 15_000 });
    console.log(`studio live again through another bridge ${Date.now() - killedAt} ms after kill -9 of its own`);
    await expect(page.locator('[data-stat="reconnects"]')).toHaveText('1');
    const others = live.filter((b) => b !== victim);
    const after = await Promise.all(others.map(async (b) => promValue(await deployment.metrics(b), 'onair_studio_sessions')));
    expect(after.reduce((a, b) => a + b, 0)).toBe(1);
    await page.getByRole('button', { name: 'End stream' }).click();
    await expect(page.getByRole('button', { name: 'Go live' })).toBeVisible({ timeout: 10_000 });

    // What nginx logged (deploy/nginx/onair.conf's log format): every studio socket with the
    // one affinity id, first on the killed bridge, then on another; a resume with its session id;
    // the token nowhere, though the page was opened with it.
    const log = readFileSync(join(deployment.prefix, 'access.log'), 'utf8');
    const studioSockets = log.split('\n').filter((l) => l.includes(' /studio-ws '));
    const fields = studioSockets.map((l) => /affinity=(\S*) session=(\S*) bridge=([^"]+) "/.exec(l));
    // nginx lists every bridge it tried; the last one answered (an earlier one may be dead).
    const answered = fields.map((f) => f?.[3]?.split(', ').pop());
    expect(new Set(fields.map((f) => f?.[1])).size).toBe(1);
    expect(fields[0]?.[1]).toMatch(/^[0-9a-f]{16}$/);
    expect(fields.some((f) => /^[A-Za-z0-9_-]+$/.test(f?.[2] ?? ''))).toBe(true);
    expect(answered[0]).toBe(`127.0.0.1:${victim.port}`);
    expect(answered[answered.length - 1]).not.toBe(`127.0.0.1:${victim.port}`);
    expect(log).toContain('GET / HTTP/1.1');
    expect(log).not.toContain(deployment.token);
    console.log(`studio sockets in nginx's access log:\n${studioSockets.map((l) => l.replace(/ "Mozilla.*$/, '')).join('\n')}`);
  } finally {
    await context.close();
  }
});

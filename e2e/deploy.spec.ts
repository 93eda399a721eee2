import { expect, test } from '@playwright/test';
import { startDeployment, type Deployment } from '../bridge/test/harness/deploy.js';
import type { Child } from '../bridge/test/harness/proc.js';

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
  try {
    const page = await context.newPage();
    page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
    await page.goto(`${deployment.url}/watch/live/show`);
    const played = (): Promise<Played> =>
      page.evaluate((fps) => {
        const video = document.querySelector('video')!;
        const end = video.buffered.length > 0 ? video.buffered.end(video.buffered.length - 1) : video.currentTime;
        return { frames: video.getVideoPlaybackQuality().totalVideoFrames, ahead: Math.max(0, end - video.currentTime) * fps };
      }, FPS);
    await expect.poll(async () => (await played()).frames, { timeout: 30_000 }).toBeGreaterThan(2 * FPS);

    // The bridge holding the page's socket: the one that counts a viewer.
    const holders = await Promise.all(deployment.bridges.map(async (b) => (await deployment.watchState(b)).viewers));
    expect(holders.reduce((a, b) => a + b, 0)).toBe(1);
    const victim = deployment.bridges[holders.indexOf(1)]!;

    const atKill = await played();
    const killedAt = Date.now();
    victim.child.process.kill('SIGKILL');
    // Receiving again: more frames decoded than were buffered at the kill, by half a second.
    const wanted = atKill.frames + Math.ceil(atKill.ahead) + FPS / 2;
    await expect.poll(async () => (await played()).frames, { timeout: 10_000, intervals: [100] }).toBeGreaterThanOrEqual(wanted);
    const backMs = Date.now() - killedAt;
    const others = await Promise.all(deployment.bridges.filter((b) => b !== victim).map(async (b) => (await deployment.watchState(b)).viewers));
    console.log(`watch page decoding again ${backMs} ms after kill -9 of its bridge (${Math.ceil(atKill.ahead)} frames were buffered); stats: ${await page.locator('.stats').textContent().catch(() => '')}`);
    expect(others.reduce((a, b) => a + b, 0)).toBe(1);
    expect(backMs).toBeLessThan(3000);
    await expect(page.locator('video')).toHaveJSProperty('paused', false);
  } finally {
    await context.close();
  }
});

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { ffprobeStreams } from '../bridge/test/harness/judge.js';
import { startBridge, type Bridge } from './support/bridge.js';
import { ffmpegPull } from './support/pull.js';

// The security headers and the token in a real browser: the studio goes live to the embedded
// server and the watch page plays it under the bridge's Content-Security-Policy with not one
// violation, after the token left the address bar. Then another site's page tries to use the
// bridge, and the bridge dials nothing.

const TOKEN = 'e2e-token-5b9c21';

let bridge: Bridge;

test.describe.configure({ mode: 'serial' });

test.beforeAll(async () => {
  bridge = await startBridge(['--token', TOKEN]);
});

test.afterAll(async () => {
  await bridge?.stop();
});

/**
 * Collects every CSP violation the context reports: `securitypolicyviolation` events in pages
 * (from the first script on) and in workers, nested ones included (the AAC encoder's), the
 * browser's own console lines about the policy, and uncaught errors.
 */
function watchViolations(context: BrowserContext): string[] {
  const violations: string[] = [];
  const describe = 'e => console.error(`securitypolicyviolation ${e.effectiveDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`)';
  void context.addInitScript(`document.addEventListener('securitypolicyviolation', ${describe});`);
  const onPage = (page: Page): void => {
    page.on('console', (msg) => {
      const text = msg.text();
      if (/securitypolicyviolation|Content Security Policy|Refused to/i.test(text)) violations.push(`${page.url()}: ${text}`);
    });
    // Not every refusal is reported as a violation: a blocked AudioWorklet module only rejects.
    page.on('pageerror', (err) => violations.push(`${page.url()}: page error: ${err.message}`));
    page.on('worker', (worker) => {
      worker.evaluate(`self.addEventListener('securitypolicyviolation', ${describe})`).catch(() => {
        // a worker that ended at once has nothing left to report
      });
    });
  };
  for (const page of context.pages()) onPage(page);
  context.on('page', onPage);
  return violations;
}

async function framesDecoded(page: Page): Promise<number> {
  return page.evaluate(() => document.querySelector('video')?.getVideoPlaybackQuality().totalVideoFrames ?? 0);
}

test('goes live and plays back under the CSP with no violation; the token leaves the address bar and the pages still work', async ({ browser }) => {
  const studioContext = await browser.newContext();
  const watchContext = await browser.newContext();
  const violations = [studioContext, watchContext].map(watchViolations);
  const scratch = mkdtempSync(join(tmpdir(), 'onair-e2e-security-'));
  try {
    const studio = await studioContext.newPage();
    await studio.goto(`${bridge.url}?token=${TOKEN}`);
    await expect(studio.getByRole('button', { name: 'Go live' })).toBeEnabled();
    expect(studio.url()).toBe(bridge.url);
    // The cookie set by the first answer carries the token from here on: /api/config filled in
    // the embedded server, and the studio socket below is let in with it.
    await expect(studio.getByLabel('Server URL', { exact: true }).first()).toHaveValue(/^rtmp:\/\/127\.0\.0\.1:\d+\/live$/);
    const key = await studio.getByLabel('Stream key', { exact: true }).first().inputValue();
    expect(key).not.toBe('');

    await studio.getByRole('button', { name: 'Go live' }).click();
    await expect(studio.locator('.status[data-state="live"]')).toHaveCount(1, { timeout: 20_000 });
    // The WASM AAC encoder (a blob: worker compiling WebAssembly) is what this browser uses.
    await expect(studio.locator('[data-stat="codec"]')).toContainText('AAC', { timeout: 10_000 });
    console.log(`studio encoders: ${await studio.locator('[data-stat="codec"]').textContent()}`);
    // What goes out is real media: ffmpeg pulls it from the embedded server, ffprobe decodes it.
    const pulled = join(scratch, 'live.flv');
    const pull = ffmpegPull(`rtmp://127.0.0.1:${bridge.localRtmpPort}/live/${key}`, pulled, 3_000);

    // A viewer with nothing but the link and the token: the studio's watch link, and the same
    // stream named by its RTMP URL, each opened with ?token= in a context without the cookie.
    const watchPath = await studio.locator('.watch a').getAttribute('href');
    expect(watchPath).toBe(`/watch/live/${key}`);
    const src = encodeURIComponent(`rtmp://127.0.0.1:${bridge.localRtmpPort}/live/${key}`);
    for (const path of [`${watchPath}?token=${TOKEN}`, `/watch?src=${src}&token=${TOKEN}&latency=0.5`]) {
      const viewer = await watchContext.newPage();
      await viewer.goto(new URL(path, bridge.url).toString());
      await viewer.waitForFunction(() => (document.querySelector('video')?.getVideoPlaybackQuality().totalVideoFrames ?? 0) > 30, undefined, { timeout: 20_000 });
      const after = path.replace(`token=${TOKEN}&`, '').replace(`?token=${TOKEN}`, '');
      expect(viewer.url()).toBe(new URL(after, bridge.url).toString());
      expect(viewer.url()).not.toContain(TOKEN);
      const n = await framesDecoded(viewer);
      await viewer.waitForFunction((n0) => document.querySelector('video')!.getVideoPlaybackQuality().totalVideoFrames > n0 + 30, n, { timeout: 10_000 });
      await expect(viewer.getByRole('status')).toContainText('LIVE');
      console.log(`${after}: ${await framesDecoded(viewer)} frames decoded`);
      await viewer.close();
    }

    await studio.getByRole('button', { name: 'End stream' }).click();
    await expect(studio.getByRole('button', { name: 'Go live' })).toBeVisible({ timeout: 15_000 });
    await expect(studio.getByRole('alert')).toHaveCount(0);
    await pull;
    const streams = await ffprobeStreams(pulled, { decode: true });
    expect(streams.find((s) => s.codec_type === 'video')).toMatchObject({ codec_name: 'h264', width: 1280, height: 720 });
    expect(streams.find((s) => s.codec_type === 'audio')).toMatchObject({ codec_name: 'aac', sample_rate: '48000' });

    // A reload without the token still opens the studio: the cookie does it.
    await studio.reload();
    await expect(studio.getByLabel('Server URL', { exact: true }).first()).toHaveValue(/^rtmp:\/\/127\.0\.0\.1:\d+\/live$/);
    expect(violations.flat()).toEqual([]);
  } finally {
    // Printed whatever failed: a violation is the likely cause of any other failure here.
    for (const v of violations.flat()) console.log(`CSP violation: ${v}`);
    await studioContext.close();
    await watchContext.close();
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('the path without MediaStreamTrackProcessor (AudioWorklet from a blob:) runs under the CSP too', async ({ browser }) => {
  const context = await browser.newContext();
  const violations = watchViolations(context);
  try {
    await context.addInitScript(() => {
      delete (window as unknown as { MediaStreamTrackProcessor?: unknown }).MediaStreamTrackProcessor;
    });
    const studio = await context.newPage();
    await studio.goto(`${bridge.url}?token=${TOKEN}`);
    await expect(studio.getByLabel('Server URL', { exact: true }).first()).toHaveValue(/^rtmp:\/\/127\.0\.0\.1:\d+\/live$/);
    await studio.getByRole('button', { name: 'Go live' }).click();
    await expect(studio.locator('.status[data-state="live"]')).toHaveCount(1, { timeout: 20_000 });
    // Two seconds of output: the worklet's audio and the page's frames reached the encoders.
    await expect.poll(async () => Number(await studio.locator('[data-stat="fps"]').textContent().then((t) => t?.split(' ')[0])), { timeout: 10_000 }).toBeGreaterThan(20);
    await studio.waitForTimeout(2000);
    await studio.getByRole('button', { name: 'End stream' }).click();
    await expect(studio.getByRole('button', { name: 'Go live' })).toBeVisible({ timeout: 15_000 });
    await expect(studio.getByRole('alert')).toHaveCount(0);
    expect(violations).toEqual([]);
  } finally {
    for (const v of violations) console.log(`CSP violation: ${v}`);
    await context.close();
  }
});

test('a stream key typed into the server URL is stored only when Remember key is ticked', async ({ page }) => {
  const stored = (): Promise<string> => page.evaluate(() => localStorage.getItem('onair.destinations.v1') ?? '');
  await page.goto(`${bridge.url}?token=${TOKEN}`);
  await expect(page.getByLabel('Server URL', { exact: true }).first()).toHaveValue(/^rtmp:\/\/127\.0\.0\.1:\d+\/live$/);
  await page.getByRole('button', { name: 'Add destination' }).click();
  const server = page.getByLabel('Server URL', { exact: true }).nth(1);
  await server.fill('rtmp://203.0.113.9/live/e2e-secret-key-1');
  await server.blur();
  await page.getByLabel('Stream key', { exact: true }).first().fill('e2e-secret-key-2');
  await page.getByLabel('Stream key', { exact: true }).first().blur();
  // The page keeps what was typed; storage gets the server without the key.
  await expect(server).toHaveValue('rtmp://203.0.113.9/live/e2e-secret-key-1');
  expect(await stored()).toContain('"server":"rtmp://203.0.113.9/live"');
  expect(await stored()).not.toContain('e2e-secret-key');

  const remember = page.getByLabel('Remember key').nth(1);
  await remember.check();
  expect(await stored()).toContain('rtmp://203.0.113.9/live/e2e-secret-key-1');
  await remember.uncheck();
  expect(await stored()).not.toContain('e2e-secret-key');

  await page.reload();
  await expect(page.getByLabel('Server URL', { exact: true }).nth(1)).toHaveValue('rtmp://203.0.113.9/live');
  await expect(page.getByLabel('Stream key', { exact: true }).nth(1)).toHaveValue('');
});

test("another site's page cannot make the bridge dial: not from another host, not from another port", async ({ page }) => {
  // Bound to loopback without a token, the case the site check is for.
  const open = await startBridge();
  let dialled = 0;
  const lan: TcpServer = createTcpServer((socket) => {
    dialled++;
    socket.on('error', () => socket.destroy());
    socket.destroy();
  });
  // Another site: a page served from another port (localhost is another host than 127.0.0.1 too).
  const site: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>elsewhere</title>'));
  try {
    await new Promise<void>((resolve) => lan.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    const lanPort = (lan.address() as { port: number }).port;
    const sitePort = (site.address() as { port: number }).port;
    const src = encodeURIComponent(`rtmp://127.0.0.1:${lanPort}/live/x`);
    for (const origin of [`http://localhost:${sitePort}`, `http://127.0.0.1:${sitePort}`]) {
      await page.goto(`${origin}/`);
      // Everything a page can point at the bridge. Only the count of dials judges the media
      // requests: a browser cannot play FLV, so a <video> errors whether refused or not.
      const outcome = await page.evaluate(
        async ([bridgePort, source]) => {
          const ws = (path: string): Promise<string> =>
            new Promise((resolve) => {
              const socket = new WebSocket(`ws://127.0.0.1:${bridgePort}${path}`);
              socket.onopen = () => {
                socket.close();
                resolve('open');
              };
              socket.onerror = () => resolve('refused');
            });
          const video = (path: string): Promise<void> =>
            new Promise((resolve) => {
              const v = document.createElement('video');
              v.onerror = () => resolve();
              v.onloadedmetadata = () => resolve();
              v.src = `http://127.0.0.1:${bridgePort}${path}`;
              setTimeout(resolve, 5000);
            });
          await video(`/flv?src=${source}`);
          await video('/live/x.flv');
          await fetch(`http://127.0.0.1:${bridgePort}/flv?src=${source}`, { mode: 'no-cors' }).catch(() => undefined);
          return { studio: await ws('/studio-ws'), watchLocal: await ws('/watch-ws/live/x'), watchSrc: await ws(`/watch-ws?src=${source}`) };
        },
        [open.port, src] as const,
      );
      console.log(`from ${origin}: ${JSON.stringify(outcome)}`);
      expect(outcome).toEqual({ studio: 'refused', watchLocal: 'refused', watchSrc: 'refused' });
    }
    // Give a source that slipped through time to be dialled, then count.
    await page.waitForTimeout(1000);
    expect(dialled).toBe(0);
    const metrics = (await (await fetch(new URL('/metrics.json', open.url))).json()) as { streams: unknown[] };
    expect(metrics.streams).toEqual([]);

    // The same page, from the bridge's own origin, is let through: the check is what refused.
    await page.goto(new URL('/watch/live/x', open.url).toString());
    const own = await page.evaluate(async ([source]) => {
      const socket = new WebSocket(`ws://${location.host}/watch-ws?src=${source}`);
      return new Promise<string>((resolve) => {
        socket.onopen = () => resolve('open');
        socket.onerror = () => resolve('refused');
      });
    }, [src] as const);
    expect(own).toBe('open');
    await expect.poll(() => dialled, { timeout: 10_000 }).toBeGreaterThan(0);
  } finally {
    await page.close();
    await open.stop();
    await new Promise((resolve) => lan.close(resolve));
    site.closeAllConnections();
    await new Promise((resolve) => site.close(resolve));
  }
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, expect, test, type Browser, type Page } from '@playwright/test';
import config from '../playwright.config.js';
import { ffprobeStreams } from '../bridge/test/harness/judge.js';
import { startNginxRtmp, type NginxRtmp } from '../bridge/test/harness/nginx.js';
import { makeTestCertificates, type TestCertificates } from '../bridge/test/harness/tls.js';
import { probeRecording } from './support/judge.js';
import { startBridge, type Bridge } from './support/bridge.js';
import { ffmpegPull } from './support/pull.js';

// onair served to the public: bound to every address, with the studio token and a certificate
// from a CA made here by openssl. Chromium reaches it under a name that is not localhost (through
// --host-resolver-rules), so only https makes the page secure enough for the camera. The studio
// goes live; a viewer with nothing but the watch link plays it, and from that page cannot open
// the studio's socket, its config or make the bridge dial a source. The token appears neither in
// the terminal nor in any page's final address.

const TOKEN = 'e2e-public-token-3c8e71';
const NAME = 'live.onair.test';

test.describe.configure({ mode: 'serial' });

let certs: TestCertificates;
let browser: Browser;
let scratch: string;

test.beforeAll(async () => {
  certs = await makeTestCertificates();
  scratch = mkdtempSync(join(tmpdir(), 'onair-e2e-public-'));
  const launch = config.use?.launchOptions ?? {};
  browser = await chromium.launch({ ...launch, args: [...(launch.args ?? []), `--host-resolver-rules=MAP ${NAME} 127.0.0.1`] });
});

test.afterAll(async () => {
  await browser?.close();
  certs?.dispose();
  rmSync(scratch, { recursive: true, force: true });
});

function publicBridge(extra: string[] = []): Promise<Bridge> {
  return startBridge(['--host', '0.0.0.0', '--token', TOKEN, '--tls-cert', certs.cert, '--tls-key', certs.key, ...extra]);
}

/** Stops the bridge after checking that nothing it printed holds the token. */
async function stopPublic(bridge: Bridge): Promise<void> {
  const printed = bridge.child.tail();
  expect(printed).toContain(`onair: studio    https://127.0.0.1:${bridge.port}/`);
  expect(printed).not.toContain(TOKEN);
  await bridge.stop();
}

/** Opens the studio once with ?token=, as the operator does, and checks what that left behind. */
async function openStudio(page: Page, origin: string): Promise<void> {
  page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
  await page.goto(`${origin}/?token=${TOKEN}`);
  await expect(page.getByRole('button', { name: 'Go live' })).toBeEnabled();
  expect(await page.evaluate(() => isSecureContext)).toBe(true);
  expect(page.url()).toBe(`${origin}/`);
  await expect(page.getByLabel('Server URL', { exact: true }).first()).toHaveValue(/^rtmp:\/\/127\.0\.0\.1:\d+\/live$/);
  const cookie = (await page.context().cookies()).find((c) => c.name === 'onair_token');
  expect(cookie).toMatchObject({ value: TOKEN, httpOnly: true, secure: true, sameSite: 'Strict', path: '/' });
  const days = (cookie!.expires - Date.now() / 1000) / 86_400;
  expect(days).toBeGreaterThan(6.9);
  expect(days).toBeLessThanOrEqual(7);
}

test('the studio over https goes live to the embedded server; the watch link plays without the token and opens nothing else', async () => {
  const bridge = await publicBridge();
  const origin = `https://${NAME}:${bridge.port}`;
  const studioContext = await browser.newContext({ ignoreHTTPSErrors: true });
  const watchContext = await browser.newContext({ ignoreHTTPSErrors: true });
  try {
    const studio = await studioContext.newPage();
    await openStudio(studio, origin);
    const key = await studio.getByLabel('Stream key', { exact: true }).first().inputValue();
    expect(key).toMatch(/^[0-9a-f]{12}$/);

    // The default destination, on loopback, which a public bridge used to refuse as private.
    await studio.getByRole('button', { name: 'Go live' }).click();
    await expect(studio.locator('.status[data-state="live"]')).toHaveCount(1, { timeout: 20_000 });
    const pulled = join(scratch, 'embedded.flv');
    const pull = ffmpegPull(`rtmp://127.0.0.1:${bridge.localRtmpPort}/live/${key}`, pulled, 3_000);

    const watchPath = await studio.locator('.watch a').getAttribute('href');
    expect(watchPath).toBe(`/watch/live/${key}`);
    const viewer = await watchContext.newPage();
    await viewer.goto(`${origin}${watchPath}`);
    await viewer.waitForFunction(() => (document.querySelector('video')?.getVideoPlaybackQuality().totalVideoFrames ?? 0) > 60, undefined, { timeout: 20_000 });
    await expect(viewer.getByRole('status')).toContainText('LIVE');
    expect(viewer.url()).toBe(`${origin}${watchPath}`);
    expect(await watchContext.cookies()).toEqual([]);
    console.log(`watch link without the token: ${await viewer.evaluate(() => document.querySelector('video')!.getVideoPlaybackQuality().totalVideoFrames)} frames decoded`);

    // From the watch page: everything it could try that is not a watch link's.
    const lanSource = encodeURIComponent(`rtmp://127.0.0.1:${bridge.localRtmpPort}/live/${key}`);
    const outcome = await viewer.evaluate(async (src) => {
      const socket = (path: string): Promise<string> =>
        new Promise((resolve) => {
          const ws = new WebSocket(`wss://${location.host}${path}`);
          ws.onopen = () => {
            ws.close();
            resolve('open');
          };
          ws.onerror = () => resolve('refused');
        });
      const status = async (path: string): Promise<number> => (await fetch(path)).status;
      return {
        studioSocket: await socket('/studio-ws'),
        srcSocket: await socket(`/watch-ws?src=${src}`),
        config: await status('/api/config'),
        restream: await status('/api/restream'),
        metrics: await status('/metrics'),
        flvSrc: await status(`/flv?src=${src}`),
        watchSrc: await status(`/watch?src=${src}`),
        ownSocket: await socket(`/watch-ws${location.pathname.slice('/watch'.length)}`),
      };
    }, lanSource);
    expect(outcome).toEqual({ studioSocket: 'refused', srcSocket: 'refused', config: 401, restream: 401, metrics: 401, flvSrc: 401, watchSrc: 401, ownSocket: 'open' });

    await studio.getByRole('button', { name: 'End stream' }).click();
    await expect(studio.getByRole('button', { name: 'Go live' })).toBeVisible({ timeout: 15_000 });
    await pull;
    const streams = await ffprobeStreams(pulled, { decode: true });
    expect(streams.find((s) => s.codec_type === 'video')).toMatchObject({ codec_name: 'h264', width: 1280, height: 720 });
    expect(streams.find((s) => s.codec_type === 'audio')).toMatchObject({ codec_name: 'aac' });

    // The cookie opens the studio again; the address never held the token after the first load.
    await studio.reload();
    await expect(studio.getByLabel('Server URL', { exact: true }).first()).toHaveValue(/^rtmp:\/\/127\.0\.0\.1:\d+\/live$/);
    expect(studio.url()).toBe(`${origin}/`);
    // And a visitor without it gets no studio.
    const stranger = await watchContext.newPage();
    const refused = await stranger.goto(`${origin}/`);
    expect(refused?.status()).toBe(401);
  } finally {
    await studioContext.close();
    await watchContext.close();
    await stopPublic(bridge);
  }
});

test('the studio over https goes live to nginx-rtmp and the embedded server at once', async () => {
  // nginx listens on loopback like everything here: a public bridge dials it only when told to.
  const [bridge, nginx]: [Bridge, NginxRtmp] = await Promise.all([publicBridge(['--allow-private-destinations']), startNginxRtmp({ record: true })]);
  const origin = `https://${NAME}:${bridge.port}`;
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  try {
    const studio = await context.newPage();
    await openStudio(studio, origin);
    await studio.getByRole('button', { name: 'Add destination' }).click();
    const nginxUrl = nginx.url('live', 'x');
    await studio.getByLabel('Server URL', { exact: true }).nth(1).fill(nginxUrl.slice(0, nginxUrl.lastIndexOf('/')));
    await studio.getByLabel('Stream key', { exact: true }).nth(1).fill('public');
    const key = await studio.getByLabel('Stream key', { exact: true }).first().inputValue();
    await studio.getByRole('button', { name: 'Go live' }).click();
    await expect(studio.locator('.status[data-state="live"]')).toHaveCount(2, { timeout: 20_000 });
    const pulled = join(scratch, 'both-embedded.flv');
    const pull = ffmpegPull(`rtmp://127.0.0.1:${bridge.localRtmpPort}/live/${key}`, pulled, 3_000);
    await studio.waitForTimeout(8_000);
    await studio.getByRole('button', { name: 'End stream' }).click();
    await expect(studio.getByRole('button', { name: 'Go live' })).toBeVisible({ timeout: 15_000 });
    await expect(studio.getByRole('alert')).toHaveCount(0);

    const recording = await probeRecording(await nginx.recordingDone('public', 15_000));
    console.log(`nginx-rtmp recording: ${JSON.stringify(recording.video)}`);
    expect([recording.video.codec, recording.video.width, recording.video.height]).toEqual(['h264', 1280, 720]);
    expect(recording.video.durationS).toBeGreaterThan(7);
    expect(recording.audio).toMatchObject({ codec: 'aac', sampleRate: 48_000 });
    const decoded = await ffprobeStreams(await nginx.recordingDone('public', 15_000), { decode: true });
    expect(Number(decoded.find((s) => s.codec_type === 'video')?.nb_read_frames)).toBeGreaterThan(180);
    await pull;
    const embedded = await probeRecording(pulled);
    expect([embedded.video.codec, embedded.video.width, embedded.video.height]).toEqual(['h264', 1280, 720]);
  } finally {
    await context.close();
    await nginx.stop();
    await stopPublic(bridge);
  }
});

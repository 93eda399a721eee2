import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { ffprobeStreams } from '../bridge/test/harness/judge.js';
import { startNginxRtmp, type NginxRtmp } from '../bridge/test/harness/nginx.js';
import { startBridge, type Bridge } from './support/bridge.js';
import { meanVolumeDb, probeRecording, type RecordingReport } from './support/judge.js';
import { ffmpegPull } from './support/pull.js';

const LIVE_SECONDS = 20;
const FPS = 30;
const BITRATE = 2_500_000;
// The promise to a streamer: live everywhere within 3 s of pressing Go live.
const GO_LIVE_MS = 3000;

let bridge: Bridge;
let nginx: NginxRtmp;
let scratch: string;

test.describe.configure({ mode: 'serial' });

test.beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'onair-e2e-'));
  [bridge, nginx] = await Promise.all([startBridge(), startNginxRtmp({ record: true })]);
});

test.afterAll(async () => {
  await bridge?.stop();
  await nginx?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

function serverOf(url: string): string {
  return url.slice(0, url.lastIndexOf('/'));
}

async function openStudio(page: Page, from: Bridge = bridge): Promise<void> {
  page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
  await page.goto(from.url);
  await expect(page.getByRole('button', { name: 'Go live' })).toBeEnabled();
  // The local server is pre-filled once the page has its config.
  await expect(page.getByLabel('Server URL', { exact: true }).first()).toHaveValue(/^rtmp:\/\/127\.0\.0\.1:\d+\/live$/);
}

async function setDestination(page: Page, index: number, server: string, key: string): Promise<void> {
  await page.getByLabel('Server URL', { exact: true }).nth(index).fill(server);
  await page.getByLabel('Stream key', { exact: true }).nth(index).fill(key);
}

/**
 * Goes live, checks every destination says live within GO_LIVE_MS, stays on air, then ends the
 * stream.
 */
async function broadcast(page: Page, destinations: number, onLive?: () => void, seconds = LIVE_SECONDS): Promise<void> {
  const pressed = Date.now();
  await page.getByRole('button', { name: 'Go live' }).click();
  await expect(page.getByRole('button', { name: 'End stream' })).toBeVisible();
  await expect(page.locator('.status[data-state="live"]')).toHaveCount(destinations, { timeout: 20_000 });
  const toLive = Date.now() - pressed;
  console.log(`live on ${destinations} destination(s) ${toLive} ms after Go live`);
  expect(toLive).toBeLessThanOrEqual(GO_LIVE_MS);
  onLive?.();
  await page.waitForTimeout(seconds * 1000);
  const dropped = await page.locator('[data-stat="frames-dropped"]').textContent();
  console.log(`frames dropped on the page: ${dropped}; stats: ${await page.locator('.stats').textContent()}`);
  await page.getByRole('button', { name: 'End stream' }).click();
  await expect(page.getByRole('button', { name: 'Go live' })).toBeVisible({ timeout: 15_000 });
}

function judge(r: RecordingReport, minFrameRatio: number): void {
  console.log(JSON.stringify({ ...r, video: { ...r.video, keyframeGapsS: r.video.keyframeGapsS.map((g) => g.toFixed(3)).join(' ') } }));
  expect(r.video.codec).toBe('h264');
  expect([r.video.width, r.video.height]).toEqual([1280, 720]);
  expect(r.audio.codec).toBe('aac');
  expect(r.audio.profile).toBe('LC');
  expect(r.audio.sampleRate).toBe(48_000);
  expect(r.audio.channels).toBe(2);
  expect(r.video.durationS).toBeGreaterThan(LIVE_SECONDS - 1);
  expect(r.video.frames).toBeGreaterThanOrEqual(Math.floor(minFrameRatio * LIVE_SECONDS * FPS));
  expect(r.video.frames / (r.video.durationS * FPS)).toBeGreaterThanOrEqual(minFrameRatio);
  expect(r.video.keyframeGapsS.length).toBeGreaterThanOrEqual(Math.floor(LIVE_SECONDS / 2) - 1);
  for (const gap of r.video.keyframeGapsS) expect(Math.abs(gap - 2)).toBeLessThanOrEqual(1 / FPS + 0.002);
  expect(Math.abs(r.audio.firstS - r.video.firstS)).toBeLessThanOrEqual(0.1);
  expect(Math.abs(r.video.bitrate - BITRATE) / BITRATE).toBeLessThanOrEqual(0.2);
}

test('goes live to nginx-rtmp: H.264 720p30 + AAC-LC 48 kHz stereo, keyframes every 2 s', async ({ page }) => {
  await openStudio(page);
  await setDestination(page, 0, serverOf(nginx.url('live', 'x')), 'one');
  await broadcast(page, 1);
  const file = await nginx.recordingDone('one', 15_000);
  judge(await probeRecording(file), 0.95);
  // Every frame decodes without an error (the CBR filler NAL units included).
  const decoded = await ffprobeStreams(file, { decode: true });
  expect(Number(decoded.find((s) => s.codec_type === 'video')?.nb_read_frames)).toBeGreaterThanOrEqual(570);
  // The fake microphone's beeps made it through (not the silence used without a microphone).
  expect(await meanVolumeDb(file)).toBeGreaterThan(-50);
});

test('two destinations at once: nginx-rtmp and the embedded node-media-server', async ({ page }) => {
  await openStudio(page);
  // Destination 1 stays the pre-filled embedded server; destination 2 is nginx.
  await page.getByLabel('Stream key', { exact: true }).first().fill('two');
  await page.getByRole('button', { name: 'Add destination' }).click();
  await setDestination(page, 1, serverOf(nginx.url('live', 'x')), 'two');
  const pulled = join(scratch, 'nms-two.flv');
  let pull: Promise<void> | undefined;
  await broadcast(page, 2, () => {
    pull = ffmpegPull(`rtmp://127.0.0.1:${bridge.localRtmpPort}/live/two`, pulled, 4_000);
  });
  judge(await probeRecording(await nginx.recordingDone('two', 15_000)), 0.95);
  await pull;
  // The player joined after the start; it gets the rest of the stream from a keyframe.
  const nms = await probeRecording(pulled);
  console.log(`node-media-server pull: ${JSON.stringify(nms.video)}`);
  expect(nms.video.codec).toBe('h264');
  expect([nms.video.width, nms.video.height]).toEqual([1280, 720]);
  expect(nms.audio.sampleRate).toBe(48_000);
  expect(nms.video.durationS).toBeGreaterThan(LIVE_SECONDS - 3);
  expect(nms.video.frames / (nms.video.durationS * FPS)).toBeGreaterThanOrEqual(0.95);
});

test("keeps full rate with the page's timers and animation frames throttled to 1 Hz", async ({ page }) => {
  await page.addInitScript(() => {
    // What a hidden tab does to a page: timers and rAF at most once a second.
    const setTimeoutOriginal = window.setTimeout.bind(window);
    const setIntervalOriginal = window.setInterval.bind(window);
    window.setTimeout = ((fn: TimerHandler, ms?: number, ...args: unknown[]) => setTimeoutOriginal(fn, Math.max(ms ?? 0, 1000), ...args)) as typeof window.setTimeout;
    window.setInterval = ((fn: TimerHandler, ms?: number, ...args: unknown[]) => setIntervalOriginal(fn, Math.max(ms ?? 0, 1000), ...args)) as typeof window.setInterval;
    window.requestAnimationFrame = (cb: FrameRequestCallback) => setTimeoutOriginal(() => cb(performance.now()), 1000);
  });
  await openStudio(page);
  await setDestination(page, 0, serverOf(nginx.url('live', 'x')), 'three');
  await broadcast(page, 1);
  judge(await probeRecording(await nginx.recordingDone('three', 15_000)), 0.9);
});

test('without MediaStreamTrackProcessor (the Firefox path): requestVideoFrameCallback frames and AudioWorklet audio', async ({ page }) => {
  await page.addInitScript(() => {
    delete (window as unknown as { MediaStreamTrackProcessor?: unknown }).MediaStreamTrackProcessor;
  });
  await openStudio(page);
  await setDestination(page, 0, serverOf(nginx.url('live', 'x')), 'four');
  await broadcast(page, 1);
  const file = await nginx.recordingDone('four', 15_000);
  judge(await probeRecording(file), 0.95);
  expect(await meanVolumeDb(file)).toBeGreaterThan(-50);
});

test('goes live while sharing the screen with its audio: H.264 at the preset size + AAC', async ({ page }) => {
  const seconds = 8;
  await openStudio(page);
  await setDestination(page, 0, serverOf(nginx.url('live', 'x')), 'screen');
  // Chromium's fake UI answers getDisplayMedia with a fake screen and audio (drawn by the same
  // generator as its fake camera, so the picture cannot tell the two apart; the button does).
  await page.getByRole('button', { name: 'Share screen' }).click();
  await expect(page.getByRole('button', { name: 'Stop sharing screen' })).toBeVisible();
  await broadcast(page, 1, undefined, seconds);
  const r = await probeRecording(await nginx.recordingDone('screen', 15_000));
  expect(r.video.codec).toBe('h264');
  expect([r.video.width, r.video.height]).toEqual([1280, 720]);
  expect(r.audio.codec).toBe('aac');
  expect(r.audio.sampleRate).toBe(48_000);
  expect(r.video.frames).toBeGreaterThanOrEqual(Math.floor(0.9 * seconds * FPS));
  expect(Math.abs(r.audio.firstS - r.video.firstS)).toBeLessThanOrEqual(0.1);
});

test('rides out a bridge restart: resumes, finds the session gone, publishes again from a keyframe', async ({ page }) => {
  // Its own nginx, so each publish of the stream gets its own recording.
  const own = await startNginxRtmp({ record: true, liveDirectives: 'record_suffix -%H%M%S.flv;' });
  const first = await startBridge();
  let second: Bridge | undefined;
  try {
    await openStudio(page, first);
    await setDestination(page, 0, serverOf(own.url('live', 'x')), 'again');
    const status = page.locator('.status');
    await page.getByRole('button', { name: 'Go live' }).click();
    await expect(status).toHaveAttribute('data-state', 'live', { timeout: 20_000 });
    await page.waitForTimeout(6_000);

    await first.kill();
    const killedAt = Date.now();
    // The page first tries to resume its session on the bridge …
    await expect(page.locator('[data-link="resuming"]')).toBeVisible({ timeout: 5_000 });
    second = await startBridge([], { port: first.port, localRtmpPort: first.localRtmpPort });
    console.log(`bridge back on port ${first.port} ${Date.now() - killedAt} ms after the kill`);

    // … which the new bridge does not know: a new session publishes again.
    await expect(page.locator('[data-link]')).toHaveCount(0, { timeout: 15_000 });
    await expect(status).toHaveAttribute('data-state', 'live', { timeout: 15_000 });
    console.log(`live again ${Date.now() - killedAt} ms after the kill`);
    await expect(page.locator('[data-stat="reconnects"]')).toHaveText('1');
    await expect(page.getByRole('button', { name: 'End stream' })).toBeVisible();
    await page.waitForTimeout(6_000);
    console.log(`stats: ${await page.locator('.stats').textContent()}`);

    // Ending the stream while the page is still trying to get back ends it cleanly.
    await second.kill();
    await expect(page.locator('[data-link="resuming"]')).toBeVisible({ timeout: 12_000 });
    await page.getByRole('button', { name: 'End stream' }).click();
    await expect(page.getByRole('button', { name: 'Go live' })).toBeVisible({ timeout: 5_000 });
    await expect(page.getByRole('alert')).toHaveCount(0);
    await expect(status).toHaveAttribute('data-state', 'stopped');
    await expect(page.locator('[data-link]')).toHaveCount(0);
    await own.stop();

    const files = readdirSync(own.recordDir).filter((f) => f.startsWith('again-')).sort();
    // One per publish. A destination the bridge had to retry would add one; the first and the
    // last are the two sessions of the page.
    const publishes = own.errorLog().split('\n').filter((l) => l.includes("publish: name='again'"));
    if (files.length !== 2) console.log(`recordings: ${files.join(', ')}\n${publishes.join('\n')}`);
    expect(files.length, `recordings: ${files.join(', ')}`).toBeGreaterThanOrEqual(2);
    const last = files[files.length - 1]!;
    const [before, after] = await Promise.all([files[0]!, last].map((f) => probeRecording(join(own.recordDir, f))));
    for (const r of [before!, after!]) {
      console.log(JSON.stringify({ ...r, video: { ...r.video, keyframeGapsS: r.video.keyframeGapsS.map((g) => g.toFixed(3)).join(' ') } }));
      expect(r.video.codec).toBe('h264');
      expect([r.video.width, r.video.height]).toEqual([1280, 720]);
      expect(r.audio.codec).toBe('aac');
      expect(r.audio.sampleRate).toBe(48_000);
    }
    expect(before!.video.durationS).toBeGreaterThan(5);
    // The second publish is a new RTMP connection: its clock starts at 0, video on a keyframe.
    expect(after!.video.durationS).toBeGreaterThan(5);
    expect(after!.video.firstS).toBeLessThanOrEqual(0.1);
    expect(Math.abs(after!.audio.firstS - after!.video.firstS)).toBeLessThanOrEqual(0.1);
    expect(after!.video.frames / (after!.video.durationS * FPS)).toBeGreaterThanOrEqual(0.9);
    for (const gap of after!.video.keyframeGapsS) expect(Math.abs(gap - 2)).toBeLessThanOrEqual(1 / FPS + 0.002);
    // ffmpeg decodes every frame of the second publish without an error.
    const decoded = await ffprobeStreams(join(own.recordDir, last), { decode: true });
    expect(Number(decoded.find((s) => s.codec_type === 'video')?.nb_read_frames)).toBe(after!.video.frames);
  } finally {
    await first.kill();
    await second?.kill();
    await own.dispose();
  }
});

import { expect, test, type Locator, type Page } from '@playwright/test';
import { flvFixture } from '../bridge/test/harness/fixtures.js';
import { ffprobeStreams, framemd5, type FrameMd5 } from '../bridge/test/harness/judge.js';
import { startNginxRtmp, type NginxRtmp } from '../bridge/test/harness/nginx.js';
import { startNodeMediaServer, type NodeMediaServerHandle } from '../bridge/test/harness/nms.js';
import { spawnTracked, type Child } from '../bridge/test/harness/proc.js';
import { startBridge, type Bridge } from './support/bridge.js';
import { probeRecording } from './support/judge.js';
import { startPublishHook, type PublishHook } from './support/publish-hook.js';

// The Restream view on a real `onair serve`: an input made in the page, ffmpeg publishing to the
// embedded server with the key read from the page, destinations added and started in the page;
// nginx-rtmp's recording and node-media-server's, probed by ffprobe, say what really arrived.

const REFUSED_KEY = 'restream-refused';
// Long enough that the encoder is still publishing when the test stops the destinations.
const FIXTURE_SECONDS = 60;
const LIVE_SECONDS = 12;

let bridge: Bridge;
let nginx: NginxRtmp;
let nms: NodeMediaServerHandle;
let hook: PublishHook;
let encoder: Child | undefined;

test.beforeAll(async () => {
  hook = await startPublishHook(new Set([REFUSED_KEY]));
  [bridge, nginx, nms] = await Promise.all([
    startBridge(),
    startNginxRtmp({ record: true, liveDirectives: hook.directive }),
    startNodeMediaServer({ record: true, publishGraceMs: 0 }),
    flvFixture({ seconds: FIXTURE_SECONDS }),
  ]);
});

test.afterAll(async () => {
  await encoder?.stop('SIGTERM', 5_000);
  await bridge?.stop();
  await nginx?.dispose();
  await nms?.stop();
  await hook?.close();
});

/** The md5 of each packet of the first stream of `type`, in order. */
function hashes(f: FrameMd5, type: string): string[] {
  const index = [...f.mediaTypes].find(([, t]) => t === type)?.[0];
  return f.packets.filter((p) => p.stream === index).map((p) => p.md5);
}

/**
 * The recording is a run of the source, byte for byte: video from a keyframe (every 60th frame in
 * decode order in the fixture) to where it was stopped, audio likewise contiguous.
 */
function expectRunOfSource(recorded: FrameMd5, source: FrameMd5): void {
  const video = hashes(recorded, 'video');
  const sourceVideo = hashes(source, 'video');
  const start = sourceVideo.indexOf(video[0]!);
  expect(start % 60, 'the first frame sent is a keyframe').toBe(0);
  expect(video).toEqual(sourceVideo.slice(start, start + video.length));
  const audio = hashes(recorded, 'audio');
  const sourceAudio = hashes(source, 'audio');
  const audioStart = sourceAudio.indexOf(audio[0]!);
  expect(audioStart).toBeGreaterThanOrEqual(0);
  expect(audio).toEqual(sourceAudio.slice(audioStart, audioStart + audio.length));
}

function serverOf(url: string): string {
  return url.slice(0, url.lastIndexOf('/'));
}

async function addDestination(input: Locator, server: string, key: string): Promise<Locator> {
  const form = input.getByRole('form', { name: /^Add a destination/ });
  await form.getByLabel('Platform').selectOption('custom');
  await form.getByLabel('Server URL', { exact: true }).fill(server);
  await form.getByLabel('Stream key', { exact: true }).fill(key);
  // Started by hand below: the input is live already.
  await form.getByRole('switch', { name: 'Start when the input goes live' }).uncheck();
  const before = await input.locator('li[data-destination]').count();
  await form.getByRole('button', { name: 'Add destination' }).click();
  await expect(input.locator('li[data-destination]')).toHaveCount(before + 1);
  const row = input.locator('li[data-destination]').nth(before);
  // The page shows the server, never the key.
  await expect(row).toContainText(`${server}/***`);
  await expect(row).not.toContainText(key);
  await expect(row.locator('.pill')).toHaveText('off');
  return row;
}

async function openView(page: Page): Promise<void> {
  page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
  await page.goto(`${bridge.url}restream`);
  await expect(page.getByRole('heading', { name: 'onair restream' })).toBeVisible();
  await expect(page.getByRole('region', { name: 'Ingest' })).toContainText(`rtmp://127.0.0.1:${bridge.localRtmpPort}/live`);
}

test('restreams an encoder to nginx-rtmp and node-media-server; a refused key fails alone, in words', async ({ page }) => {
  test.setTimeout(180_000);
  await openView(page);
  // Bound to loopback, the embedded server accepts any key.
  await expect(page.locator('[data-open="true"]')).toBeVisible();

  await page.getByRole('region', { name: 'Add input' }).getByLabel('Name').fill('OBS');
  await page.getByRole('button', { name: 'Add input' }).click();
  const input = page.getByRole('article', { name: 'Input OBS' });
  await expect(input.locator('.pill').first()).toHaveText('waiting');

  // The encoder settings, as a user copies them into OBS.
  const keyField = input.getByLabel('Stream key', { exact: true }).first();
  await expect(keyField).toHaveAttribute('type', 'password');
  await input.getByRole('button', { name: 'Show stream key' }).click();
  await expect(keyField).toHaveAttribute('type', 'text');
  const key = await keyField.inputValue();
  const server = await input.getByLabel('Server', { exact: true }).inputValue();
  expect(key).toMatch(/^[A-Za-z0-9_-]{8,}$/);
  expect(server).toBe(`rtmp://127.0.0.1:${bridge.localRtmpPort}/live`);

  const fixture = await flvFixture({ seconds: FIXTURE_SECONDS });
  encoder = spawnTracked('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-i', fixture, '-map', '0', '-c', 'copy', '-f', 'flv', `${server}/${key}`]);
  await expect(input.locator('.pill').first()).toHaveText('live', { timeout: 20_000 });

  const nginxRow = await addDestination(input, serverOf(nginx.url('live', 'x')), 'restream-nginx');
  const nmsRow = await addDestination(input, serverOf(nms.url('live', 'x')), 'restream-nms');
  const refusedRow = await addDestination(input, serverOf(nginx.url('live', 'x')), REFUSED_KEY);
  const started = Date.now();
  for (const row of [nginxRow, nmsRow, refusedRow]) await row.getByRole('button', { name: 'Start', exact: true }).click();

  await expect(nginxRow.locator('.pill')).toHaveText('live', { timeout: 20_000 });
  await expect(nmsRow.locator('.pill')).toHaveText('live', { timeout: 20_000 });
  console.log(`both destinations live ${Date.now() - started} ms after Start`);

  // What the input carries, as the bridge measures it: the fixture is 1280x720 at 30 fps, ~2.6 Mbps.
  const stats = input.getByRole('definition');
  await expect(input.locator('[data-stat="resolution"]')).toHaveText('1280×720', { timeout: 10_000 });
  await expect(input.locator('[data-stat="codecs"]')).toContainText('avc1');
  await expect(input.locator('[data-stat="codecs"]')).toContainText('mp4a.40.2');
  await expect.poll(async () => Number(await input.locator('[data-stat="fps"]').getAttribute('data-fps')), { timeout: 10_000 }).toBeGreaterThan(20);
  await expect.poll(async () => Number(await input.locator('[data-stat="bitrate"]').getAttribute('data-kbps')), { timeout: 10_000 }).toBeGreaterThan(1500);
  await expect.poll(async () => Number(await input.locator('[data-stat="keyframe-interval"]').getAttribute('data-s')), { timeout: 10_000 }).toBeCloseTo(2, 0);
  await expect(input.locator('[data-warning="keyframes"]')).toHaveCount(0);
  console.log(`input stats: ${(await stats.allTextContents()).join(' · ')}`);

  // The refused key gives up with a sentence, while the others stay live.
  await expect(refusedRow.locator('.pill')).toHaveText('failed', { timeout: 60_000 });
  const reason = await refusedRow.locator('[data-reason="failed"]').textContent();
  console.log(`refused destination: ${reason}`);
  expect(reason).toMatch(/stream key|refused/i);
  expect(reason).not.toContain(REFUSED_KEY);
  expect(hook.asked).toContain(REFUSED_KEY);
  await expect(nginxRow.locator('.pill')).toHaveText('live');
  await expect(nmsRow.locator('.pill')).toHaveText('live');

  // The preview plays the input: the browser's own decoder counts its frames.
  const preview = input.getByLabel('Preview of OBS');
  await expect
    .poll(() => preview.evaluate((v: HTMLVideoElement) => v.getVideoPlaybackQuality().totalVideoFrames), { timeout: 20_000 })
    .toBeGreaterThan(30);

  // … and keeps playing across the page's polls of the state (one player, not one per poll).
  const shownBefore = await preview.evaluate((v: HTMLVideoElement) => v.getVideoPlaybackQuality().totalVideoFrames);
  await page.waitForTimeout(LIVE_SECONDS * 1000);
  const shown = (await preview.evaluate((v: HTMLVideoElement) => v.getVideoPlaybackQuality().totalVideoFrames)) - shownBefore;
  console.log(`preview: ${shown} frames shown in ${LIVE_SECONDS} s`);
  expect(shown).toBeGreaterThan(LIVE_SECONDS * 30 * 0.8);
  const sent = Number(await nginxRow.locator('[data-bytes]').getAttribute('data-bytes'));
  expect(sent).toBeGreaterThan(1_000_000);
  await expect(nginxRow.locator('.pill')).toHaveText('live');
  await expect(nmsRow.locator('.pill')).toHaveText('live');
  await expect(page.getByRole('alert')).toHaveCount(0);

  await input.getByRole('button', { name: 'Stop all' }).click();
  for (const row of [nginxRow, nmsRow]) await expect(row.locator('.pill')).toHaveText('off', { timeout: 10_000 });
  // What gave up stays so, with its Start to try again.
  await expect(refusedRow.locator('.pill')).toHaveText('failed');
  await expect(refusedRow.getByRole('button', { name: 'Start', exact: true })).toBeVisible();

  // From outside the page: both servers got H.264 720p and AAC that decode.
  const nginxFile = await nginx.recordingDone('restream-nginx', 15_000);
  const nmsFile = await nms.recordingDone('live', 'restream-nms', 15_000);
  for (const [who, file] of [['nginx-rtmp', nginxFile], ['node-media-server', nmsFile]] as const) {
    const r = await probeRecording(file);
    console.log(`${who}: ${JSON.stringify({ ...r, video: { ...r.video, keyframeGapsS: r.video.keyframeGapsS.map((g) => g.toFixed(2)).join(' ') } })}`);
    expect(r.video.codec).toBe('h264');
    expect([r.video.width, r.video.height]).toEqual([1280, 720]);
    expect(r.audio.codec).toBe('aac');
    expect(r.audio.sampleRate).toBe(48_000);
    expect(r.video.durationS).toBeGreaterThan(LIVE_SECONDS);
    expect(r.audio.packets).toBeGreaterThan(LIVE_SECONDS * 40);
    for (const gap of r.video.keyframeGapsS) expect(gap).toBeCloseTo(2, 1);
    const decoded = await ffprobeStreams(file, { decode: true });
    expect(Number(decoded.find((s) => s.codec_type === 'video')?.nb_read_frames)).toBe(r.video.frames);
    expect(Number(decoded.find((s) => s.codec_type === 'audio')?.nb_read_frames)).toBe(r.audio.packets);
    // Payloads untouched: every packet is the encoder's, in order, from a keyframe on.
    expectRunOfSource(await framemd5(file), await framemd5(fixture));
  }
  await encoder.stop('SIGTERM', 5_000);
  encoder = undefined;
  // The setup outlives the bridge (restream.json): leave none for the other specs' bridges.
  await input.getByRole('button', { name: 'Remove input' }).click();
  await expect(input).toHaveCount(0);
});

test('a request the bridge refuses leaves a sentence next to it, not a code', async ({ page }) => {
  await openView(page);
  await page.getByRole('region', { name: 'Add input' }).getByLabel('Name').fill('Words');
  await page.getByRole('button', { name: 'Add input' }).click();
  const input = page.getByRole('article', { name: 'Input Words' });
  const form = input.getByRole('form', { name: /^Add a destination/ });
  await form.getByLabel('Server URL', { exact: true }).fill('http://not-rtmp.example/app');
  await form.getByRole('button', { name: 'Add destination' }).click();
  const alert = input.getByRole('alert');
  await expect(alert).toHaveText(/^Could not add the destination: \S+( \S+){3,}/);
  console.log(`refused request: ${await alert.textContent()}`);
  await expect(input.locator('li[data-destination]')).toHaveCount(0);
  await input.getByRole('button', { name: 'Remove input' }).click();
  await expect(input).toHaveCount(0);
});

test('a stream publishing with a key of its own is listed and restreamed with one click', async ({ page }) => {
  test.setTimeout(60_000);
  await openView(page);
  const fixture = await flvFixture({ seconds: FIXTURE_SECONDS });
  const own = spawnTracked('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-i', fixture, '-map', '0', '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${bridge.localRtmpPort}/live/own-key-7c1d`]);
  try {
    const listed = page.getByRole('region', { name: 'Streams on the embedded server' }).locator('li[data-key="own-key-7c1d"]');
    await expect(listed).toBeVisible({ timeout: 20_000 });
    // Masked but for its end until asked.
    await expect(listed).toContainText('live/••••7c1d');
    await listed.getByRole('button', { name: 'Restream this' }).click();
    const input = page.getByRole('article', { name: 'Input Stream …7c1d' });
    await expect(input.locator('.pill').first()).toHaveText('live', { timeout: 20_000 });
    await expect(listed).toHaveCount(0);
    await input.getByRole('button', { name: 'Remove input' }).click();
    await expect(input).toHaveCount(0);
  } finally {
    await own.stop('SIGTERM', 5_000);
  }
});

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { startNginxRtmp, type NginxRtmp } from '../bridge/test/harness/nginx.js';
import { FlvReader, FlvTagType, parseVideoBody } from '../shared/src/index.js';
import { readWithMp4box } from '../shared/src/testing/mp4box-samples.js';
import { startBridge, type Bridge } from './support/bridge.js';
import { probeRecording } from './support/judge.js';

const FPS = 30;

let bridge: Bridge;
let nginx: NginxRtmp;
let scratch: string;

test.describe.configure({ mode: 'serial' });

test.beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'onair-rec-e2e-'));
  [bridge, nginx] = await Promise.all([startBridge(), startNginxRtmp({ record: true })]);
});

test.afterAll(async () => {
  await bridge?.stop();
  await nginx?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

test.beforeEach(async ({ page }) => {
  // Save takes the download path (a save dialog cannot be driven headless).
  await page.addInitScript(() => {
    delete (window as unknown as { showSaveFilePicker?: unknown }).showSaveFilePicker;
  });
  page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
});

async function openStudio(page: Page, key: string): Promise<void> {
  await page.goto(bridge.url);
  await expect(page.getByRole('button', { name: 'Go live' })).toBeEnabled();
  await expect(page.getByLabel('Server URL', { exact: true }).first()).toHaveValue(/^rtmp:\/\/127\.0\.0\.1:\d+\/live$/);
  const server = nginx.url('live', key);
  await page.getByLabel('Server URL', { exact: true }).first().fill(server.slice(0, server.lastIndexOf('/')));
  await page.getByLabel('Stream key', { exact: true }).first().fill(key);
}

async function goLive(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Go live' }).click();
  await expect(page.locator('.status[data-state="live"]')).toHaveCount(1, { timeout: 20_000 });
}

async function endStream(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'End stream' }).click();
  await expect(page.getByRole('button', { name: 'Go live' })).toBeVisible({ timeout: 15_000 });
}

/** Presses Save on the stored recording and takes the file the browser downloads. */
async function saveRecording(page: Page, into: string): Promise<{ file: string; name: string; unfinished: boolean }> {
  const item = page.locator('[data-recording-file]').first();
  await expect(item).toBeVisible({ timeout: 15_000 });
  const name = (await item.getAttribute('data-recording-file'))!;
  const unfinished = (await item.getAttribute('data-unfinished')) === 'true';
  const download = page.waitForEvent('download');
  await item.getByRole('button', { name: `Save ${name}` }).click();
  const file = join(into, name);
  await (await download).saveAs(file);
  return { file, name, unfinished };
}

const mp4box = readWithMp4box;

/** Decodes every frame with ffmpeg; any message (a broken frame, a bad box) fails. Returns the frames decoded. */
function decodeAll(file: string): number {
  const out = execFileSync('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-i', file, '-map', '0:v', '-f', 'framemd5', '-'], { maxBuffer: 256 * 1024 * 1024 });
  return out.toString('utf8').split('\n').filter((l) => /^\s*0,/.test(l)).length;
}

/** The video frames of an FLV file: payload (AVCC, the stream's filler NAL units included) and timestamp, ms. */
function flvVideo(file: string): { data: Uint8Array; ms: number; key: boolean }[] {
  const frames: { data: Uint8Array; ms: number; key: boolean }[] = [];
  for (const t of new FlvReader().push(new Uint8Array(readFileSync(file)))) {
    if (t.type !== FlvTagType.Video) continue;
    const v = parseVideoBody(t.data);
    if (v.packetType === 1) frames.push({ data: v.data, ms: t.timestamp + v.cts, key: v.keyframe });
  }
  return frames;
}

function startsWith(data: Uint8Array, prefix: Uint8Array): boolean {
  if (data.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[i] !== prefix[i]) return false;
  return true;
}

test('records 20 s while live: the same frames as sent, in a file ffprobe and mp4box read, as long as the stream', async ({ page }) => {
  test.setTimeout(180_000);
  await openStudio(page, 'rec');
  await goLive(page);
  await page.waitForTimeout(3_000);
  await page.getByRole('button', { name: 'Record', exact: true }).click();
  await expect(page.locator('[data-recording]')).toBeVisible({ timeout: 10_000 });
  await page.waitForTimeout(20_000);
  await page.getByRole('button', { name: 'Stop recording' }).click();
  await expect(page.getByRole('button', { name: 'Record', exact: true })).toBeVisible({ timeout: 15_000 });
  // Stopping the recording kept the stream.
  await expect(page.locator('.status[data-state="live"]')).toHaveCount(1);
  await expect(page.getByRole('button', { name: 'End stream' })).toBeVisible();
  await page.waitForTimeout(2_000);
  const saved = await saveRecording(page, scratch);
  expect(saved.unfinished).toBe(false);
  await endStream(page);

  const probe = await probeRecording(saved.file);
  console.log(`recording: ${JSON.stringify(probe)}`);
  expect(probe.video.codec).toBe('h264');
  expect([probe.video.width, probe.video.height]).toEqual([1280, 720]);
  expect(probe.audio.codec).toBe('aac');
  expect(probe.audio.sampleRate).toBe(48_000);
  const bytes = new Uint8Array(readFileSync(saved.file));
  const { info, samples } = mp4box(bytes);
  expect(info.tracks.map((t) => t.codec)).toEqual([expect.stringMatching(/^avc1\./), 'mp4a.40.2']);
  const video = samples.get(info.tracks[0]!.id)!;
  expect(video[0]!.is_sync).toBe(true);
  expect(decodeAll(saved.file)).toBe(video.length);

  // The stream as nginx received it: the recording is a run of its frames, byte for byte (the
  // stream's frames may carry CBR filler after the picture), none missing, none added.
  const sent = flvVideo(await nginx.recordingDone('rec', 15_000));
  const first = sent.findIndex((f) => startsWith(f.data, new Uint8Array(video[0]!.data!)));
  expect(first).toBeGreaterThanOrEqual(0);
  video.forEach((s, i) => {
    const f = sent[first + i];
    expect(f, `sent frame ${first + i}`).toBeDefined();
    expect(startsWith(f!.data, new Uint8Array(s.data!)), `recorded frame ${i} is sent frame ${first + i}`).toBe(true);
  });
  console.log(`recorded ${video.length} frames: sent frames ${first}..${first + video.length - 1} of ${sent.length}`);
  expect(video.length).toBeGreaterThanOrEqual(Math.floor(0.95 * 20 * FPS));
  // As long as the same frames last in the stream.
  const streamS = (sent[first + video.length - 1]!.ms - sent[first]!.ms) / 1000 + 1 / FPS;
  const recordingS = (Math.max(...video.map((s) => (s.cts + s.duration) / s.timescale)) - video[0]!.cts / video[0]!.timescale);
  console.log(`recording lasts ${recordingS.toFixed(3)} s, the same frames in the stream ${streamS.toFixed(3)} s, ffprobe ${probe.video.durationS.toFixed(3)} s`);
  expect(Math.abs(recordingS - streamS)).toBeLessThanOrEqual(0.2);
  expect(Math.abs(probe.video.durationS - streamS)).toBeLessThanOrEqual(0.2);
  expect(Math.abs(probe.audio.firstS - probe.video.firstS)).toBeLessThanOrEqual(0.1);
});

test('a reload mid-recording leaves a playable file, offered on the next load', async ({ page }) => {
  test.setTimeout(120_000);
  await openStudio(page, 'unused');
  // Recording alone: no stream at all.
  await page.getByRole('button', { name: 'Record', exact: true }).click();
  await expect(page.locator('[data-recording]')).toBeVisible({ timeout: 10_000 });
  await page.waitForTimeout(8_000);
  const frames = Number(await page.locator('[data-recording]').getAttribute('data-frames'));
  await page.reload();
  await expect(page.getByRole('button', { name: 'Go live' })).toBeEnabled();
  const saved = await saveRecording(page, scratch);
  expect(saved.unfinished).toBe(true);
  await expect(page.locator(`[data-recording-file="${saved.name}"]`)).toContainText('recovered');
  const { samples, info } = mp4box(new Uint8Array(readFileSync(saved.file)));
  const video = samples.get(info.tracks[0]!.id)!;
  console.log(`recovered ${video.length} frames; the page had counted ${frames} a moment before the reload`);
  // Fragments are cut at least every second: at most about a second is lost.
  expect(video.length).toBeGreaterThanOrEqual(frames - 2 * FPS);
  expect(decodeAll(saved.file)).toBe(video.length);
  const probe = await probeRecording(saved.file);
  expect(probe.video.codec).toBe('h264');
  expect(probe.video.durationS).toBeGreaterThan(5);
  // Deleting it frees the room.
  await page.getByRole('button', { name: `Delete ${saved.name}` }).click();
  await expect(page.locator(`[data-recording-file="${saved.name}"]`)).toHaveCount(0);
});

test('a bitrate change from 2.5 to 1 Mbps while live: one stream at nginx, 1 Mbps from the change on', async ({ page }) => {
  test.setTimeout(120_000);
  await openStudio(page, 'rate');
  await expect(page.getByLabel('H.264 profile')).toBeEnabled();
  await goLive(page);
  const liveAt = Date.now();
  // What cannot change live says why.
  await expect(page.getByLabel('Quality')).toBeDisabled();
  await expect(page.getByLabel('H.264 profile')).toBeDisabled();
  await expect(page.getByText('Resolution, frame rate and H.264 profile are fixed while live')).toBeVisible();
  await page.waitForTimeout(8_000);
  await page.getByLabel('Video bitrate').selectOption('1000');
  const changedS = (Date.now() - liveAt) / 1000;
  await expect(page.locator('[data-bitrate-target="1000000"]')).toBeVisible({ timeout: 5_000 });
  await page.waitForTimeout(3_000);
  // A player connecting now is told the new rate.
  // (ffmpeg's FLV reader turns onMetaData's videodatarate, kbps, into the stream's bit_rate × 1024.)
  const meta = execFileSync('ffprobe', ['-v', 'error', '-rw_timeout', '10000000', '-select_streams', 'v', '-show_entries', 'stream=bit_rate', '-of', 'json', nginx.url('live', 'rate')], { timeout: 20_000 });
  const rate = Number((JSON.parse(meta.toString('utf8')) as { streams: { bit_rate?: string }[] }).streams[0]?.bit_rate) / 1024;
  console.log(`onMetaData videodatarate for a new player: ${rate} kbps`);
  expect(rate).toBe(1000);
  await page.waitForTimeout(9_000);
  await endStream(page);

  const file = await nginx.recordingDone('rate', 15_000);
  // One publish, one file, one video and one audio stream.
  expect(readdirSync(join(file, '..')).filter((f) => f.startsWith('rate'))).toEqual(['rate.flv']);
  const streams = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type', '-of', 'json', file]).toString('utf8')) as { streams: { codec_type: string }[] };
  expect(streams.streams.map((s) => s.codec_type).sort()).toEqual(['audio', 'video']);
  const frames = flvVideo(file);
  expect(decodeAll(file)).toBe(frames.length);
  const rateOver = (fromS: number, toS: number): number => {
    const bytes = frames.filter((f) => f.ms / 1000 >= fromS && f.ms / 1000 < toS).reduce((n, f) => n + f.data.length, 0);
    return (bytes * 8) / (toS - fromS);
  };
  // The page's clock places the change within about half a second of the stream's.
  const before = rateOver(1, changedS - 1);
  const after = rateOver(changedS + 0.5, changedS + 10.5);
  console.log(`video bitrate before the change ${(before / 1e6).toFixed(3)} Mbps, the 10 s after it ${(after / 1e6).toFixed(3)} Mbps`);
  expect(Math.abs(before - 2_500_000) / 2_500_000).toBeLessThanOrEqual(0.2);
  expect(Math.abs(after - 1_000_000) / 1_000_000).toBeLessThanOrEqual(0.2);
  const keys = frames.filter((f) => f.key).map((f) => f.ms / 1000);
  for (const [i, k] of keys.slice(1).entries()) expect(k - keys[i]!).toBeLessThanOrEqual(2 + 1 / FPS + 0.002);
});

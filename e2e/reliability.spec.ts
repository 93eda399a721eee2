import { expect, test, type Page } from '@playwright/test';
import { ffprobeStreams } from '../bridge/test/harness/judge.js';
import { startNginxRtmp, type NginxRtmp } from '../bridge/test/harness/nginx.js';
import { runChecked } from '../bridge/test/harness/proc.js';
import { startChaosProxy, type ChaosProxy } from '../bridge/test/harness/proxy.js';
import { startBridge } from './support/bridge.js';
import { probeRecording } from './support/judge.js';

// The studio rides out a bad network between the page and the bridge: a chaos proxy sits between
// them (the page loads the studio through it, so its WebSocket goes through it too) and resets,
// refuses and blackholes the connection. nginx-rtmp's recording, judged by ffprobe, must show one
// continuous stream with every frame the studio encoded, once.

const FPS = 30;

let nginx: NginxRtmp;

test.describe.configure({ mode: 'serial' });

test.beforeAll(async () => {
  nginx = await startNginxRtmp({ record: true });
});

test.afterAll(async () => {
  await nginx?.stop();
});

async function goLive(page: Page, origin: string, key: string): Promise<void> {
  page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
  await page.goto(origin);
  await expect(page.getByRole('button', { name: 'Go live' })).toBeEnabled();
  await expect(page.getByLabel('Server URL', { exact: true }).first()).toHaveValue(/^rtmp:/);
  const server = nginx.url('live', key);
  await page.getByLabel('Server URL', { exact: true }).first().fill(server.slice(0, server.lastIndexOf('/')));
  await page.getByLabel('Stream key', { exact: true }).first().fill(key);
  await page.getByRole('button', { name: 'Go live' }).click();
  await expect(page.locator('.status[data-state="live"]')).toHaveCount(1, { timeout: 20_000 });
}

/** Waits until the page's link to the bridge is up again (no banner). */
async function linkUp(page: Page, timeout = 20_000): Promise<void> {
  await expect(page.locator('[data-link]')).toHaveCount(0, { timeout });
}

interface PageCounts {
  encoded: number;
  /** Frames never encoded because the machine was busy: the worker ran late, the encoder's queue was full, or it skipped them. */
  cpuDrops: number;
  /** Frames dropped because the link to the bridge was backed up. */
  linkDrops: number;
}

async function endStream(page: Page): Promise<PageCounts> {
  await page.getByRole('button', { name: 'End stream' }).click();
  await expect(page.getByRole('button', { name: 'Go live' })).toBeVisible({ timeout: 20_000 });
  console.log(`stats: ${await page.locator('.stats').textContent()}`);
  const dropped = page.locator('[data-stat="frames-dropped"]');
  const n = async (attr: string): Promise<number> => Number(await dropped.getAttribute(attr));
  return {
    encoded: Number(await page.locator('[data-stat="frames-encoded"]').textContent()),
    cpuDrops: (await n('data-late')) + (await n('data-encoder')) + (await n('data-by-encoder')),
    linkDrops: await n('data-backlog'),
  };
}

/**
 * No step between video frames over 100 ms. On a machine too busy to encode every frame (the
 * page counts those), the recording may only miss as many frames as the page says it could not
 * encode: none may go missing on the way.
 */
function expectContinuous(times: number[], page: PageCounts): void {
  const jumps = times.slice(1).map((t, i) => t - times[i]!);
  const big = jumps.map((j, i) => [times[i]!, j] as const).filter(([, j]) => j > 0.1);
  console.log(`recording: ${times.length} video frames over ${(times[times.length - 1]! - times[0]!).toFixed(2)} s, largest step ${(Math.max(...jumps) * 1000).toFixed(0)} ms`);
  if (big.length > 0) console.log(`steps over 100 ms at: ${big.map(([t, j]) => `${t.toFixed(2)} s (+${(j * 1000).toFixed(0)} ms)`).join(', ')}`);
  expect(page.linkDrops).toBe(0);
  if (page.cpuDrops === 0) {
    expect(Math.max(...jumps)).toBeLessThanOrEqual(0.1);
  } else {
    const missing = jumps.reduce((n, j) => n + Math.max(0, Math.round(j * FPS) - 1), 0);
    console.log(`the machine was too busy to encode ${page.cpuDrops} frames; the recording misses ${missing}`);
    expect(missing).toBeLessThanOrEqual(page.cpuDrops);
  }
}

/**
 * Presentation times (s) of a recording's video frames, in display order. A sequence header sent
 * again mid-stream (after a gap) is a packet without a time to ffprobe, not a frame.
 */
async function videoTimes(file: string): Promise<number[]> {
  const out = await runChecked('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', file], { captureStdout: true });
  return out
    .toString()
    .trim()
    .split('\n')
    .map(Number)
    .filter((t) => !Number.isNaN(t))
    .sort((a, b) => a - b);
}

function publishes(key: string): number {
  return nginx.errorLog().split('\n').filter((l) => l.includes(`publish: name='${key}'`)).length;
}

test('resets, refusals and a blackhole between page and bridge: one continuous stream, every frame once', async ({ page }) => {
  test.setTimeout(180_000);
  const bridge = await startBridge();
  const proxy: ChaosProxy = await startChaosProxy(bridge.port);
  try {
    await goLive(page, `http://127.0.0.1:${proxy.port}/`, 'chaos');
    await page.waitForTimeout(4000);
    for (let i = 0; i < 2; i++) {
      console.log(`reset ${i + 1}: every connection reset, new ones refused for 5 s`);
      await proxy.reset(5000);
      await linkUp(page);
      await page.waitForTimeout(3000);
    }
    console.log('blackhole: nothing passes either way for 5 s');
    await proxy.blackhole(5000);
    await linkUp(page);
    await page.waitForTimeout(3000);
    expect(await page.locator('.status[data-state="live"]').count()).toBe(1);
    const counts = await endStream(page);
    const { encoded } = counts;
    const reconnects = Number(await page.locator('[data-stat="reconnects"]').textContent());
    const lost = Number(await page.locator('[data-stat="gap-frames"]').textContent());
    console.log(`page: ${encoded} frames encoded, ${reconnects} reconnects, ${lost} frames lost in gaps`);
    expect(reconnects).toBeGreaterThanOrEqual(2);
    expect(lost).toBe(0);

    const file = await nginx.recordingDone('chaos', 20_000);
    // One publish: the destination never noticed.
    expect(publishes('chaos')).toBe(1);
    const times = await videoTimes(file);
    expectContinuous(times, counts);
    expect(times.length).toBe(encoded);
    const r = await probeRecording(file);
    expect(Math.abs(r.audio.firstS - r.video.firstS)).toBeLessThanOrEqual(0.1);
    const decoded = await ffprobeStreams(file, { decode: true });
    expect(Number(decoded.find((s) => s.codec_type === 'video')?.nb_read_frames)).toBe(encoded);
  } finally {
    await proxy.close();
    await bridge.stop();
  }
});

test('a cut longer than the resend buffer: resumes at a keyframe, reports the gap, the recording stays decodable', async ({ page }) => {
  test.setTimeout(120_000);
  const bridge = await startBridge(['--resend-buffer', '3']);
  const proxy = await startChaosProxy(bridge.port);
  try {
    await goLive(page, `http://127.0.0.1:${proxy.port}/`, 'longcut');
    await page.waitForTimeout(4000);
    await proxy.reset(9000);
    await linkUp(page);
    const gap = page.locator('.gap[data-gaps="1"]');
    await expect(gap).toBeVisible({ timeout: 10_000 });
    console.log(await gap.textContent());
    await page.waitForTimeout(4000);
    const counts = await endStream(page);
    const { encoded } = counts;
    const lost = Number(await page.locator('[data-stat="gap-frames"]').textContent());
    const lostMs = Number(await page.locator('[data-stat="gap-frames"]').getAttribute('data-ms'));
    console.log(`page: ${encoded} frames encoded, ${lost} lost (${lostMs} ms)`);
    // Nine seconds away with three kept: about six seconds (and the frames of them) are gone.
    expect(lostMs).toBeGreaterThan(3000);
    expect(lost).toBeGreaterThan(3 * FPS);

    const file = await nginx.recordingDone('longcut', 20_000);
    expect(publishes('longcut')).toBe(1);
    const times = await videoTimes(file);
    // The timeline continues at the keyframe after the gap: no jump in the recording.
    expectContinuous(times, counts);
    // Nothing the page counted as kept is missing. Once in about ten runs on a loaded machine the
    // recording held up to 8 frames more than the page's count (the gap report overstated the
    // loss by a quarter of a second; docs/studio.md, known limits): allowed up to half a second.
    const kept = encoded - lost;
    if (times.length !== kept) console.log(`the recording holds ${times.length - kept} frames more than the page counted as kept`);
    expect(times.length).toBeGreaterThanOrEqual(kept);
    expect(times.length - kept).toBeLessThanOrEqual(FPS / 2);
    const decoded = await ffprobeStreams(file, { decode: true });
    expect(Number(decoded.find((s) => s.codec_type === 'video')?.nb_read_frames)).toBe(times.length);
  } finally {
    await proxy.close();
    await bridge.stop();
  }
});

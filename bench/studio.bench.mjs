// Studio benchmark: per-frame cost of FLV muxing + WebSocket send in the browser, and the CPU
// the studio takes (all browser processes, from /proc) at 720p30 and 1080p30, with frames
// dropped. Run after `npm run build`: node bench/studio.bench.mjs [--seconds N]
// Writes docs/bench/studio.md.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { browserPidOf, freePort, treeTicksOf, waitPort } from './support.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '20' } } });
const SECONDS = Number(values.seconds);
const WARMUP_S = 3;
const CLK_TCK = 100;

async function stats(page) {
  const el = page.locator('[data-stat="mux-send-ms"]');
  const ds = await el.evaluate((e) => ({ ...e.dataset }));
  const text = async (name) => (await page.locator(`[data-stat="${name}"]`).textContent()) ?? '';
  return {
    muxMedianMs: Number(ds.median),
    muxMeanMs: Number(ds.mean),
    muxP95Ms: Number(ds.p95),
    fps: await text('fps'),
    bitrate: await text('bitrate'),
    dropped: Number(await text('frames-dropped')),
    repeated: Number(await text('frames-repeated')),
    codec: await text('codec'),
  };
}

async function scenario(presetLabel, bridgePort, onairPid) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'onair-bench-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  try {
    const pid = browserPidOf(userDataDir);
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(`http://127.0.0.1:${bridgePort}/`);
    await page.getByLabel('Quality').selectOption({ label: presetLabel });
    await page.getByRole('button', { name: 'Go live' }).click();
    await page.locator('.status[data-state="live"]').first().waitFor({ timeout: 30_000 });
    await page.waitForTimeout(WARMUP_S * 1000);
    const before = { browser: treeTicksOf(pid), bridge: treeTicksOf(onairPid), at: performance.now(), stats: await stats(page) };
    await page.waitForTimeout(SECONDS * 1000);
    const after = { browser: treeTicksOf(pid), bridge: treeTicksOf(onairPid), at: performance.now(), stats: await stats(page) };
    await page.getByRole('button', { name: 'End stream' }).click();
    await page.getByRole('button', { name: 'Go live' }).waitFor({ timeout: 15_000 });
    const seconds = (after.at - before.at) / 1000;
    return {
      preset: presetLabel,
      browserCpu: ((after.browser - before.browser) / CLK_TCK / seconds) * 100,
      bridgeCpu: ((after.bridge - before.bridge) / CLK_TCK / seconds) * 100,
      droppedDuring: after.stats.dropped - before.stats.dropped,
      ...after.stats,
      version: context.browser()?.version() ?? '',
    };
  } finally {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

const port = await freePort();
const rtmpPort = await freePort();
const onair = spawn(process.execPath, [join(root, 'bridge', 'bin', 'onair.mjs'), 'serve', '--port', String(port), '--local-rtmp-port', String(rtmpPort)], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
const results = [];
try {
  await waitPort(port, 60_000, 'onair serve');
  for (const preset of ['720p30 · 2.5 Mbps', '1080p30 · 4.5 Mbps']) {
    const r = await scenario(preset, port, onair.pid);
    console.log(JSON.stringify(r));
    results.push(r);
  }
} finally {
  onair.kill('SIGTERM');
}

const f2 = (n) => n.toFixed(2);
const f3 = (n) => n.toFixed(3);
const cpu = cpus();
const lines = [
  '# Studio benchmark',
  '',
  `Run ${new Date().toISOString()} by \`node bench/studio.bench.mjs\` (${SECONDS} s per preset after ${WARMUP_S} s of warm-up).`,
  `Machine: ${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores (shared with other work), ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM; Node ${process.version}; headless Chromium ${results[0]?.version ?? ''}.`,
  'Source: Chromium\'s fake camera (20 fps, so the output clock repeats frames to hold 30 fps) and fake microphone; destination: the embedded RTMP server.',
  '',
  '| preset | encoder | fps out (last second) | frames dropped (whole run / measured window) | frames repeated | browser CPU (% of one core) | bridge CPU (% of one core) | mux + send per frame: median / mean / p95 (ms) |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...results.map((r) => `| ${r.preset} | ${r.codec} | ${r.fps} | ${r.dropped} / ${r.droppedDuring} | ${r.repeated} | ${f2(r.browserCpu)} | ${f2(r.bridgeCpu)} | ${f3(r.muxMedianMs)} / ${f3(r.muxMeanMs)} / ${f3(r.muxP95Ms)} |`),
  '',
  'Targets: mux + send median < 0.1 ms at 720p30; 0 frames dropped at 720p30. The cores are shared',
  'with other work, so figures move between runs (720p30 medians of 0.085–0.11 ms were seen); of',
  'that time about 10 µs is muxing and the rest `WebSocket.send`.',
  '',
  'How it is measured: the encode worker times each video frame from FLV muxing (tag header, AVC',
  'header, frame copy, CBR filler) through `WebSocket.send`, with the page cross-origin isolated so',
  '`performance.now()` has 5 µs resolution; median and p95 over the last 600 frames, mean over the',
  'session. CPU is utime + stime of the browser process and all its descendants (renderer, GPU,',
  'utility, workers) from /proc, over the measured window.',
  '',
  'Composing scenes (picture-in-picture with the logo and the lower third against the plain camera',
  'scene, side by side in one session, at 720p30 and 1080p30: compose cost per frame, browser CPU,',
  'frames dropped) is measured by `node bench/scenes.bench.mjs`: see [scenes.md](scenes.md).',
  '',
];
writeFileSync(join(root, 'docs', 'bench', 'studio.md'), lines.join('\n'));
console.log(lines.join('\n'));

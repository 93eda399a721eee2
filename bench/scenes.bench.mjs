// Scenes benchmark: the compositor's cost per frame (median and p95, timed in the encode worker)
// for the picture-in-picture scene with a logo and a lower third, and the browser's CPU in that
// scene against the plain camera scene (frames passed through, nothing composed), alternated in
// one live session so both see the same load. 720p30 and 1080p30. Run after `npm run build`:
// node bench/scenes.bench.mjs [--seconds N] [--rounds N]. Writes docs/bench/scenes.md.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { browserPidOf, CLK_TCK, machine, root, startBridge, treeTicksOf } from './support.mjs';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '25' }, rounds: { type: 'string', default: '2' } } });
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const WARMUP_S = 3;
const PRESETS = ['720p30 · 2.5 Mbps', '1080p30 · 4.5 Mbps'];
/** The encode worker's cost window (COST_SAMPLES in encode-session.ts). */
const COMPOSE_SAMPLES = 600;

async function counters(page) {
  const dropped = await page.locator('[data-stat="frames-dropped"]').evaluate((e) => ({ ...e.dataset }));
  const compose = page.locator('[data-stat="compose-ms"]');
  const has = (await compose.count()) > 0;
  return {
    dropped: Number(dropped.late) + Number(dropped.encoder) + Number(dropped.backlog),
    encoded: Number(await page.locator('[data-stat="frames-encoded"]').textContent()),
    composed: has ? Number(await compose.getAttribute('data-frames')) : 0,
    composeMedian: has ? Number(await compose.getAttribute('data-median')) : NaN,
    composeP95: has ? Number(await compose.getAttribute('data-p95')) : NaN,
  };
}

/** Sets the scene and both overlays, and (live) waits for the worker to confirm. */
async function program(page, scene, overlays, live = true) {
  await page.locator(`button[data-scene="${scene}"]`).click();
  const logo = page.getByLabel('Show logo');
  if ((await logo.isChecked()) !== overlays) await logo.click();
  const lowerThird = page.getByRole('button', { name: overlays ? 'Show lower third' : 'Hide lower third' });
  if ((await lowerThird.count()) > 0) await lowerThird.click();
  if (live) await page.locator(`[data-scene-on-air="${scene}"]`).waitFor({ state: 'attached', timeout: 10_000 });
}

async function measure(page, pid) {
  const before = { ticks: treeTicksOf(pid), at: performance.now(), c: await counters(page), load: loadavg()[0] };
  await page.waitForTimeout(SECONDS * 1000);
  const after = { ticks: treeTicksOf(pid), at: performance.now(), c: await counters(page), load: loadavg()[0] };
  const seconds = (after.at - before.at) / 1000;
  return {
    cpu: ((after.ticks - before.ticks) / CLK_TCK / seconds) * 100,
    dropped: after.c.dropped - before.c.dropped,
    encoded: after.c.encoded - before.c.encoded,
    composed: after.c.composed - before.c.composed,
    composeMedian: after.c.composeMedian,
    composeP95: after.c.composeP95,
    load: (before.load + after.load) / 2,
  };
}

async function preset(label, bridge, logoFile) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'onair-bench-scenes-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--use-fake-device-for-media-stream=fps=30', '--use-fake-ui-for-media-stream', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(bridge.url);
    await page.getByRole('button', { name: 'Go live' }).waitFor();
    const pid = browserPidOf(userDataDir);
    await page.getByLabel('Quality').selectOption({ label });
    await page.getByLabel('Logo image').setInputFiles(logoFile);
    await page.getByLabel('Name', { exact: true }).fill('Ada Lovelace');
    await page.getByLabel('Title', { exact: true }).fill('Host');
    await page.getByRole('button', { name: 'Share screen' }).click();
    await page.getByRole('button', { name: 'Stop sharing screen' }).waitFor();
    await program(page, 'camera', false, false);
    await page.getByRole('button', { name: 'Go live' }).click();
    await page.locator('.status[data-state="live"]').first().waitFor({ timeout: 30_000 });
    await page.waitForTimeout(WARMUP_S * 1000);
    const rows = [];
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [scene, overlays, name] of [['camera', false, 'camera'], ['pip', true, 'screen + camera, logo, lower third']]) {
        await program(page, scene, overlays);
        await page.waitForTimeout(1000);
        const m = await measure(page, pid);
        const row = { preset: label, round, scene: name, ...m };
        console.log(JSON.stringify(row));
        rows.push(row);
      }
    }
    await page.getByRole('button', { name: 'End stream' }).click();
    await page.getByRole('button', { name: 'Go live' }).waitFor({ timeout: 15_000 });
    return { rows, version: context.browser()?.version() ?? '' };
  } finally {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}


const scratch = mkdtempSync(join(tmpdir(), 'onair-bench-logo-'));
const logoFile = join(scratch, 'logo.png');
spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=s=256x256', '-frames:v', '1', '-y', logoFile], { stdio: 'inherit' });
const bridge = await startBridge();
const results = [];
let version = '';
try {
  for (const label of PRESETS) {
    const r = await preset(label, bridge, logoFile);
    results.push(...r.rows);
    version = r.version;
  }
} finally {
  await bridge.stop();
  rmSync(scratch, { recursive: true, force: true });
}

/** The worker's figures cover its last 600 composed frames: only a window that composed that many has figures of its own. */
function composeCell(r) {
  if (r.composed < COMPOSE_SAMPLES) return `${r.composed} of ${r.encoded} frames composed (the others passed through or reused the canvas)`;
  const why = r.scene === 'camera' ? ', the camera scaled to the preset' : '';
  return `${f2(r.composeMedian)} / ${f2(r.composeP95)} (${r.composed} composed${why})`;
}

const f1 = (n) => (Number.isFinite(n) ? n.toFixed(1) : '—');
const f2 = (n) => (Number.isFinite(n) ? n.toFixed(2) : '—');
const lines = [
  '# Scenes benchmark',
  '',
  `Run by \`node bench/scenes.bench.mjs\` (${SECONDS} s per window, ${ROUNDS} rounds, after ${WARMUP_S} s of warm-up): ${machine()}; headless Chromium ${version}.`,
  "Sources: Chromium's fake camera at 30 fps and its fake screen (I420 frames), fake microphone; a 256×256 logo; destination: the embedded RTMP server.",
  'The two scenes alternate in one live session, so each pair of rows saw about the same load from',
  'the rest of the machine (its 1-minute load average is in the last column).',
  '',
  '| preset | round | scene | compose per frame: median / p95 (ms) | browser CPU (% of one core) | frames encoded | frames dropped | load |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...results.map((r) => `| ${r.preset} | ${r.round} | ${r.scene} | ${composeCell(r)} | ${f1(r.cpu)} | ${r.encoded} | ${r.dropped} | ${f1(r.load)} |`),
  '',
  'How it is measured: the encode worker times each composed frame from the first drawing call to',
  'the `VideoFrame` made of the canvas (median and p95 over its last 600 composed frames: shown for',
  'a window that composed at least that many); in the camera scene with no overlay the frame passes',
  'through and nothing is composed, except where the camera is scaled to the preset (1080p from',
  "the fake camera's 720p); an output frame that no source renewed reuses the canvas. CPU is",
  'utime + stime of the browser process and its descendants from /proc over the window. Frames',
  'dropped: late, encoder busy or link backed up, counted by the worker.',
  '',
];
writeFileSync(join(root, 'docs', 'bench', 'scenes.md'), lines.join('\n'));
console.log(lines.join('\n'));

/* global document, window, performance, MediaSource, fetch -- the functions passed to page.evaluate run in the browser; fetch is Node's */
// Watch soak: the studio (headless Chromium, fake camera and microphone, Measure latency ticked)
// goes live to the embedded server (or nginx-rtmp with --via nginx) for an hour while a watch
// page, in a second Chromium, plays it. Every 10 s: the live-edge lag (glass-to-glass, read by the
// watch page's own meter from the clock code the studio draws), the player's buffer, the gap
// between the audio and video SourceBuffers' buffered ends, decoded and dropped frames, the
// memory of the bridge, of the embedded server and of both browsers. The first 5 minutes are set
// beside the last 5: nothing should drift.
// Run after `npm run build`: node bench/soak.bench.mjs [--minutes 60] [--via local|nginx]
// Writes docs/bench/soak.md; every sample goes to node_modules/.cache/onair-soak-samples.json, and
// `--report` writes the doc again from that file (the first and the last 5 minutes are compared).
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance as clock } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { CHROMIUM_FLAGS, CLK_TCK, loadAverage, loadHarness, machine, median, mib, percentile, root, rssOf, startBridge, ticksOf, treePss } from './support.mjs';

const { values } = parseArgs({ options: { minutes: { type: 'string', default: '60' }, via: { type: 'string', default: 'local' }, sample: { type: 'string', default: '10' }, report: { type: 'boolean', default: false } } });
const MINUTES = Number(values.minutes);
const SAMPLE_S = Number(values.sample);
const VIA = values.via;
if (VIA !== 'local' && VIA !== 'nginx') throw new Error('--via is local or nginx');
const DOC = join(root, 'docs', 'bench', 'soak.md');
const SAMPLES_JSON = join(root, 'node_modules', '.cache', 'onair-soak-samples.json');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));


/** A headless Chromium of its own (so its processes can be told apart), and its main pid. */
async function launch(extraArgs) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'onair-soak-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [...CHROMIUM_FLAGS, ...extraArgs],
  });
  let pid;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (cmd.includes(`--user-data-dir=${userDataDir}`) && !cmd.includes('--type=')) pid = Number(name);
    } catch {
      // Gone.
    }
  }
  if (pid === undefined) throw new Error('browser process not found');
  return {
    context,
    pid,
    close: async () => {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

// Keeps every SourceBuffer the page makes, with its MIME type, for the A/V gap.
const keepSourceBuffers = () => {
  const add = MediaSource.prototype.addSourceBuffer;
  window.soakSourceBuffers = [];
  window.soakMediaSources = new Set();
  MediaSource.prototype.addSourceBuffer = function (type) {
    const sb = add.call(this, type);
    window.soakSourceBuffers.push({ type, sb });
    window.soakMediaSources.add(this);
    return sb;
  };
};

/** What the watch page shows and holds now. */
const readWatch = () => {
  const video = document.querySelector('video');
  const meter = document.querySelector('[data-stat="glass-to-glass"]');
  const end = (ranges) => (ranges.length === 0 ? undefined : ranges.end(ranges.length - 1));
  // The newest MediaSource's buffers (the player makes a new one when it starts over).
  const sbs = window.soakSourceBuffers.slice(-2);
  const track = (kind) => {
    const entry = sbs.find((s) => s.type.startsWith(kind));
    try {
      return entry === undefined ? undefined : end(entry.sb.buffered);
    } catch {
      return undefined; // removed from its MediaSource
    }
  };
  const audioEnd = track('audio');
  const videoEnd = track('video');
  const q = video.getVideoPlaybackQuality();
  const stats = {};
  const dts = document.querySelectorAll('.stats dt');
  for (const dt of dts) stats[dt.textContent.trim()] = dt.nextElementSibling?.textContent.trim() ?? '';
  const bufferedEnd = end(video.buffered);
  // The player's own aim: the buffer it steers to, from the arrival jitter it measures.
  const target = document.querySelector('[data-stat="target"]');
  const ms = (v) => (v === undefined || v === '' ? undefined : Number(v) * 1000);
  return {
    targetMs: ms(target?.dataset.target),
    jitterMs: ms(target?.dataset.jitter),
    glassP50: meter === null ? undefined : Number(meter.dataset.p50),
    glassLast: meter === null || meter.dataset.last === undefined ? undefined : Number(meter.dataset.last),
    bufferMs: bufferedEnd === undefined ? undefined : (bufferedEnd - video.currentTime) * 1000,
    avMs: audioEnd === undefined || videoEnd === undefined ? undefined : (audioEnd - videoEnd) * 1000,
    mediaSources: window.soakMediaSources.size,
    decoded: q.totalVideoFrames,
    dropped: q.droppedVideoFrames,
    paused: video.paused,
    seeking: video.seeking,
    currentTime: video.currentTime,
    readyState: video.readyState,
    playbackRate: video.playbackRate,
    ranges: Array.from({ length: video.buffered.length }, (_, i) => [video.buffered.start(i), video.buffered.end(i)]),
    trackRanges: sbs.map((s) => {
      try {
        return [s.type.split(';')[0], Array.from({ length: s.sb.buffered.length }, (_, i) => [s.sb.buffered.start(i), s.sb.buffered.end(i)])];
      } catch {
        return [s.type, 'removed'];
      }
    }),
    error: video.error?.message,
    heap: performance.memory?.usedJSHeapSize,
    status: document.querySelector('.status')?.textContent.trim() ?? '',
    jumpsStalls: stats['Jumps / stalls'],
    reconnects: stats.Reconnects,
  };
};

const readStudio = () => {
  const text = (name) => document.querySelector(`[data-stat="${name}"]`)?.textContent.trim() ?? '';
  return {
    fps: text('fps'),
    bitrate: text('bitrate'),
    framesDropped: parseInt(text('frames-dropped'), 10),
    droppedWhy: document.querySelector('[data-stat="frames-dropped"]')?.textContent.trim().replace(/\s+/g, ' '),
    framesEncoded: Number(text('frames-encoded')),
    reconnects: Number(text('reconnects')),
    live: document.querySelectorAll('.status[data-state="live"]').length,
    heap: performance.memory?.usedJSHeapSize,
  };
};

const fmt = (n, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '–');

const stats = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p95: percentile(s, 95), min: s[0], max: s[s.length - 1] };
};

async function run() {
  const loadAtStart = loadAverage();
  console.log(`load average at start: ${loadAtStart}; soak for ${MINUTES} min via ${VIA}`);
  const { startNginxRtmp } = await loadHarness();
  const nginx = VIA === 'nginx' ? await startNginxRtmp({ record: false }) : undefined;
  const bridge = await startBridge();
  const studioBrowser = await launch(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']);
  let watchBrowser;
  try {
    const studio = studioBrowser.context.pages()[0] ?? (await studioBrowser.context.newPage());
    studio.on('pageerror', (e) => console.error(`studio: ${e.message}`));
    // Generous: other people's jobs on this machine can slow a page load to tens of seconds.
    studio.setDefaultTimeout(120_000);
    await studio.goto(bridge.url);
    const localUrl = studio.getByLabel('Server URL', { exact: true }).first();
    await studio.waitForFunction((el) => el.value.startsWith('rtmp://127.0.0.1:'), await localUrl.elementHandle(), { timeout: 120_000 });
    if (nginx !== undefined) {
      const server = nginx.url('live', 'soak').replace(/\/[^/]+$/, '');
      await studio.getByRole('button', { name: 'Add destination' }).click();
      await studio.getByLabel('Server URL', { exact: true }).nth(1).fill(server);
      await studio.getByLabel('Stream key', { exact: true }).nth(1).fill('soak');
    }
    await studio.getByLabel('Measure latency').check();
    await studio.getByRole('button', { name: 'Go live' }).click();
    const destinations = nginx === undefined ? 1 : 2;
    await studio.waitForFunction((n) => document.querySelectorAll('.status[data-state="live"]').length === n, destinations, { timeout: 120_000 });
    const href = await studio.getByRole('link', { name: /^\/watch\// }).first().getAttribute('href');
    const watchUrl = nginx === undefined ? new URL(href, bridge.url).toString() : new URL(`/watch?src=${encodeURIComponent(nginx.url('live', 'soak'))}`, bridge.url).toString();

    watchBrowser = await launch([]);
    const watch = watchBrowser.context.pages()[0] ?? (await watchBrowser.context.newPage());
    watch.on('pageerror', (e) => console.error(`watch: ${e.message}`));
    watch.setDefaultTimeout(120_000);
    await watch.addInitScript(keepSourceBuffers);
    await watch.goto(watchUrl);
    await watch.locator('[data-stat="glass-to-glass"]').waitFor({ timeout: 120_000 });
    // The meter's median covers ~5 s: let it fill with this page's own readings.
    await sleep(6000);
    const metrics = async () => (await fetch(new URL('/metrics.json', bridge.url))).json();
    const localPid = (await metrics()).localRtmp?.pid;
    console.log(`live via ${VIA}, watching ${watchUrl.replace(/live\/[^/?]+$/, 'live/***')}; sampling every ${SAMPLE_S} s for ${MINUTES} min`);

    const samples = [];
    const t0 = clock.now();
    for (let t = 0; t <= MINUTES * 60; t += SAMPLE_S) {
      await sleep(t0 + t * 1000 - clock.now());
      const [w, s] = await Promise.all([watch.evaluate(readWatch), studio.evaluate(readStudio)]);
      const row = {
        t,
        at: clock.now(),
        ...w,
        studio: s,
        bridgeRss: rssOf(bridge.pid),
        bridgeTicks: ticksOf(bridge.pid),
        localRss: localPid === undefined ? NaN : rssOf(localPid),
        studioPss: treePss(studioBrowser.pid),
        watchPss: treePss(watchBrowser.pid),
        load: loadAverage(),
      };
      samples.push(row);
      const prev = samples[samples.length - 2];
      row.frozen = prev !== undefined && prev.decoded === row.decoded;
      if (row.frozen && !prev.frozen) {
        console.log(`${fmt(t)} s: no frame decoded since the last sample: currentTime ${w.currentTime}, readyState ${w.readyState}, seeking ${w.seeking}, ranges ${JSON.stringify(w.trackRanges)}`);
      }
      if (t % 60 === 0) {
        // Kept as the run goes, so that a run cut short leaves its samples.
        writeFileSync(SAMPLES_JSON, JSON.stringify({ meta: { minutes: MINUTES, sampleS: SAMPLE_S, via: VIA, loadAtStart }, samples }));
        console.log(
          `${fmt(t / 60)} min: glass-to-glass p50 ${w.glassP50} last ${w.glassLast} ms, buffer ${fmt(w.bufferMs)} ms (target ${fmt(w.targetMs)}, jitter ${fmt(w.jitterMs)}), A/V ${fmt(w.avMs)} ms, dropped ${w.dropped}/${w.decoded}, bridge ${mib(row.bridgeRss)} MiB, watch browser ${mib(row.watchPss)} MiB, studio browser ${mib(row.studioPss)} MiB, studio ${s.fps} dropped ${s.droppedWhy}, load ${row.load}${row.frozen ? ', PLAYBACK STANDS STILL' : ''}`,
        );
      }
    }
    const finalMetrics = await metrics();
    const meta = {
      minutes: MINUTES,
      sampleS: SAMPLE_S,
      via: VIA,
      machine: machine(),
      loadAtStart,
      loadAtEnd: loadAverage(),
      localServer: localPid !== undefined,
      stream: finalMetrics.streams?.find((x) => x.viewers.ws > 0),
    };
    writeFileSync(SAMPLES_JSON, JSON.stringify({ meta, samples }));

    await studio.getByRole('button', { name: 'End stream' }).click();
    await studio.getByRole('button', { name: 'Go live' }).waitFor({ timeout: 60_000 });
    return { meta, samples };
  } finally {
    await watchBrowser?.close();
    await studioBrowser.close();
    await bridge.stop();
    await nginx?.dispose();
  }
}

/** Writes docs/bench/soak.md from a run's samples. */
function report({ meta, samples }) {
  const WINDOW_MIN = Math.min(5, meta.minutes / 2);
  const end = samples[samples.length - 1];
  const wall = (end.at - samples[0].at) / 1000;
  const bridgeCpu = ((end.bridgeTicks - samples[0].bridgeTicks) / CLK_TCK / wall) * 100;
  const first = samples.filter((s) => s.t < WINDOW_MIN * 60);
  const last = samples.filter((s) => s.t > (meta.minutes - WINDOW_MIN) * 60);
  // Frames over a window: from the sample before it to its last.
  const frames = (win) => {
    const before = samples[samples.indexOf(win[0]) - 1] ?? win[0];
    const after = win[win.length - 1];
    return { decoded: after.decoded - before.decoded, dropped: after.dropped - before.dropped, studioDropped: after.studio.framesDropped - before.studio.framesDropped };
  };
  const measures = [
    { name: 'glass-to-glass, meter median (ms)', pick: (s) => s.glassP50, unit: 'ms', tolerance: (a) => Math.max(50, 0.2 * a) },
    { name: 'glass-to-glass, latest reading (ms)', pick: (s) => s.glassLast, unit: 'ms', tolerance: (a) => Math.max(50, 0.2 * a) },
    { name: 'buffer: buffered end − playhead (ms)', pick: (s) => s.bufferMs, unit: 'ms', tolerance: (a) => Math.max(50, 0.2 * a) },
    { name: 'A/V: audio − video buffered end (ms)', pick: (s) => s.avMs, unit: 'ms', tolerance: () => 50 },
    { name: 'bridge RSS (MiB)', pick: (s) => s.bridgeRss / 2 ** 20, unit: 'MiB', tolerance: (a) => Math.max(10, 0.1 * a) },
    ...(meta.localServer ? [{ name: 'embedded RTMP server RSS (MiB)', pick: (s) => s.localRss / 2 ** 20, unit: 'MiB', tolerance: (a) => Math.max(10, 0.1 * a) }] : []),
    { name: 'watch browser PSS (MiB)', pick: (s) => s.watchPss / 2 ** 20, unit: 'MiB', tolerance: (a) => Math.max(20, 0.1 * a) },
    { name: 'studio browser PSS (MiB)', pick: (s) => s.studioPss / 2 ** 20, unit: 'MiB', tolerance: (a) => Math.max(20, 0.1 * a) },
    { name: 'watch page JS heap (MiB)', pick: (s) => s.heap / 2 ** 20, unit: 'MiB', tolerance: (a) => Math.max(5, 0.2 * a) },
    { name: 'studio page JS heap (MiB)', pick: (s) => s.studio.heap / 2 ** 20, unit: 'MiB', tolerance: (a) => Math.max(5, 0.2 * a) },
  ];
  const drift = [];
  const rows = measures.map((m) => {
    const a = stats(first.map(m.pick));
    const b = stats(last.map(m.pick));
    const d = b.p50 - a.p50;
    const flat = Math.abs(d) <= m.tolerance(Math.abs(a.p50));
    if (!flat) drift.push(`${m.name}: median ${fmt(a.p50, 1)} → ${fmt(b.p50, 1)} ${m.unit} (${d > 0 ? 'higher' : 'lower'} at the end)`);
    return `| ${m.name} | ${fmt(a.p50, 1)} / ${fmt(a.p95, 1)} | ${fmt(b.p50, 1)} / ${fmt(b.p95, 1)} | ${d >= 0 ? '+' : ''}${fmt(d, 1)} | ±${fmt(m.tolerance(Math.abs(a.p50)), 0)} | ${flat ? 'flat' : d > 0 ? '**drifted up**' : '**drifted down**'} |`;
  });
  const f1 = frames(first);
  const f2 = frames(last);
  const whole = { decoded: end.decoded - samples[0].decoded, dropped: end.dropped - samples[0].dropped, studioDropped: end.studio.framesDropped - samples[0].studio.framesDropped };
  const droppedDrift = f2.dropped > f1.dropped + 5;
  if (droppedDrift) drift.push(`frames dropped by the watch page: ${f1.dropped} in the first ${WINDOW_MIN} min, ${f2.dropped} in the last`);
  const missing = samples.filter((s) => s.glassP50 === undefined).length;
  if (missing > 0) drift.push(`${missing} samples found no glass-to-glass reading`);
  // A sample in which the page decoded no new frame: playback stood still for 10 s.
  const frozenRows = samples.filter((s) => s.frozen);
  const frozen = frozenRows.map((s) => s.t);
  if (frozen.length > 0) drift.push(`playback stood still (no frame decoded in ${meta.sampleS} s) in ${frozen.length} samples, from ${fmt(frozen[0] / 60, 1)} min`);
  const stream = meta.stream;

  // Per 5 minutes, to see the shape between the two ends.
  const buckets = [];
  for (let m = 0; m < meta.minutes; m += 5) {
    const win = samples.filter((s) => s.t >= m * 60 && s.t < (m + 5) * 60 + (m + 5 >= meta.minutes ? 1 : 0));
    if (win.length === 0) continue;
    const fr = frames(win);
    const g = stats(win.map((s) => s.glassP50));
    const buf = stats(win.map((s) => s.bufferMs));
    const av = stats(win.map((s) => s.avMs));
    const lastRow = win[win.length - 1];
    buckets.push(
      `| ${m}–${Math.min(m + 5, meta.minutes)} | ${fmt(g.p50)} / ${fmt(g.p95)} | ${fmt(buf.p50)} / ${fmt(buf.p95)} | ${fmt(av.p50)} (${fmt(av.min)} … ${fmt(av.max)}) | ${fr.decoded} / ${fr.dropped} | ${fr.studioDropped} | ${mib(lastRow.bridgeRss)} | ${mib(lastRow.localRss)} | ${mib(lastRow.watchPss)} | ${mib(lastRow.studioPss)} | ${lastRow.load.split(',')[0]} |`,
    );
  }
  const load = (win) => median(win.map((s) => Number(s.load.split(',')[0])));
  const loads = `The 1-minute load average (median of the samples) was ${load(first).toFixed(1)} over the first ${WINDOW_MIN} min and ${load(last).toFixed(1)} over the last.`;
  const verdict =
    drift.length === 0
      ? `**Flat.** Every measure's last-${WINDOW_MIN}-minute median is within its tolerance of the first ${WINDOW_MIN} minutes', and the watch page dropped no more frames at the end than at the start.`
      : `**Not flat.** ${drift.join('; ')}.`;
  console.log(verdict);

  const doc = `# Watch soak

Run by \`node bench/soak.bench.mjs\` (\`npm run bench -- soak\`): ${meta.minutes} min, sampled every
${meta.sampleS} s. ${meta.machine}; loopback. The machine is shared with other engineers' test runs:
**load average ${meta.loadAtStart} at the start, ${meta.loadAtEnd} at the end** (1, 5, 15 min). A figure
that moves with the load is noise, not drift: the per-5-minute table shows the load beside it.

## Set-up

- **Studio**: the studio page in headless Chromium (Debian build) with Chromium's fake camera and
  microphone, **Measure latency** ticked, the default 720p30 2.5 Mbps preset, live to
  ${meta.via === 'local' ? 'the embedded server (node-media-server, started by `onair serve`)' : 'nginx-rtmp (and the embedded server, as the page pre-fills it)'}.
- **Watch page**: in a second headless Chromium, playing ${meta.via === 'local' ? '`/watch/live/<key>` (the embedded server, through the bridge)' : '`/watch?src=rtmp://…nginx…` (through the bridge)'}.
- **Bridge**: one \`onair serve\`, the real CLI process.

## First ${WINDOW_MIN} min against last ${WINDOW_MIN} min

Median / p95 of the samples in each window. "Flat" means the last window's median is within the
tolerance of the first's; the tolerances are stated so the verdict can be argued with.

| measure | first ${WINDOW_MIN} min (median / p95) | last ${WINDOW_MIN} min (median / p95) | change of median | tolerance | |
| --- | --- | --- | --- | --- | --- |
${rows.join('\n')}
| frames decoded / dropped by the watch page | ${f1.decoded} / ${f1.dropped} | ${f2.decoded} / ${f2.dropped} | | | ${droppedDrift ? '**more drops**' : ''} |
| frames dropped by the studio (its stats) | ${f1.studioDropped} | ${f2.studioDropped} | | | |

${verdict} ${loads}

Samples in which the watch page decoded no new frame: ${frozen.length === 0 ? 'none' : `${frozen.length} (at ${frozen.slice(0, 10).map((t) => `${fmt(t / 60, 1)}`).join(', ')}${frozen.length > 10 ? ', …' : ''} min)`}.${
    frozenRows.length === 0
      ? ''
      : ` The first of them: \`currentTime\` ${frozenRows[0].currentTime.toFixed(3)}, \`readyState\` ${frozenRows[0].readyState}, \`seeking\` ${frozenRows[0].seeking}, \`paused\` ${frozenRows[0].paused}; buffered ranges per SourceBuffer (s): ${frozenRows[0].trackRanges.map(([kind, ranges]) => `${kind} ${Array.isArray(ranges) ? ranges.map(([a, b]) => `${a.toFixed(2)}–${b.toFixed(2)}`).join(', ') : ranges}`).join('; ')}.`
  }
Whole run: the watch page decoded ${whole.decoded} frames and dropped ${whole.dropped}; the studio dropped
${whole.studioDropped} (of ${end.studio.framesEncoded} encoded); the studio page reconnected to the bridge ${end.studio.reconnects} times; the watch page's
jumps / stalls ${end.jumpsStalls ?? '–'}, reconnects ${end.reconnects ?? '–'}, MediaSources ${end.mediaSources}.
Bridge CPU ${fmt(bridgeCpu, 1)} % of one core over the run. The bridge's relay at the end: ${stream === undefined ? 'gone' : `${stream.droppedTags} tags dropped, ${stream.skips} skips, ${(stream.bytesOut / 1e9).toFixed(2)} GB out`}.

## Every 5 minutes

| min | glass-to-glass (ms, median / p95) | buffer (ms, median / p95) | A/V (ms, median (min … max)) | frames decoded / dropped (watch) | frames dropped (studio) | bridge RSS (MiB) | embedded server RSS (MiB) | watch browser PSS (MiB) | studio browser PSS (MiB) | load (1 min) |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${buckets.join('\n')}

Memory columns are the window's last sample.

## What is measured

- **Live-edge lag**: glass-to-glass from the clock code the studio draws into every frame
  (docs/studio.md, "Measuring latency"), as the watch page's own meter shows it: the
  \`data-p50\` (median of its reads over ~5 s) and \`data-last\` attributes of
  \`[data-stat="glass-to-glass"]\`, read every ${meta.sampleS} s. Both pages run on one machine clock.
- **Buffer**: \`video.buffered\` end − \`currentTime\`: how far the playhead runs behind the newest
  media the page holds.
- **A/V**: the end of the audio SourceBuffer's last buffered range minus the video
  SourceBuffer's (the page's \`addSourceBuffer\` calls are observed by an init script). Both tracks
  are on one timeline, so this is how far the newest audio reaches past the newest video. It
  moves by up to a frame either way as tags arrive (AAC frames are 21 ms, video 33 ms); a studio
  whose audio clock drifted from its video clock would make it drift without bound.
- **Frames**: \`getVideoPlaybackQuality()\` of the watch page (the decoder's counters); the
  studio's own frames-dropped stat.
- **Memory**: the bridge's and the embedded server's \`VmRSS\`; for each browser, the PSS of all
  its processes from /proc/<pid>/smaps_rollup (a sum of RSS would count shared pages once per
  process); the pages' \`performance.memory.usedJSHeapSize\`.
- Every sample: \`node_modules/.cache/onair-soak-samples.json\` after a run.
`;
  writeFileSync(DOC, doc);
  console.log(`wrote ${DOC}`);
}

if (values.report) report(JSON.parse(readFileSync(SAMPLES_JSON, 'utf8')));
else report(await run());

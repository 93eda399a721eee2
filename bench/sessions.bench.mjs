// Many studio sessions through one bridge: N simulated studio pages (the harness's StudioClient,
// Node) push the 60 s 720p30 fixture (~2.6 Mbps), looped with continuous timestamps, over the
// studio WebSocket in real time, through one `onair serve` (the real CLI process) to one
// nginx-rtmp, one stream each, for M minutes. Reports what went wrong (session errors, a
// destination not live, tags the bridge dropped), the bridge's RSS every 30 s, its CPU per
// session, bytes relayed, what nginx received and what nginx itself cost, and decodes a few of the
// streams back from nginx with ffmpeg as the judge that they are whole.
// Run after `npm run build`: node bench/sessions.bench.mjs [--sessions 50] [--minutes 10] [--record]
// Writes docs/bench/sessions.md.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { clearInterval, setInterval } from 'node:timers';
import { parseArgs } from 'node:util';
import { FlvReader, TagKind, flvTag, tagKind } from '@onair/shared';
import { CLK_TCK, loadAverage, loadHarness, loadStudioClient, machine, median, mib, percentile, root, rssOf, startBridge, ticksOf } from './support.mjs';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '50' },
    minutes: { type: 'string', default: '10' },
    record: { type: 'boolean', default: false },
    sample: { type: 'string', default: '30' },
  },
});
const SESSIONS = Number(values.sessions);
const MINUTES = Number(values.minutes);
const SAMPLE_S = Number(values.sample);
const RECORD = values.record;
// The sender runs every TICK_MS and sends every tag that is due.
const TICK_MS = 5;
// Decoded back from nginx at the end, each for this long.
const JUDGED_STREAMS = 3;
const JUDGE_S = 6;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const DOC = join(root, 'docs', 'bench', 'sessions.md');
const SAMPLES_JSON = join(root, 'node_modules', '.cache', 'onair-sessions-samples.json');

/** The fixture as tags: the headers (metadata, sequence headers) and the media after them. */
function readFixture(file) {
  const tags = new FlvReader().push(readFileSync(file));
  const headers = [];
  const media = [];
  for (const tag of tags) {
    const kind = tagKind(tag);
    if (media.length === 0 && (kind === TagKind.Metadata || kind === TagKind.AudioConfig || kind === TagKind.VideoConfig)) headers.push({ ...tag, timestamp: 0 });
    else media.push(tag);
  }
  // One loop lasts until one frame interval after the later track's last tag, so each track's
  // timestamps keep rising by about one frame across the seam.
  const step = (type) => {
    const ts = media.filter((t) => t.type === type).map((t) => t.timestamp);
    return { last: ts[ts.length - 1], step: median(ts.slice(1).map((t, i) => t - ts[i])) };
  };
  const v = step(9);
  const a = step(8);
  const loopMs = Math.max(v.last + v.step, a.last + a.step);
  const bytes = media.reduce((n, t) => n + t.data.length, 0);
  return { headers, media, loopMs, mbps: (bytes * 8) / loopMs / 1000 };
}

/** Per stream in nginx's `rtmp_stat` XML: name, publishing, bytes and bits per second in. */
function nginxStreams(xml) {
  return xml
    .split('<stream>')
    .slice(1)
    .map((s) => {
      const body = s.split('</stream>')[0];
      const field = (name) => Number(new RegExp(`<${name}>(\\d+)</${name}>`).exec(body)?.[1] ?? NaN);
      return { name: /<name>([^<]*)<\/name>/.exec(body)?.[1], publishing: body.includes('<publishing/>'), bytesIn: field('bytes_in'), bwIn: field('bw_in') };
    });
}

/**
 * ffmpeg as the judge: decodes `seconds` of a live stream's video (30 fps) and audio (AAC frames
 * of 1024 samples at 48 kHz); the video frames decoded, the wall time it took and error lines.
 * Counted in frames, not with `-t`: nginx sends audio before the first keyframe, and ffmpeg's
 * output clock starts at the earliest packet of either track.
 */
function decode(url, seconds) {
  return new Promise((resolve) => {
    const args = ['-hide_banner', '-nostdin', '-v', 'error', '-rw_timeout', '15000000', '-i', url, '-progress', 'pipe:1'];
    args.push('-map', '0:v', '-frames:v', String(seconds * 30), '-f', 'null', '-', '-map', '0:a', '-frames:a', String(Math.ceil((seconds * 48_000) / 1024)), '-f', 'null', '-');
    const started = performance.now();
    const child = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 20) * 1000);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err = (err + d).slice(-2000)));
    child.once('error', (e) => resolve({ frames: 0, errors: e.message }));
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const frames = [...out.matchAll(/^frame=(\d+)$/gm)].map((m) => Number(m[1])).pop() ?? 0;
      resolve({ frames, seconds: (performance.now() - started) / 1000, errors: `${err.trim()}${code === 0 ? '' : ` (exit ${code ?? signal})`}` });
    });
  });
}

/**
 * One simulated studio page: a StudioClient started with one nginx destination, then fed by the
 * shared sender. Records what the bridge says: errors, a destination leaving `live`, drops.
 */
function watchSession(client, i, state) {
  const s = { i, client, live: false, notLive: [], errors: [], closed: undefined, dropped: 0, bytes: 0, received: 0, maxBuffered: 0 };
  client.ws.on('message', (data, binary) => {
    if (binary) return;
    const msg = JSON.parse(data.toString());
    if (msg.type === 'error') s.errors.push(`${msg.code}: ${msg.message}`);
    if (msg.type !== 'status') return;
    const d = msg.destinations[0];
    s.dropped = d.dropped;
    s.bytes = d.bytes;
    s.received = msg.received.bytes;
    if (d.state === 'live') s.live = true;
    else if (s.live && !state.stopping) s.notLive.push(`${d.state}${d.reason ? `: ${d.reason}` : ''}`);
  });
  client.ws.on('close', (code, reason) => {
    if (!state.stopping) s.closed = `${code} ${reason}`;
  });
  return s;
}

/**
 * Sends every session's tags on time from one timer: session i starts i / N of a keyframe
 * interval after the first, so their keyframes do not all fall in the same tick. Tracks how late
 * the sender ran (this process shares the cores with what it measures) and the sockets' backlog.
 */
function startSender(sessions, fixture, startAt) {
  let lateness = [];
  let interval = [];
  const runs = sessions.map((s, i) => ({ s, t0: startAt + (i * 2000) / sessions.length, next: 0, loop: 0, headersSent: false }));
  let maxLateMs = 0;
  let tags = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    for (const r of runs) {
      const ws = r.s.client.ws;
      if (now < r.t0 || ws.readyState !== ws.OPEN) continue;
      if (!r.headersSent) {
        for (const h of fixture.headers) ws.send(flvTag(h));
        r.headersSent = true;
      }
      for (;;) {
        const tag = fixture.media[r.next];
        const ts = tag.timestamp + r.loop * fixture.loopMs;
        const late = now - (r.t0 + ts);
        if (late < 0) break;
        ws.send(flvTag({ type: tag.type, timestamp: ts, data: tag.data }));
        tags++;
        if (late > maxLateMs) maxLateMs = late;
        if (tags % 97 === 0) {
          lateness.push(late);
          interval.push(late);
        }
        if (++r.next === fixture.media.length) {
          r.next = 0;
          r.loop++;
        }
      }
      if (ws.bufferedAmount > r.s.maxBuffered) r.s.maxBuffered = ws.bufferedAmount;
    }
  }, TICK_MS);
  return {
    stop: () => clearInterval(timer),
    /** Forgets the lateness so far (the start, while sessions connect). */
    reset: () => {
      lateness = [];
      interval = [];
      maxLateMs = 0;
    },
    /** The largest lateness sampled since the last call. */
    intervalMax: () => {
      const max = Math.max(0, ...interval);
      interval = [];
      return max;
    },
    stats: () => {
      const sorted = [...lateness].sort((a, b) => a - b);
      return { tags, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: maxLateMs };
    },
  };
}

async function main() {
  const fmt = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '–');
  const { startNginxRtmp, benchFlv } = await loadHarness();
  const StudioClient = await loadStudioClient();
  const fixture = readFixture(await benchFlv());
  const loadAtStart = loadAverage();
  console.log(`load average at start: ${loadAtStart}; ${SESSIONS} sessions for ${MINUTES} min, fixture ${fixture.mbps.toFixed(2)} Mbps, loop ${fixture.loopMs} ms`);

  // wait_key: a player (the judge) starts at a keyframe; publishers are not affected.
  const nginx = await startNginxRtmp({ record: RECORD, stat: true, liveDirectives: 'wait_key on;' });
  const bridge = await startBridge(['--no-local-rtmp', '--max-sessions', String(SESSIONS)]);
  const state = { stopping: false };
  const sessions = [];
  let sender;
  try {
    // Started one after another, as pages opened by different people would be.
    for (let i = 0; i < SESSIONS; i++) {
      const client = new StudioClient(bridge.port);
      await client.opened();
      const s = watchSession(client, i, state);
      sessions.push(s);
      await client.start([{ id: 'nginx', url: nginx.url('live', `s${i}`) }]);
    }
    sender = startSender(sessions, fixture, performance.now());
    const liveBy = Date.now() + 60_000;
    while (!sessions.every((s) => s.live)) {
      if (Date.now() > liveBy) throw new Error(`only ${sessions.filter((s) => s.live).length} of ${SESSIONS} destinations went live in 60 s\n${bridge.log()}`);
      await sleep(200);
    }
    // The last session's first keyframe left up to 2 s after the first's.
    await sleep(3000);
    console.log(`all ${SESSIONS} destinations live`);

    const samples = [];
    const sample = async (t) => {
      // The client keeps every message for its own waits; this run reads them as they come.
      for (const s of sessions) s.client.messages.length = 0;
      const streams = nginxStreams(await nginx.stat());
      const row = {
        t,
        at: performance.now(),
        rss: rssOf(bridge.pid),
        ticks: ticksOf(bridge.pid),
        nginxRss: rssOf(nginx.pid),
        nginxTicks: ticksOf(nginx.pid),
        cpu: process.cpuUsage(),
        relayed: sessions.reduce((n, s) => n + s.bytes, 0),
        received: sessions.reduce((n, s) => n + s.received, 0),
        publishing: streams.filter((x) => x.publishing).length,
        nginxBytesIn: streams.reduce((n, x) => n + x.bytesIn, 0),
        load: loadAverage(),
        lateMax: sender.intervalMax(),
      };
      const prev = samples[samples.length - 1];
      if (prev !== undefined) {
        const wall = (row.at - prev.at) / 1000;
        row.cpuPct = ((row.ticks - prev.ticks) / CLK_TCK / wall) * 100;
        row.nginxCpuPct = ((row.nginxTicks - prev.nginxTicks) / CLK_TCK / wall) * 100;
        row.mbps = ((row.relayed - prev.relayed) * 8) / wall / 1e6;
        row.benchPct = ((row.cpu.user + row.cpu.system - prev.cpu.user - prev.cpu.system) / 1e6 / wall) * 100;
      }
      samples.push(row);
      console.log(
        `${fmt(t / 60, 1)} min: bridge RSS ${mib(row.rss)} MiB, CPU ${fmt(row.cpuPct)} %, nginx ${fmt(row.nginxCpuPct)} %, ${fmt(row.mbps)} Mbps relayed, ${row.publishing} publishing on nginx, sender ${fmt(row.benchPct)} %, late up to ${fmt(row.lateMax, 0)} ms, load ${row.load}`,
      );
    };
    sender.reset();
    await sample(0);
    const start = samples[0];
    for (let t = SAMPLE_S; t <= MINUTES * 60; t += SAMPLE_S) {
      await sleep(start.at + t * 1000 - performance.now());
      await sample(t);
    }
    const end = samples[samples.length - 1];
    const lateness = sender.stats();
    const loadAtEnd = loadAverage();

    // The judge: a few streams decoded back from nginx while all of them still run.
    const judged = [];
    for (const i of [0, Math.floor(SESSIONS / 2), SESSIONS - 1].slice(0, Math.min(JUDGED_STREAMS, SESSIONS))) {
      judged.push({ name: `s${i}`, ...(await decode(nginx.url('live', `s${i}`), JUDGE_S)) });
    }
    const streams = nginxStreams(await nginx.stat());
    sender.stop();
    state.stopping = true;
    await Promise.all(sessions.map((s) => s.client.stop().catch((e) => s.errors.push(`stop: ${e.message}`))));
    for (const s of sessions) s.client.close();

    const wall = (end.at - start.at) / 1000;
    const bridgeCpu = ((end.ticks - start.ticks) / CLK_TCK / wall) * 100;
    const nginxCpu = ((end.nginxTicks - start.nginxTicks) / CLK_TCK / wall) * 100;
    const benchCpu = ((end.cpu.user + end.cpu.system - start.cpu.user - start.cpu.system) / 1e6 / wall) * 100;
    const dropped = sessions.reduce((n, s) => n + s.dropped, 0);
    const notLive = sessions.filter((s) => s.notLive.length > 0);
    const errored = sessions.filter((s) => s.errors.length > 0 || s.closed !== undefined);
    const relayed = end.relayed - start.relayed;
    const rssAfterWarmup = samples.filter((s) => s.t >= Math.min(60, MINUTES * 30));
    const lastFive = samples.filter((s) => s.t >= end.t - Math.min(300, MINUTES * 30));
    // Least-squares slope of the RSS after the first minute, MiB per minute.
    const slope = (() => {
      const xs = rssAfterWarmup.map((s) => s.t / 60);
      const ys = rssAfterWarmup.map((s) => s.rss / 2 ** 20);
      const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
      const my = ys.reduce((a, b) => a + b, 0) / ys.length;
      const num = xs.reduce((n, x, i) => n + (x - mx) * (ys[i] - my), 0);
      const den = xs.reduce((n, x) => n + (x - mx) ** 2, 0);
      return den === 0 ? NaN : num / den;
    })();
    const publishingAll = streams.filter((x) => x.name?.startsWith('s') && x.publishing).length;
    const bwIn = streams.reduce((n, x) => n + x.bwIn, 0) / 1e6;
    const problems = [
      ...errored.map((s) => `s${s.i}: ${[...s.errors, ...(s.closed ? [`socket closed ${s.closed}`] : [])].join('; ')}`),
      ...notLive.map((s) => `s${s.i} left live ${s.notLive.length}× (${[...new Set(s.notLive)].slice(0, 3).join('; ')})`),
    ];
    const judgedText = judged.map((j) => `${j.name}: ${j.frames} frames in ${j.seconds.toFixed(1)} s${j.errors ? `, ${j.errors.replace(/\s+/g, ' ').slice(0, 200)}` : ', no errors'}`).join('; ');
    console.log(
      `bridge CPU ${fmt(bridgeCpu)} % (${fmt(bridgeCpu / SESSIONS, 2)} % per session), RSS ${mib(start.rss)} → ${mib(end.rss)} MiB (${fmt(slope, 2)} MiB/min after the first minute), dropped ${dropped}, errors ${errored.length}, left live ${notLive.length}; nginx ${fmt(nginxCpu)} % with ${publishingAll} streams; judge ${judgedText}`,
    );

    const rows = samples
      .map((s) => `| ${fmt(s.t / 60, 1)} | ${mib(s.rss)} | ${fmt(s.cpuPct)} | ${fmt(s.mbps)} | ${mib(s.nginxRss)} | ${fmt(s.nginxCpuPct)} | ${s.publishing} | ${fmt(s.benchPct)} | ${s.t === 0 ? '–' : fmt(s.lateMax, 0)} | ${s.load} |`)
      .join('\n');
    const doc = `# Studio sessions benchmark

Run by \`node bench/sessions.bench.mjs\` (\`npm run bench -- sessions\`): ${SESSIONS} sessions for
${MINUTES} min. ${machine()}; loopback. The machine is shared with other engineers' test runs:
**load average ${loadAtStart} at the start, ${loadAtEnd} at the end** (1, 5, 15 min); treat a
figure that moves between runs as noise unless it moves far.

## Set-up

- **${SESSIONS} simulated studio pages**: the harness's \`StudioClient\` (Node, \`ws\`) speaking the
  studio protocol (version 2: \`start\`, numbered binary frames, acknowledgements, \`stop\`). Each
  pushes the 60 s fixture (H.264 720p30 with B-frames, ~2.5 Mbps, and AAC 48 kHz 128 kbps: ${fixture.mbps.toFixed(2)}
  Mbps in all), looped with continuous timestamps (every ${fixture.loopMs} ms), one tag per binary frame,
  each tag sent when its timestamp comes due (real time). Session *i* starts *i*/${SESSIONS} of a
  keyframe interval after the first, so the keyframes do not all arrive together. All pages run in
  the benchmark's process, one timer every ${TICK_MS} ms sending what is due.
- **One bridge**: \`onair serve --no-local-rtmp --max-sessions ${SESSIONS}\`, the real CLI process.
- **One nginx-rtmp** (\`master_process off\`, one process; \`record\` ${RECORD ? 'on' : 'off'}; \`wait_key on\` for the
  judge's players), one stream per session.
- Sampled every ${SAMPLE_S} s from the moment every destination was live (plus 3 s), for ${MINUTES} min (${wall.toFixed(0)} s).

## Results

| measure | value |
| --- | --- |
| sessions / destinations live at the start | ${sessions.filter((s) => s.live).length} / ${SESSIONS} |
| session errors (an \`error\` message or the socket closing before \`stop\`) | ${errored.length} |
| destinations that left \`live\` during the run | ${notLive.length} |
| tags dropped at the bridge (status \`dropped\`, all sessions) | ${dropped} |
| bridge RSS at the start (all live) → at the end | ${mib(start.rss)} → ${mib(end.rss)} MiB |
| bridge RSS after the first minute: least / most / last 5 min median | ${mib(Math.min(...rssAfterWarmup.map((s) => s.rss)))} / ${mib(Math.max(...rssAfterWarmup.map((s) => s.rss)))} / ${mib(median(lastFive.map((s) => s.rss)))} MiB |
| bridge RSS trend after the first minute (least squares) | ${fmt(slope, 2)} MiB per minute |
| bridge CPU, whole run | ${fmt(bridgeCpu)} % of one core |
| **bridge CPU per session** (CPU time / sessions / wall time) | **${fmt(bridgeCpu / SESSIONS, 2)} % of one core** |
| bytes relayed to nginx during the run (tag bodies, status \`bytes\`) | ${(relayed / 1e9).toFixed(2)} GB (${fmt((relayed * 8) / wall / 1e6)} Mbps, ${fmt((relayed * 8) / wall / 1e6 / SESSIONS, 2)} per session) |
| bytes the bridge received from the pages during the run (status \`received\`) | ${((end.received - start.received) / 1e9).toFixed(2)} GB |
| nginx: streams publishing at the end (\`rtmp_stat\`) | ${publishingAll} of ${SESSIONS} (${fmt(bwIn)} Mbps in, by its own meter) |
| nginx: bytes received over the whole run (\`bytes_in\`, all streams) | ${(streams.reduce((n, x) => n + x.bytesIn, 0) / 1e9).toFixed(2)} GB |
| nginx CPU (itself, \`record\` ${RECORD ? 'on' : 'off'}) | ${fmt(nginxCpu)} % of one core; RSS ${mib(start.nginxRss)} → ${mib(end.nginxRss)} MiB |
| bridge CPU / nginx CPU for the same streams | ${fmt(bridgeCpu / nginxCpu)}× (nginx only reads RTMP; the bridge reads WebSocket frames, checks each FLV tag and writes RTMP) |
| the simulated pages (this process: ws masking and sending) | ${fmt(benchCpu)} % of one core |
| sender lateness (tag sent after its due time), p50 / p99 / max | ${fmt(lateness.p50)} / ${fmt(lateness.p99)} / ${fmt(lateness.max)} ms |
| largest page-side socket backlog (\`bufferedAmount\`) | ${mib(Math.max(...sessions.map((s) => s.maxBuffered)))} MiB |
| the judge: ${judged.length} streams decoded back from nginx by ffmpeg at the end, ${JUDGE_S * 30} video frames each (wall time includes the wait for a keyframe) | ${judgedText} |

What nginx itself costs: the row above, for \`record\` ${RECORD ? 'on' : 'off'}. Run with \`--record\` to have nginx
also write every stream to disk, as a server that records would.

${problems.length === 0 ? 'Nothing went wrong: no session error, no destination left `live`, no tag dropped.' : `What went wrong:\n\n${problems.map((p) => `- ${p}`).join('\n')}`}

## Every ${SAMPLE_S} s

CPU columns are % of one core over the interval before the row; Mbps is what the bridge wrote
to nginx over it.

| min | bridge RSS (MiB) | bridge CPU % | Mbps relayed | nginx RSS (MiB) | nginx CPU % | streams publishing on nginx | pages' CPU % | pages' lateness, max sampled (ms) | load average |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows}

## How it is measured

- Errors come from the bridge's own messages to each page: \`error\`, a socket closed before
  \`stop\`, a status whose destination is not \`live\` once it was, and the destination's
  \`dropped\` count (tags dropped for backpressure or while waiting for a keyframe).
- RSS is \`VmRSS\` of the bridge process from /proc; CPU is its utime + stime from
  /proc/<pid>/stat over the run, divided by the sessions and the wall time. nginx's figures are
  the same readings of its one process; its receiving count and bytes come from its \`rtmp_stat\`
  page.
- The pages run in this process on the same two cores as the bridge and nginx. Sender lateness
  shows whether they kept real time: had this process been starved, the bridge would have been
  fed slower than real time and its CPU figure would read low.
- The judge decodes ${JUDGE_S} s of video and audio of a few streams from nginx while all of them
  run (\`ffmpeg -v error -i rtmp://… -frames:v ${JUDGE_S * 30} -f null -\`, the audio to a second null output):
  every frame decodes without an error and the count takes about ${JUDGE_S} s of wall time after
  the first keyframe (nginx's \`wait_key on\` starts each player at one).
`;
    writeFileSync(DOC, doc);
    writeFileSync(SAMPLES_JSON, JSON.stringify({ samples, sessions: sessions.map(({ client: _, ...s }) => s), judged }));
    console.log(`wrote ${DOC}`);
  } finally {
    sender?.stop();
    state.stopping = true;
    for (const s of sessions) s.client.ws.terminate();
    await bridge.stop();
    await nginx.dispose();
  }
}

await main();

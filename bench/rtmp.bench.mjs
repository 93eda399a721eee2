// RTMP benchmark, run by `npm run bench` after the build (or `node bench/rtmp.bench.mjs`):
//  (a) chunk writer and reader throughput on the built modules, for 2.5 Mbps-shaped traffic
//      and for 1 MB keyframes;
//  (b) CPU time of `onair publish --fast` against `ffmpeg -c copy -f flv` relaying the same
//      files to the same nginx-rtmp: whole process for the 60 s file, the marginal cost per MB
//      (slope between the 60 s and the 240 s file, which leaves start-up out), and start-up alone;
//  (c) CPU of `onair play URL -o /dev/null` against `ffmpeg -i URL -c copy -f null -` reading the
//      same 2.5 Mbps live stream from nginx-rtmp side by side, over a steady-state window.
// Prints the figures and writes them to docs/bench/rtmp.md.
// `--only play` runs (c) alone and replaces only its section of the doc; `--before REV` adds
// `onair play` built from git revision REV to (c), to compare with the code as it was;
// `--rounds N`, `--warmup S` and `--window S` shorten (c) for a quick look.
// `node bench/rtmp.bench.mjs --profile` instead profiles one relay of the 240 s file
// (`node --cpu-prof`) and prints the functions with the most self time; `--profile play` profiles
// `onair play` reading the live stream for one window.
import { spawn, spawnSync } from 'node:child_process';
import { cpus, tmpdir } from 'node:os';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ChunkReader } from '../bridge/dist/rtmp/chunk-reader.js';
import { ChunkWriter } from '../bridge/dist/rtmp/chunk-writer.js';
import { CLK_TCK, cpuTicksOf, loadHarness, tcpBytesReceivedFrom } from './support.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = 7;
const CPU_ROUNDS = 15;
// What onair announces with Set Chunk Size (the writer's DEFAULT_OUT_CHUNK_SIZE).
const CHUNK_SIZE = 4096;
// Chunk stream ids and message types as onair sends them (ChunkStream, MessageType in
// bridge/src/rtmp/messages.ts are const enums, so they do not exist at run time).
const CSID_AUDIO = 4;
const CSID_VIDEO = 6;
const AUDIO = 8;
const VIDEO = 9;
const SOCKET_READ = 64 * 1024;
// Reading a live stream: rounds, and the seconds of each round before and during the measurement.
// At a live stream's ~80 messages a second, V8 takes most of a minute to optimise the read path
// (measured: onair's CPU falls for the first 45 s or so); the warm-up is reported on its own.
const PLAY_ROUNDS = 5;
const PLAY_WARMUP_S = 45;
const PLAY_WINDOW_S = 60;

const { values: argv } = parseArgs({
  options: {
    only: { type: 'string' },
    before: { type: 'string' },
    rounds: { type: 'string' },
    warmup: { type: 'string' },
    window: { type: 'string' },
    profile: { type: 'string' },
  },
  // `--profile` alone (the relay) as well as `--profile play`.
  args: process.argv.slice(2).flatMap((a, i, all) => (a === '--profile' && (all[i + 1] === undefined || all[i + 1].startsWith('--')) ? ['--profile', 'relay'] : [a])),
});
if (argv.only !== undefined && argv.only !== 'play') throw new Error(`--only ${argv.only}: only \`--only play\` is supported`);

const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// Deterministic filler: payload bytes do not matter to the chunker, only their sizes do.
function payload(size, seed) {
  const b = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** 2.5 Mbps-shaped: 30 fps video, ~10 KB frames, a ~60 KB keyframe every 2 s, 48 kHz AAC ~370 B. */
function liveShaped(seconds) {
  const msgs = [];
  const keyframe = payload(60_000, 1);
  const frames = [payload(9_000, 2), payload(10_000, 3), payload(11_000, 4)];
  const audio = payload(370, 5);
  const videoCount = seconds * 30;
  const audioCount = Math.floor((seconds * 48_000) / 1024);
  let v = 0;
  let a = 0;
  while (v < videoCount || a < audioCount) {
    const vt = Math.round((v * 1000) / 30);
    const at = Math.round((a * 1024 * 1000) / 48_000);
    if (v < videoCount && (a >= audioCount || vt <= at)) {
      msgs.push({ csid: CSID_VIDEO, type: VIDEO, timestamp: vt, streamId: 1, payload: v % 60 === 0 ? keyframe : frames[v % 3] });
      v++;
    } else {
      msgs.push({ csid: CSID_AUDIO, type: AUDIO, timestamp: at, streamId: 1, payload: audio });
      a++;
    }
  }
  return msgs;
}

/** 1 MB keyframes at 30 fps. */
function bigFrames(count) {
  const frame = payload(1_000_000, 7);
  return Array.from({ length: count }, (_, i) => ({ csid: CSID_VIDEO, type: VIDEO, timestamp: Math.round((i * 1000) / 30), streamId: 1, payload: frame }));
}

function throughput(msgs) {
  const payloadBytes = msgs.reduce((n, m) => n + m.payload.length, 0);
  const writeMBps = [];
  const readMBps = [];
  let wireBytes = 0;
  for (let run = -2; run < RUNS; run++) {
    const writer = new ChunkWriter();
    writer.setChunkSize(CHUNK_SIZE);
    let t = process.hrtime.bigint();
    const encoded = msgs.map((m) => writer.encode(m));
    const writeNs = Number(process.hrtime.bigint() - t);

    wireBytes = encoded.reduce((n, b) => n + b.length, 0);
    const wire = new Uint8Array(wireBytes);
    let at = 0;
    for (const b of encoded) {
      wire.set(b, at);
      at += b.length;
    }
    const reader = new ChunkReader();
    reader.setChunkSize(CHUNK_SIZE);
    let got = 0;
    let gotBytes = 0;
    t = process.hrtime.bigint();
    for (let i = 0; i < wire.length; i += SOCKET_READ) {
      for (const m of reader.push(wire.subarray(i, i + SOCKET_READ))) {
        got++;
        gotBytes += m.payload.length;
      }
    }
    const readNs = Number(process.hrtime.bigint() - t);
    if (got !== msgs.length || gotBytes !== payloadBytes) {
      throw new Error(`reader returned ${got} messages / ${gotBytes} B, ${msgs.length} / ${payloadBytes} B expected`);
    }
    if (run < 0) continue; // warm-up
    writeMBps.push(payloadBytes / 1e6 / (writeNs / 1e9));
    readMBps.push(payloadBytes / 1e6 / (readNs / 1e9));
  }
  return { payloadBytes, wireBytes, messages: msgs.length, write: median(writeMBps), read: median(readMBps) };
}

const onairBin = join(root, 'bridge', 'bin', 'onair.mjs');
const scratch = mkdtempSync(join(tmpdir(), 'onair-bench-'));
process.on('exit', () => rmSync(scratch, { recursive: true, force: true }));
let runs = 0;

/**
 * User and system CPU seconds of `command` (bash's `time`, from the kernel's rusage of the
 * process and the children it waited for). Its stderr is kept: the `onair` shim compiles the
 * bridge when a source is newer than the last build, and a compile inside a measured run would
 * be measured too.
 */
function cpuOf(command, args) {
  const log = join(scratch, `run-${runs++}.log`);
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', 'TIMEFORMAT="cpu %3U %3S %3R"; time "$@" >/dev/null 2>"$ONAIR_BENCH_LOG"', 'bash', command, ...args], {
      env: { ...process.env, ONAIR_BENCH_LOG: log },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    child.once('error', reject);
    child.once('close', (code) => {
      const output = existsSync(log) ? readFileSync(log, 'utf8') : '';
      const m = /cpu (\d+\.\d+) (\d+\.\d+) (\d+\.\d+)/.exec(err);
      if (/building/.test(output)) {
        reject(new Error(`the onair shim rebuilt the bridge inside a measured run; run \`npm run build\` (or \`npm run bench\`) and do not edit sources while the bench runs:\n${output}`));
      } else if (code !== 0 || !m) {
        reject(new Error(`${command} ${args.join(' ')} failed (exit ${code}): ${err}${output}`));
      } else {
        resolve({ user: Number(m[1]), sys: Number(m[2]), wall: Number(m[3]) });
      }
    });
  });
}

const quartiles = (values) => {
  const s = [...values].sort((a, b) => a - b);
  const at = (q) => {
    const i = (s.length - 1) * q;
    const lo = Math.floor(i);
    return s[lo] + (s[Math.ceil(i)] - s[lo]) * (i - lo);
  };
  return { q1: at(0.25), median: at(0.5), q3: at(0.75) };
};

const summary = (list) => ({
  cpu: median(list.map((s) => s.user + s.sys)),
  user: median(list.map((s) => s.user)),
  sys: median(list.map((s) => s.sys)),
  wall: median(list.map((s) => s.wall)),
});

async function relayCpu() {
  const { benchFlv, benchLongFlv, startNginxRtmp } = await loadHarness();
  const files = { short: await benchFlv(), long: await benchLongFlv() };
  const bytes = { short: statSync(files.short).size, long: statSync(files.long).size };
  // Fails here, before anything is measured, when the build is stale.
  await cpuOf(process.execPath, [onairBin, '--help']);
  const nginx = await startNginxRtmp({ record: false });
  const relays = {
    onair: (file, name) => cpuOf(process.execPath, [onairBin, 'publish', '--fast', file, nginx.url('live', name)]),
    ffmpeg: (file, name) =>
      cpuOf('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-i', file, '-map', '0', '-c', 'copy', '-f', 'flv', nginx.url('live', name)]),
  };
  const startups = {
    onair: () => cpuOf(process.execPath, [onairBin, '--help']),
    ffmpeg: () => cpuOf('ffmpeg', ['-hide_banner', '-version']),
  };
  const jobs = [];
  for (const tool of ['onair', 'ffmpeg']) {
    for (const length of ['short', 'long']) jobs.push({ tool, what: length, run: (round) => relays[tool](files[length], `${tool}-${length}-${round}`) });
    jobs.push({ tool, what: 'startup', run: () => startups[tool]() });
  }
  const samples = Object.fromEntries(jobs.map((j) => [`${j.tool}.${j.what}`, []]));
  try {
    for (const job of jobs) await job.run('warmup');
    for (let round = 0; round < CPU_ROUNDS; round++) {
      // Alternating the order spreads slow drifts in the machine's load over both tools.
      const order = round % 2 === 0 ? jobs : [...jobs].reverse();
      for (const job of order) samples[`${job.tool}.${job.what}`].push(await job.run(round));
    }
  } finally {
    await nginx.dispose();
  }
  const mbExtra = (bytes.long - bytes.short) / 1e6;
  const slopes = (tool, key) =>
    samples[`${tool}.long`].map((long, i) => {
      const short = samples[`${tool}.short`][i];
      const pick = (s) => (key === 'cpu' ? s.user + s.sys : s[key]);
      return ((pick(long) - pick(short)) * 1000) / mbExtra;
    });
  const tools = {};
  for (const tool of ['onair', 'ffmpeg']) {
    tools[tool] = {
      short: summary(samples[`${tool}.short`]),
      long: summary(samples[`${tool}.long`]),
      startup: summary(samples[`${tool}.startup`]),
      slope: quartiles(slopes(tool, 'cpu')),
      slopeUser: median(slopes(tool, 'user')),
      slopeSys: median(slopes(tool, 'sys')),
    };
  }
  const ratios = slopes('onair', 'cpu').map((o, i) => o / slopes('ffmpeg', 'cpu')[i]);
  return { files, bytes, tools, ratio: tools.onair.slope.median / tools.ffmpeg.slope.median, roundRatios: quartiles(ratios) };
}

/** Self time per function of a V8 CPU profile, largest first. */
function profileTop(profilePath, count) {
  const profile = JSON.parse(readFileSync(profilePath, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    const f = byId.get(id).callFrame;
    const url = f.url.replace(pathToFileURL(root).href + '/', '');
    const key = f.url ? `${f.functionName || '(anonymous)'}  ${url}:${f.lineNumber + 1}` : f.functionName;
    self.set(key, (self.get(key) ?? 0) + dt);
  });
  return [...self].sort((a, b) => b[1] - a[1]).slice(0, count).map(([key, us]) => ({ key, ms: us / 1000, share: us / total }));
}

/** `--profile`: one `onair publish --fast` of the long file under `node --cpu-prof`; nothing is written to docs. */
async function profileRelay() {
  const { benchLongFlv, startNginxRtmp } = await loadHarness();
  const file = await benchLongFlv();
  await cpuOf(process.execPath, [onairBin, '--help']);
  const nginx = await startNginxRtmp({ record: false });
  const dir = join(scratch, 'profile');
  try {
    await cpuOf(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=200', onairBin, 'publish', '--fast', file, nginx.url('live', 'profile')]);
  } finally {
    await nginx.dispose();
  }
  const [name] = readdirSync(dir);
  const kept = join(root, 'node_modules', '.cache', 'onair-relay.cpuprofile');
  copyFileSync(join(dir, name), kept);
  console.log(`profile of \`onair publish --fast\` (${fmt(statSync(file).size / 1e6)} MB), self time, kept in ${kept}:`);
  for (const row of profileTop(kept, 30)) console.log(`${fmt(row.ms, 1).padStart(8)} ms ${fmt(100 * row.share, 1).padStart(5)} %  ${row.key}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `onair` built from git revision `rev` in the scratch directory: the sources as they were, the
 * repository's node_modules for everything but the workspace packages. Returns its bin/onair.mjs.
 */
function buildRevision(rev) {
  const dir = join(scratch, `rev-${rev.replace(/[^\w.-]/g, '_')}`);
  mkdirSync(join(dir, 'node_modules', '@onair'), { recursive: true });
  const archive = spawnSync('bash', ['-c', 'set -o pipefail; git -C "$1" archive "$2" | tar -x -C "$3"', 'bash', root, rev, dir], { encoding: 'utf8' });
  if (archive.status !== 0) throw new Error(`cannot extract revision ${rev}: ${archive.stderr}`);
  for (const name of readdirSync(join(root, 'node_modules'))) {
    if (name !== '@onair') symlinkSync(join(root, 'node_modules', name), join(dir, 'node_modules', name));
  }
  for (const pkg of ['shared', 'bridge']) symlinkSync(join(dir, pkg), join(dir, 'node_modules', '@onair', pkg));
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const built = spawnSync(process.execPath, [tsc, '-b', join(dir, 'bridge')], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`revision ${rev} does not build:\n${built.stdout}${built.stderr}`);
  return join(dir, 'bridge', 'bin', 'onair.mjs');
}

/**
 * A 2.5 Mbps live stream on a fresh nginx-rtmp: the 60 s fixture published by `ffmpeg -re`,
 * looped (ffmpeg keeps the timestamps continuous across loops), for as long as `use` runs.
 */
async function withLiveStream(use) {
  const { benchFlv, startNginxRtmp } = await loadHarness();
  const file = await benchFlv();
  const nginx = await startNginxRtmp({ record: false });
  const url = nginx.url('live', 'bench-play');
  const publisher = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', file, '-map', '0', '-c', 'copy', '-f', 'flv', url], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let publisherLog = '';
  publisher.stderr.on('data', (d) => (publisherLog = (publisherLog + d).slice(-2000)));
  const publisherGone = () => new Error(`the publisher (ffmpeg -re) exited (${publisher.exitCode ?? publisher.signalCode}): ${publisherLog}`);
  try {
    await sleep(2000);
    if (publisher.exitCode !== null) throw publisherGone();
    const result = await use({ url, port: nginx.rtmpPort, bitrate: (statSync(file).size * 8) / 60 / 1e6, publisherGone: () => (publisher.exitCode !== null ? publisherGone() : undefined) });
    return result;
  } finally {
    publisher.kill('SIGKILL');
    await nginx.dispose();
  }
}

/** A reader of the live stream as a child process; `stop()` interrupts it and waits for its exit. */
function startReader(command, args) {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => (log = (log + d).slice(-4000)));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    pid: child.pid,
    running: () => child.exitCode === null && child.signalCode === null,
    log: () => log,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/**
 * (c): `onair play URL -o /dev/null` and `ffmpeg -i URL -c copy -f null -` (and, with `--before`,
 * the older onair) read one live stream at the same time. Each round starts them in turn (the
 * order reversed every other round), lets them settle for PLAY_WARMUP_S (connect, the wait for a
 * keyframe, Node's start-up and JIT stay out), then takes utime and stime of each whole process
 * (every thread: GC, libuv's pool) from /proc over the window, and the bytes its TCP connection
 * received, which must be the stream's rate: a reader that fell behind or stopped would look cheap.
 */
async function playCpu({ rounds, warmupS, windowS, beforeRev }) {
  const readers = [{ name: 'onair', command: process.execPath, args: (url) => [onairBin, 'play', url, '-o', '/dev/null'] }];
  if (beforeRev !== undefined) {
    const bin = buildRevision(beforeRev);
    await cpuOf(process.execPath, [bin, '--help']);
    readers.push({ name: `onair at ${beforeRev}`, command: process.execPath, args: (url) => [bin, 'play', url, '-o', '/dev/null'] });
  }
  readers.push({ name: 'ffmpeg', command: 'ffmpeg', args: (url) => ['-hide_banner', '-nostdin', '-loglevel', 'error', '-i', url, '-c', 'copy', '-f', 'null', '-'] });
  // Fails here, before anything is measured, when the build is stale.
  await cpuOf(process.execPath, [onairBin, '--help']);
  const samples = Object.fromEntries(readers.map((r) => [r.name, []]));
  const bitrate = await withLiveStream(async ({ url, port, bitrate, publisherGone }) => {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? readers : [...readers].reverse();
      const running = [];
      try {
        for (const r of order) running.push({ reader: r, child: startReader(r.command, r.args(url)), startedAt: performance.now() });
        await sleep(warmupS * 1000);
        const start = running.map(({ child }) => ({ cpu: cpuTicksOf(child.pid), bytes: tcpBytesReceivedFrom(port).get(child.pid) ?? 0 }));
        const t0 = performance.now();
        await sleep(windowS * 1000);
        const wall = (performance.now() - t0) / 1000;
        const received = tcpBytesReceivedFrom(port);
        running.forEach(({ reader, child, startedAt }, i) => {
          if (!child.running()) throw new Error(`${reader.name} exited during the window: ${child.log()}`);
          const end = cpuTicksOf(child.pid);
          const pct = (ticks) => (ticks / CLK_TCK / wall) * 100;
          samples[reader.name].push({
            // From the start of the process to the window: start-up, connect, the JIT warming up.
            warmup: ((start[i].cpu.user + start[i].cpu.sys) / CLK_TCK / ((t0 - startedAt) / 1000)) * 100,
            user: pct(end.user - start[i].cpu.user),
            sys: pct(end.sys - start[i].cpu.sys),
            mbps: (((received.get(child.pid) ?? 0) - start[i].bytes) * 8) / wall / 1e6,
          });
        });
        const gone = publisherGone();
        if (gone) throw gone;
      } finally {
        for (const { child } of running) await child.stop();
      }
      const line = readers.map((r) => {
        const s = samples[r.name].at(-1);
        return `${r.name} ${fmt(s.user + s.sys, 2)} % (${fmt(s.mbps, 2)} Mbps)`;
      });
      console.log(`play round ${round + 1}/${rounds}: ${line.join(', ')}`);
    }
    return bitrate;
  });
  const tools = {};
  for (const r of readers) {
    const list = samples[r.name];
    tools[r.name] = {
      cpu: quartiles(list.map((s) => s.user + s.sys)),
      user: median(list.map((s) => s.user)),
      sys: median(list.map((s) => s.sys)),
      warmup: median(list.map((s) => s.warmup)),
      mbps: Math.min(...list.map((s) => s.mbps)),
    };
  }
  // A reader that did not keep up would be measured doing less work than the others.
  for (const r of readers) {
    if (tools[r.name].mbps < bitrate * 0.8) throw new Error(`${r.name} received ${fmt(tools[r.name].mbps, 2)} Mbps in a window, the stream is ${fmt(bitrate, 2)} Mbps`);
  }
  const perRound = (name) => samples[name].map((s, i) => (s.user + s.sys) / (samples.ffmpeg[i].user + samples.ffmpeg[i].sys));
  const ratios = Object.fromEntries(readers.filter((r) => r.name !== 'ffmpeg').map((r) => [r.name, { medians: tools[r.name].cpu.median / tools.ffmpeg.cpu.median, rounds: quartiles(perRound(r.name)) }]));
  return { readers: readers.map((r) => r.name), tools, ratios, bitrate, rounds, warmupS, windowS };
}

/** `--profile play`: `onair play` under `node --cpu-prof` for one window of the live stream. */
async function profilePlay(warmupS, windowS) {
  await cpuOf(process.execPath, [onairBin, '--help']);
  const dir = join(scratch, 'profile-play');
  await withLiveStream(async ({ url }) => {
    const child = startReader(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, onairBin, 'play', url, '-o', '/dev/null']);
    await sleep((warmupS + windowS) * 1000);
    if (!child.running()) throw new Error(`onair play exited: ${child.log()}`);
    // SIGINT ends the play cleanly, and Node writes the profile on the way out.
    await child.stop();
  });
  const [name] = readdirSync(dir);
  const kept = join(root, 'node_modules', '.cache', 'onair-play.cpuprofile');
  copyFileSync(join(dir, name), kept);
  console.log(`profile of \`onair play -o /dev/null\` (${warmupS + windowS} s of a live stream, start-up included), self time, kept in ${kept}:`);
  for (const row of profileTop(kept, 30)) console.log(`${fmt(row.ms, 1).padStart(8)} ms ${fmt(100 * row.share, 1).padStart(5)} %  ${row.key}`);
}

/** The section of docs/bench/rtmp.md on (c), between markers so that `--only play` can replace it alone. */
function playSection(play) {
  const { tools, ratios, readers } = play;
  const row = (name) => {
    const t = tools[name];
    return `| ${name === 'onair' ? 'onair (this build)' : name} | **${fmt(t.cpu.median, 2)}** | ${fmt(t.cpu.q1, 2)} – ${fmt(t.cpu.q3, 2)} | ${fmt(t.user, 2)} | ${fmt(t.sys, 2)} | ${fmt(t.mbps, 2)} | ${fmt(t.warmup, 2)} |`;
  };
  const ratioLine = (name) =>
    `- ${name === 'onair' ? 'onair' : name} / ffmpeg: **${fmt(ratios[name].medians, 2)}×** (ratio of the medians; round by round the median ratio is ${fmt(ratios[name].rounds.median, 2)}×, interquartile ${fmt(ratios[name].rounds.q1, 2)} – ${fmt(ratios[name].rounds.q3, 2)}×)`;
  const r = ratios.onair.medians;
  const verdict = r <= 1.5 ? `**met**: ${fmt(r, 2)}× ffmpeg's CPU.` : `**not met**: ${fmt(r, 2)}× ffmpeg's CPU.`;
  return `<!-- play:start -->
## Reading a live stream: CPU

Every restream input and every watch upstream is an RTMP play. Does \`onair play\` cost more CPU
than ffmpeg reading the same stream? Target: 1.5× ffmpeg's at the most, in steady state.

Method. One nginx-rtmp (\`record\` off); \`ffmpeg -re -stream_loop -1\` publishes the 60 s fixture
(${fmt(play.bitrate, 2)} Mbps, H.264 720p30 with B-frames + AAC) to it, looped. Side by side, at the same time, on that stream:
\`onair play URL -o /dev/null\` and \`ffmpeg -i URL -c copy -f null -\`${readers.length > 2 ? `, and \`onair play\` built from the revision named below (\`--before REV\`)` : ''}.
Each of ${play.rounds} rounds starts the readers (order reversed every other round), waits ${play.warmupS} s (connect, the wait
for a keyframe, Node's start-up, and V8 optimising the read path, which at a live stream's ~80
messages a second takes most of a minute: onair's CPU falls for the first 45 s or so), then takes each process's utime and stime (all its threads:
GC, libuv's pool, the kernel's work for its system calls) from \`/proc/<pid>/stat\` over ${play.windowS} s; the
readers are stopped at the end of the round. CPU % is of one core; medians over rounds. Each reader's
TCP connection must have received the stream's rate in every window (\`ss\`), so no reader is measured
idling. nginx's and the publisher's CPU are not counted. ffmpeg's null muxer writes nothing; onair
writes the FLV to /dev/null. The last column is each process's CPU from its start to the window
(start-up, connect, JIT), which the steady state leaves out.

| reader | CPU %, median | interquartile range | user % | sys % | received, Mbps (lowest window) | first ${play.warmupS} s: CPU % |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
${readers.map(row).join('\n')}

${readers.filter((n) => n !== 'ffmpeg').map(ratioLine).join('\n')}

Verdict against "1.5× ffmpeg's CPU at the most": ${verdict}

Where onair's time goes in steady state (\`perf record -g\` of \`onair play\` for 30 s after its first
55 s, 2026-11-30; about 560 samples, so give or take 3 points): \`onair play\` now reads the socket
about 12 times a second (\`readBatchMs\` 100 ms; strace: 241 reads in 20 s, where nginx-rtmp's ~80
messages a second used to wake it about 70 times), so what was paid per read shrank and the rest is
spread out. System calls (epoll, read, the epoll_ctl that stops and restarts reading, write) with
the scheduler about 20 %; parsing chunks into messages about 14 %, nearly all of it copying each
message out of the read buffer into its own; the client core acting on messages about 4 %; the
player handing a read's tags over, encoding them into one FLV buffer and writing it about 14 %; the
read batching's timer (Node's timer list and restarting the read) about 15 %; V8's optimising
compiler, still at work after a minute since at a dozen reads a second the hot functions warm up
slowly, about 6 %; Node's callback machinery and the rest the remainder. ffmpeg makes more system
calls (strace: several hundred poll and recvfrom a second, a few bytes at a time) but spends far
less around each. Copying small messages into a shared slab instead of one allocation each was
tried: within the bench's resolution (one clock tick in a 60 s window), so left out. The watch
path reads as bytes arrive (\`readBatchMs\` 0), for its viewers' latency, and so still pays per
read as \`onair play\` did before it batched its reads (0.77 % of a core, built at e3ff236, in the
run this breakdown was written for).

Run this section alone with \`node bench/rtmp.bench.mjs --only play\` (${play.rounds} × ${play.warmupS + play.windowS} s); add
\`--before REV\` to measure \`onair\` built from git revision REV beside it. \`--profile play\` profiles
\`onair play\` on the same stream and prints the functions with the most self time.
<!-- play:end -->
`;
}

/** Puts `section` in place of the one between the same markers in docs/bench/rtmp.md (appends it when absent). */
function replacePlaySection(section) {
  const doc = join(root, 'docs', 'bench', 'rtmp.md');
  const text = existsSync(doc) ? readFileSync(doc, 'utf8') : '# RTMP benchmark\n';
  const start = '<!-- play:start -->';
  const end = '<!-- play:end -->\n';
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  writeFileSync(doc, i >= 0 && j > i ? text.slice(0, i) + section + text.slice(j + end.length) : `${text.trimEnd()}\n\n${section}`);
}

const fmt = (n, digits = 1) => n.toFixed(digits);

const playOptions = {
  rounds: argv.rounds === undefined ? PLAY_ROUNDS : Number(argv.rounds),
  warmupS: argv.warmup === undefined ? PLAY_WARMUP_S : Number(argv.warmup),
  windowS: argv.window === undefined ? PLAY_WINDOW_S : Number(argv.window),
  beforeRev: argv.before,
};

if (argv.profile === 'play') {
  await profilePlay(playOptions.warmupS, playOptions.windowS);
  process.exit(0);
} else if (argv.profile !== undefined) {
  await profileRelay();
  process.exit(0);
}

if (argv.only === 'play') {
  const section = playSection(await playCpu(playOptions));
  replacePlaySection(section);
  console.log(section);
  process.exit(0);
}

const live = throughput(liveShaped(60));
const big = throughput(bigFrames(120));
const relay = await relayCpu();
const play = await playCpu(playOptions);

const cpuModel = cpus()[0]?.model ?? 'unknown';
const nproc = spawnSync('nproc', { encoding: 'utf8' }).stdout.trim();
const ffmpegVersion = /ffmpeg version (\S+)/.exec(spawnSync('ffmpeg', ['-hide_banner', '-version'], { encoding: 'utf8' }).stdout)?.[1] ?? '?';
const mb = { short: relay.bytes.short / 1e6, long: relay.bytes.long / 1e6 };
const { onair, ffmpeg } = relay.tools;
const ms = (s) => fmt(s * 1000, 0);
const fixed = (t) => fmt((t.short.cpu - t.startup.cpu) * 1000 - t.slope.median * mb.short, 0);
const row = (label, s, perMb) => `| ${label} | ${ms(s.cpu)} | ${ms(s.user)} | ${ms(s.sys)} | ${ms(s.wall)} | ${perMb === undefined ? '' : fmt((s.cpu * 1000) / perMb)} |`;
const slopeRow = (label, t) =>
  `| ${label} | **${fmt(t.slope.median, 2)}** | ${fmt(t.slope.q1, 2)} – ${fmt(t.slope.q3, 2)} | ${fmt(t.slopeUser, 2)} | ${fmt(t.slopeSys, 2)} |`;
// Ten per cent either way is within what this shared machine repeats.
const verdict =
  relay.ratio <= 1
    ? `**met**: onair's relay costs ${fmt(relay.ratio, 2)}× ffmpeg's CPU per byte.`
    : relay.ratio <= 1.1
      ? `**met within noise**: onair's relay costs ${fmt(relay.ratio, 2)}× ffmpeg's CPU per byte, a difference this machine does not resolve.`
      : `**not met**: onair's relay costs ${fmt(relay.ratio, 2)}× ffmpeg's CPU per byte.`;
const report = `# RTMP benchmark

Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC by \`bench/rtmp.bench.mjs\` (\`npm run bench\`).
Machine: ${nproc} CPUs (${cpuModel}), Node ${process.version}, ffmpeg ${ffmpegVersion}, shared with other
work, so treat differences under ~10 % as noise.

## Chunk writer and reader (bridge/dist/rtmp), single thread

Outgoing chunk size ${CHUNK_SIZE}; the reader gets the bytes in ${SOCKET_READ / 1024} KiB slices, as
from a socket. MB/s of message payload, median of ${RUNS} runs after 2 warm-up runs.

| traffic | messages | payload | chunk headers | write MB/s | read MB/s |
| --- | ---: | ---: | ---: | ---: | ---: |
| 60 s at ~2.5 Mbps (30 fps, 10 KB frames, 60 KB keyframe / 2 s, AAC 370 B at 48 kHz) | ${live.messages} | ${fmt(live.payloadBytes / 1e6)} MB | +${fmt((100 * (live.wireBytes - live.payloadBytes)) / live.payloadBytes, 2)} % | ${fmt(live.write, 0)} | ${fmt(live.read, 0)} |
| 120 keyframes of 1 MB | ${big.messages} | ${fmt(big.payloadBytes / 1e6)} MB | +${fmt((100 * (big.wireBytes - big.payloadBytes)) / big.payloadBytes, 2)} % | ${fmt(big.write, 0)} | ${fmt(big.read, 0)} |

A 2.5 Mbps stream is 0.31 MB/s: the ~2.5 Mbps row is ${fmt(Math.min(live.write, live.read) / 0.3125, 0)}× real time for the slower direction.

## Relaying a file to nginx-rtmp: CPU time

Does onair's relay cost more CPU per byte than ffmpeg's? Target: no more than ffmpeg's.

Method. Two FLVs from the test fixtures (H.264 ~2.5 Mbps with B-frames + AAC, as a camera
encoder makes them): ${fmt(mb.short)} MB (60 s) and ${fmt(mb.long)} MB (240 s), each sent as fast as
possible to one local nginx-rtmp (\`record\` off) by
\`onair publish --fast FILE URL\` and by \`ffmpeg -i FILE -map 0 -c copy -f flv URL\`.
CPU is user+system time of the whole process from the kernel (bash \`time\`); nginx's is not
counted. One warm-up of everything, then ${CPU_ROUNDS} rounds of all six runs (two files and the
start-up run, for each tool), the order reversed every other round; medians over rounds. The
bench runs after the build and fails if the \`onair\` shim rebuilds inside a run.

Whole process means start-up (for onair: Node's boot, loading the modules) plus the per-byte
work, so it cannot answer the question on its own. The **marginal cost per MB** does: for each
round, (CPU of the 240 s run − CPU of the 60 s run) / ${fmt(mb.long - mb.short)} MB, which cancels
everything paid once per process.

### Marginal CPU per MB (slope between the two files)

| tool | CPU ms per MB, median | interquartile range | user ms per MB | sys ms per MB |
| --- | ---: | ---: | ---: | ---: |
${slopeRow('onair', onair)}
${slopeRow('ffmpeg', ffmpeg)}

onair / ffmpeg per byte: **${fmt(relay.ratio, 2)}×** (ratio of the medians; round by round the median ratio is
${fmt(relay.roundRatios.median, 2)}×, interquartile ${fmt(relay.roundRatios.q1, 2)} – ${fmt(relay.roundRatios.q3, 2)}×).

Verdict against "no more CPU per byte than ffmpeg": ${verdict}

### Whole process and start-up, ms (medians)

| run | CPU | user | sys | wall | CPU ms per MB |
| --- | ---: | ---: | ---: | ---: | ---: |
${row(`onair, 60 s file (${fmt(mb.short)} MB)`, onair.short, mb.short)}
${row(`ffmpeg, 60 s file (${fmt(mb.short)} MB)`, ffmpeg.short, mb.short)}
${row(`onair, 240 s file (${fmt(mb.long)} MB)`, onair.long, mb.long)}
${row(`ffmpeg, 240 s file (${fmt(mb.long)} MB)`, ffmpeg.long, mb.long)}
${row('`onair --help` (start-up only)', onair.startup)}
${row('`ffmpeg -version` (start-up only)', ffmpeg.startup)}

Whole process, 60 s file: onair / ffmpeg ${fmt(onair.short.cpu / ffmpeg.short.cpu, 2)}×. Taking out start-up and
${fmt(mb.short)} MB at the marginal rate leaves what each run pays once besides start-up (connect,
handshake, unpublish, and for onair the JIT warming up on the first megabytes):
${fixed(onair)} ms for onair, ${fixed(ffmpeg)} ms for ffmpeg.

To see where onair's time goes: \`node bench/rtmp.bench.mjs --profile\` (one \`node --cpu-prof\`
relay of the 240 s file; prints the functions with the most self time).

${playSection(play)}`;
mkdirSync(join(root, 'docs', 'bench'), { recursive: true });
writeFileSync(join(root, 'docs', 'bench', 'rtmp.md'), report);
console.log(report);

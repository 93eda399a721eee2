// RTMP benchmark, run by `npm run bench` after the build (or `node bench/rtmp.bench.mjs`):
//  (a) chunk writer and reader throughput on the built modules, for 2.5 Mbps-shaped traffic
//      and for 1 MB keyframes;
//  (b) CPU time of `onair publish --fast` against `ffmpeg -c copy -f flv` relaying the same
//      files to the same nginx-rtmp: whole process for the 60 s file, the marginal cost per MB
//      (slope between the 60 s and the 240 s file, which leaves start-up out), and start-up alone.
// Prints the figures and writes them to docs/bench/rtmp.md.
// `node bench/rtmp.bench.mjs --profile` instead profiles one relay of the 240 s file
// (`node --cpu-prof`) and prints the functions with the most self time.
import { spawn, spawnSync } from 'node:child_process';
import { cpus, tmpdir } from 'node:os';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ChunkReader } from '../bridge/dist/rtmp/chunk-reader.js';
import { ChunkWriter } from '../bridge/dist/rtmp/chunk-writer.js';
import { loadHarness } from './support.mjs';

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

const fmt = (n, digits = 1) => n.toFixed(digits);

if (process.argv.includes('--profile')) {
  await profileRelay();
  process.exit(0);
}

const live = throughput(liveShaped(60));
const big = throughput(bigFrames(120));
const relay = await relayCpu();

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
`;
mkdirSync(join(root, 'docs', 'bench'), { recursive: true });
writeFileSync(join(root, 'docs', 'bench', 'rtmp.md'), report);
console.log(report);

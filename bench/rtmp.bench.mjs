// RTMP benchmark, run by `npm run bench` after the build (or `node bench/rtmp.bench.mjs`):
//  (a) chunk writer and reader throughput on the built modules, for 2.5 Mbps-shaped traffic
//      and for 1 MB keyframes;
//  (b) CPU time of `onair publish --fast` against `ffmpeg -c copy -f flv` relaying the same
//      60 s file to the same nginx-rtmp.
// Prints the figures and writes them to docs/bench/rtmp.md.
import { spawn, spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { ChunkReader } from '../bridge/dist/rtmp/chunk-reader.js';
import { ChunkWriter } from '../bridge/dist/rtmp/chunk-writer.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const RUNS = 7;
const CPU_ROUNDS = 5;
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

// The harness is TypeScript and node 20 runs no TypeScript: transpile it (no type check) into
// node_modules/.cache, inside the repository so that its imports resolve.
async function loadHarness() {
  const from = join(root, 'bridge', 'test', 'harness');
  const to = join(root, 'node_modules', '.cache', 'onair-harness-js');
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from)) {
    const source = readFileSync(join(from, name), 'utf8');
    if (name.endsWith('.ts')) {
      const { outputText } = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
      writeFileSync(join(to, name.replace(/\.ts$/, '.js')), outputText);
    } else if (name.endsWith('.mjs')) {
      writeFileSync(join(to, name), source);
    }
  }
  const load = (name) => import(pathToFileURL(join(to, name)).href);
  const [fixtures, nginx] = await Promise.all([load('fixtures.js'), load('nginx.js')]);
  return { benchFlv: fixtures.benchFlv, startNginxRtmp: nginx.startNginxRtmp };
}

/** User and system CPU seconds of `command` (bash's `time`, from the kernel's rusage). */
function cpuOf(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', 'TIMEFORMAT="cpu %3U %3S %3R"; time "$@" >/dev/null 2>"$ONAIR_BENCH_LOG"', 'bash', command, ...args], {
      env: { ...process.env, ONAIR_BENCH_LOG: '/dev/null' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    child.once('error', reject);
    child.once('close', (code) => {
      const m = /cpu (\d+\.\d+) (\d+\.\d+) (\d+\.\d+)/.exec(err);
      if (code !== 0 || !m) reject(new Error(`${command} failed (exit ${code}): ${err}`));
      else resolve({ user: Number(m[1]), sys: Number(m[2]), wall: Number(m[3]) });
    });
  });
}

async function relayCpu() {
  const { benchFlv, startNginxRtmp } = await loadHarness();
  const file = await benchFlv();
  const bytes = statSync(file).size;
  const nginx = await startNginxRtmp({ record: false });
  const onair = join(root, 'bridge', 'bin', 'onair.mjs');
  const tools = {
    onair: (name) => cpuOf(process.execPath, [onair, 'publish', '--fast', file, nginx.url('live', name)]),
    ffmpeg: (name) => cpuOf('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-i', file, '-map', '0', '-c', 'copy', '-f', 'flv', nginx.url('live', name)]),
  };
  const samples = { onair: [], ffmpeg: [] };
  try {
    await tools.onair('warmup');
    await tools.ffmpeg('warmup');
    for (let round = 0; round < CPU_ROUNDS; round++) {
      const order = round % 2 === 0 ? ['onair', 'ffmpeg'] : ['ffmpeg', 'onair'];
      for (const tool of order) samples[tool].push(await tools[tool](`${tool}-${round}`));
    }
    const nodeStart = [];
    for (let i = 0; i < CPU_ROUNDS; i++) nodeStart.push(await cpuOf(process.execPath, ['-e', '0']));
    const summary = (list) => ({
      cpu: median(list.map((s) => s.user + s.sys)),
      user: median(list.map((s) => s.user)),
      sys: median(list.map((s) => s.sys)),
      wall: median(list.map((s) => s.wall)),
    });
    return { file, bytes, onair: summary(samples.onair), ffmpeg: summary(samples.ffmpeg), nodeStart: summary(nodeStart) };
  } finally {
    await nginx.dispose();
  }
}

const fmt = (n, digits = 1) => n.toFixed(digits);

const live = throughput(liveShaped(60));
const big = throughput(bigFrames(120));
const relay = await relayCpu();

const cpuModel = cpus()[0]?.model ?? 'unknown';
const nproc = spawnSync('nproc', { encoding: 'utf8' }).stdout.trim();
const mb = relay.bytes / 1e6;
const ratio = relay.onair.cpu / relay.ffmpeg.cpu;
const report = `# RTMP benchmark

Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC by \`bench/rtmp.bench.mjs\` (\`npm run bench\`).
Machine: ${nproc} CPUs (${cpuModel}), Node ${process.version}, shared with other work, so
treat differences under ~10 % as noise.

## Chunk writer and reader (bridge/dist/rtmp), single thread

Outgoing chunk size ${CHUNK_SIZE}; the reader gets the bytes in ${SOCKET_READ / 1024} KiB slices, as
from a socket. MB/s of message payload, median of ${RUNS} runs after 2 warm-up runs.

| traffic | messages | payload | chunk headers | write MB/s | read MB/s |
| --- | ---: | ---: | ---: | ---: | ---: |
| 60 s at ~2.5 Mbps (30 fps, 10 KB frames, 60 KB keyframe / 2 s, AAC 370 B at 48 kHz) | ${live.messages} | ${fmt(live.payloadBytes / 1e6)} MB | +${fmt((100 * (live.wireBytes - live.payloadBytes)) / live.payloadBytes, 2)} % | ${fmt(live.write, 0)} | ${fmt(live.read, 0)} |
| 120 keyframes of 1 MB | ${big.messages} | ${fmt(big.payloadBytes / 1e6)} MB | +${fmt((100 * (big.wireBytes - big.payloadBytes)) / big.payloadBytes, 2)} % | ${fmt(big.write, 0)} | ${fmt(big.read, 0)} |

A 2.5 Mbps stream is 0.31 MB/s: the ~2.5 Mbps row is ${fmt(Math.min(live.write, live.read) / 0.3125, 0)}× real time for the slower direction.

## Relaying a file to nginx-rtmp: CPU time

The same ${fmt(mb)} MB, 60 s FLV (H.264 ~2.5 Mbps + AAC) sent as fast as possible to one local
nginx-rtmp (\`record\` off), ${CPU_ROUNDS} rounds alternating which tool goes first; user+system CPU
seconds of the whole process (bash \`time\`), medians.

| command | CPU s | user s | sys s | wall s | CPU ms per MB |
| --- | ---: | ---: | ---: | ---: | ---: |
| \`onair publish --fast FILE URL\` | ${fmt(relay.onair.cpu, 3)} | ${fmt(relay.onair.user, 3)} | ${fmt(relay.onair.sys, 3)} | ${fmt(relay.onair.wall, 3)} | ${fmt((relay.onair.cpu * 1000) / mb)} |
| \`ffmpeg -i FILE -map 0 -c copy -f flv URL\` | ${fmt(relay.ffmpeg.cpu, 3)} | ${fmt(relay.ffmpeg.user, 3)} | ${fmt(relay.ffmpeg.sys, 3)} | ${fmt(relay.ffmpeg.wall, 3)} | ${fmt((relay.ffmpeg.cpu * 1000) / mb)} |
| \`node -e 0\` (Node start-up alone) | ${fmt(relay.nodeStart.cpu, 3)} | ${fmt(relay.nodeStart.user, 3)} | ${fmt(relay.nodeStart.sys, 3)} | ${fmt(relay.nodeStart.wall, 3)} | |

onair / ffmpeg CPU per byte: **${fmt(ratio, 2)}×** (${fmt(((relay.onair.cpu - relay.nodeStart.cpu) * 1000) / mb)} ms per MB for onair
without Node's start-up).
`;
mkdirSync(join(root, 'docs', 'bench'), { recursive: true });
writeFileSync(join(root, 'docs', 'bench', 'rtmp.md'), report);
console.log(report);

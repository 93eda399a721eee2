// Shared by the benchmarks: the test harness (TypeScript, transpiled for node), ports, the bridge
// as a child, /proc CPU readings, and docs/bench/watch.md, where each watch benchmark rewrites
// only its own section.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const DOC = join(root, 'docs', 'bench', 'watch.md');
export const CLK_TCK = 100;

/** The test harness, transpiled (no type check) next to its sources' dependencies. */
export async function loadHarness() {
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
  return { benchFlv: fixtures.benchFlv, benchLongFlv: fixtures.benchLongFlv, startNginxRtmp: nginx.startNginxRtmp };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function waitPort(port, ms, what) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not answer on port ${port}`);
}

/** `onair serve` as a child on free ports; `stop()` ends it. */
export async function startBridge(extra = []) {
  const port = await freePort();
  const localRtmpPort = await freePort();
  const child = spawn(process.execPath, [join(root, 'bridge', 'bin', 'onair.mjs'), 'serve', '--port', String(port), '--local-rtmp-port', String(localRtmpPort), ...extra], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
  try {
    await waitPort(port, 60_000, 'onair serve');
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${e.message}\n${err}`, { cause: e });
  }
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    pid: child.pid,
    localRtmpPort,
    /** The last 4000 characters the bridge wrote to stderr. */
    log: () => err,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      }),
  };
}

/** CPU ticks (utime + stime) of one process, from /proc/<pid>/stat. */
export function ticksOf(pid) {
  const { user, sys } = cpuTicksOf(pid);
  return user + sys;
}

/** User (utime) and system (stime) CPU ticks of one process, all its threads, from /proc/<pid>/stat. */
export function cpuTicksOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]), sys: Number(fields[12]) };
}

/**
 * Bytes each process has received on its established TCP connections to `port` (loopback), from
 * the kernel's socket statistics (`ss -tinp`): pid → bytes. It counts what reached the process,
 * whatever system call it reads with (ffmpeg's recvfrom does not show in /proc/<pid>/io).
 */
export function tcpBytesReceivedFrom(port) {
  const out = spawnSync('ss', ['-tinpH', 'state', 'established', `( dport = :${port} )`], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`ss failed: ${out.stderr}`);
  const bytes = new Map();
  let pids = [];
  for (const line of out.stdout.split('\n')) {
    if (/^\S/.test(line) || /users:\(/.test(line)) pids = [...line.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]));
    const received = /bytes_received:(\d+)/.exec(line);
    if (received) for (const pid of pids) bytes.set(pid, (bytes.get(pid) ?? 0) + Number(received[1]));
  }
  return bytes;
}

export function machine() {
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${new Date().toISOString()}`;
}

export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Replaces the section between `<!-- name:start -->` and `<!-- name:end -->` (adding it if new). */
export function writeSection(name, body) {
  const head = `# Watch benchmarks\n\nWritten by \`node bench/latency.bench.mjs\` and \`node bench/fanout.bench.mjs\` (after \`npm run build\`); each run replaces its own section.\n`;
  let doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : head;
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${start}\n${body.trim()}\n${end}`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  doc = i >= 0 && j > i ? doc.slice(0, i) + block + doc.slice(j + end.length) : `${doc.trimEnd()}\n\n${block}\n`;
  mkdirSync(dirname(DOC), { recursive: true });
  writeFileSync(DOC, doc);
}

/** The harness's StudioClient (bridge/test/harness/studio-client.ts), transpiled by loadHarness. */
export async function loadStudioClient() {
  await loadHarness();
  const url = pathToFileURL(join(root, 'node_modules', '.cache', 'onair-harness-js', 'studio-client.js')).href;
  return (await import(url)).StudioClient;
}

/** Resident set size of one process in bytes (VmRSS from /proc/<pid>/status); NaN once it is gone. */
export function rssOf(pid) {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? NaN : Number(m[1]) * 1024;
  } catch {
    return NaN;
  }
}

/** pid → parent pid for every process, from /proc. */
function parents() {
  const table = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      table.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // The process exited while we read.
    }
  }
  return table;
}

/** `pid` and all its descendants. */
export function processTree(pid) {
  const children = new Map();
  for (const [p, ppid] of parents()) {
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(p);
  }
  const tree = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop();
    tree.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return tree;
}

/** CPU ticks used so far by `pid` and all its descendants (a browser and its helpers). */
export function treeTicksOf(pid) {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      ticks += ticksOf(p);
    } catch {
      // Gone.
    }
  }
  return ticks;
}

/** The browser's main process: the one with this profile that is no child process type. */
export function browserPidOf(userDataDir) {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (cmd.includes(`--user-data-dir=${userDataDir}`) && !cmd.includes('--type=')) return Number(name);
    } catch {
      // Gone.
    }
  }
  throw new Error('browser process not found');
}

/**
 * Proportional set size of `pid` and its descendants in bytes (Pss from /proc/<pid>/smaps_rollup):
 * each shared page is divided among the processes that map it, so a multi-process browser is not
 * counted several times over, as a sum of RSS would be.
 */
export function treePss(pid) {
  let bytes = 0;
  for (const p of processTree(pid)) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'));
      if (m !== null) bytes += Number(m[1]) * 1024;
    } catch {
      // Gone, or a kernel thread.
    }
  }
  return bytes;
}

/** The 1, 5 and 15 minute load averages, as `uptime` prints them. */
export function loadAverage() {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');
}

export const median = (xs) => percentile([...xs].sort((a, b) => a - b), 50);
export const mib = (bytes) => (bytes / 2 ** 20).toFixed(1);

/** Headless Chromium for a benchmark: nothing in the background, no throttling of its timers. */
export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--autoplay-policy=no-user-gesture-required',
  '--disable-background-networking',
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

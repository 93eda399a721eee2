import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** How a child process ended. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A child process whose output is kept (the last lines only) and which dies with this process. */
export interface Child {
  readonly process: ChildProcess;
  readonly pid: number;
  /** Resolves once the process has exited and its output pipes are drained. */
  readonly exited: Promise<Exit>;
  /** The last lines the child wrote to stdout and stderr, interleaved as they arrived. */
  tail(): string;
  /** Everything written to stdout, when spawned with `captureStdout`. */
  stdout(): Buffer;
  /** Sends `signal`, then SIGKILL after `graceMs` if the child is still running. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<Exit>;
}

export interface SpawnTrackedOptions extends Pick<SpawnOptions, 'cwd' | 'env'> {
  /** Lines of output kept for error messages (default 40). */
  keepLines?: number;
  /** Kept in memory in full instead of being folded into tail(); default: tail only. */
  captureStdout?: boolean;
  /** Opens an IPC channel (`process.send` in a Node child). */
  ipc?: boolean;
}

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();

/** Set to keep the harness's temporary directories after the process ends (their paths are printed). */
export const KEEP_TEMP_ENV = 'ONAIR_KEEP_TMP';

// Test runners and Playwright end workers with process.exit(), a failed beforeAll can leave a
// server unassigned, and a runner may end a worker with a signal: whatever the way out, a
// server left behind would hold its port and keep writing files, and its directory would stay
// in /tmp. So tracked children die with this process, and its temporary directories go.
// Failure messages carry what they need from those directories (nginx's error log, say).
function cleanUp(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
  if (tempDirs.size === 0) return;
  if (process.env[KEEP_TEMP_ENV]) {
    process.stderr.write(`${KEEP_TEMP_ENV} is set; kept ${[...tempDirs].join(' ')}\n`);
  } else {
    // A child killed a moment ago may still be creating a file: retry on ENOTEMPTY.
    for (const dir of tempDirs) {
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
      } catch {
        // the next run's cleanup cannot find it either; nothing more to do at exit
      }
    }
  }
  tempDirs.clear();
}
process.on('exit', cleanUp);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    cleanUp();
    // Alone, this listener would swallow the signal: let the default action end the process.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}

/** A new directory under the system's temporary directory, removed when this process ends. */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/** Removes a directory made by makeTempDir now (unless ONAIR_KEEP_TMP is set). */
export function removeTempDir(dir: string): void {
  if (process.env[KEEP_TEMP_ENV]) return;
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Makes `child` die with this process; forgotten once it exits. */
export function trackChild(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}

class LineTail {
  readonly #keep: number;
  readonly #lines: string[] = [];
  #partial = '';

  constructor(keep: number) {
    this.#keep = keep;
  }

  push(chunk: Buffer): void {
    const parts = (this.#partial + chunk.toString('utf8')).split('\n');
    this.#partial = parts.pop() ?? '';
    for (const line of parts) {
      this.#lines.push(line);
      if (this.#lines.length > this.#keep) this.#lines.shift();
    }
  }

  text(): string {
    return [...this.#lines, ...(this.#partial === '' ? [] : [this.#partial])].join('\n');
  }
}

/** Spawns `command` with piped output; the process is killed when the test process exits. */
export function spawnTracked(command: string, args: readonly string[], options: SpawnTrackedOptions = {}): Child {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: options.ipc === true ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  trackChild(child);
  const tail = new LineTail(options.keepLines ?? 40);
  const stdoutChunks: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => {
    if (options.captureStdout === true) stdoutChunks.push(chunk);
    else tail.push(chunk);
  });
  child.stderr?.on('data', (chunk: Buffer) => tail.push(chunk));

  const exited = new Promise<Exit>((resolve, reject) => {
    child.once('error', (err) => {
      reject(new Error(`${command}: ${err.message}`, { cause: err }));
    });
    child.once('close', (code, signal) => {
      resolve({ code, signal });
    });
  });
  // Callers that never await `exited` (a server that is only stopped) must not see an
  // unhandled rejection when the command is missing; the error also surfaces through stop().
  exited.catch(() => undefined);

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<Exit> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    }
    return exited;
  };

  return {
    process: child,
    pid: child.pid ?? -1,
    exited,
    tail: () => tail.text(),
    stop,
    stdout: () => Buffer.concat(stdoutChunks),
  };
}

/** Runs a command to completion; throws with its last output lines when it fails. */
export async function runChecked(
  command: string,
  args: readonly string[],
  options: SpawnTrackedOptions & { timeoutMs?: number } = {},
): Promise<Buffer> {
  const child = spawnTracked(command, args, options);
  const timer = setTimeout(() => child.process.kill('SIGKILL'), options.timeoutMs ?? 120_000);
  try {
    const exit = await child.exited;
    if (exit.code !== 0) {
      throw new Error(`${command} ${args.join(' ')} exited with ${exit.code ?? exit.signal}:\n${child.tail()}`);
    }
    return child.stdout();
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until it returns a value other than undefined, or throws `what` timed out. */
export async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

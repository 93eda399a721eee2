import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './fixtures.js';
import { trackChild } from './proc.js';

export const ONAIR_BIN = join(REPO_ROOT, 'bridge', 'bin', 'onair.mjs');

export interface OnairResult {
  /** Exit status; null when killed by a signal (e.g. the timeout). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

export interface OnairRunOptions {
  /** Added to the environment (e.g. NODE_EXTRA_CA_CERTS). */
  env?: Record<string, string>;
  /** SIGKILL after this long (default 30 s); `timedOut` is then true. */
  timeoutMs?: number;
}

export interface OnairProcess {
  readonly process: ChildProcess;
  /** Resolves when the CLI exits (or is killed at the timeout). */
  readonly result: Promise<OnairResult>;
  /** stderr so far, e.g. to wait for a "publishing" line. */
  stderr(): string;
  kill(signal?: NodeJS.Signals): void;
}

const running = new Set<OnairProcess>();

/** Starts `node bridge/bin/onair.mjs ...args` capturing stdout (bytes) and stderr (text). */
export function startOnair(args: readonly string[], options: OnairRunOptions = {}): OnairProcess {
  const started = Date.now();
  const child = spawn(process.execPath, [ONAIR_BIN, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackChild(child);
  const out: Buffer[] = [];
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8');
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? 30_000);
  const handle: OnairProcess = {
    process: child,
    result: new Promise<OnairResult>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        running.delete(handle);
        resolve({ code, signal, stdout: Buffer.concat(out), stderr: err, timedOut, ms: Date.now() - started });
      });
    }),
    stderr: () => err,
    kill: (signal = 'SIGTERM') => {
      child.kill(signal);
    },
  };
  running.add(handle);
  return handle;
}

/** Runs the CLI to completion. */
export function runOnair(args: readonly string[], options: OnairRunOptions = {}): Promise<OnairResult> {
  return startOnair(args, options).result;
}

/** Kills every CLI process this harness started that is still running; call after each test. */
export async function killOnairProcesses(): Promise<void> {
  const left = [...running];
  for (const p of left) p.kill('SIGKILL');
  await Promise.all(left.map((p) => p.result.catch(() => undefined)));
}

/** A one-line description of a result, for assertion messages. */
export function describeResult(r: OnairResult): string {
  const how = r.timedOut ? 'timed out' : r.code !== null ? `exit ${r.code}` : `signal ${r.signal}`;
  return `onair ${how} after ${r.ms} ms; stderr:\n${r.stderr}`;
}

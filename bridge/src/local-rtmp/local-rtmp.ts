import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { backoffMs, OnairError, type Backoff } from '@onair/shared';
import { isLoopbackHost, isWildcardHost, urlHost } from '../server/policy.js';
import { EXIT_FATAL, EXIT_LISTEN, INGEST_APP, isChildMessage, type ChildConfig, type ParentMessage } from './messages.js';

// Always the compiled child from bridge/dist, whether this module runs from there or (under
// vitest) from bridge/src: both lie two levels below bridge/.
const CHILD_SCRIPT = fileURLToPath(new URL('../../dist/local-rtmp/child.js', import.meta.url));

export type LocalRtmpState = 'starting' | 'up' | 'restarting' | 'stopped';

/** How the last child process ended without being asked to. */
export interface LocalRtmpExit {
  code: number | null;
  signal: string | null;
  /** The uncaught error, the listen failure, or else the last line it wrote (stream keys redacted). */
  reason: string;
  /** ISO 8601. */
  at: string;
  /** How long it had been listening (0: it never did). */
  upMs: number;
}

/** The embedded server's state, for operators (`/metrics.json`). */
export interface LocalRtmpStatus {
  state: LocalRtmpState;
  pid: number | null;
  /** Child processes started after the first one. */
  restarts: number;
  lastExit: LocalRtmpExit | null;
  /** Publishes refused because their stream key is not allowed, since the bridge started. */
  refusedPublishes: number;
  /** Plays refused because the player is not on this machine (listening beyond loopback). */
  refusedPlays: number;
}

export interface LocalRtmpOptions {
  /** Listen address (default 127.0.0.1); `0.0.0.0` or `::` for every interface. */
  host?: string;
  /** 0 picks a free port once; restarts keep it. */
  port: number;
  /**
   * The stream keys allowed to publish (in app `live`), as setPublishKeys takes them. Default:
   * any key (null) when the server listens on loopback only, none ([]) otherwise: beyond loopback
   * it is never an open relay unless told so.
   */
  publishKeys?: readonly string[] | null;
  /** Keys the bridge itself publishes with (the studio's default key): allowed whatever the publish keys are. */
  bridgeKeys?: readonly string[];
  /** Lines for the operator: a crash, a restart, and with `verbose` node-media-server's own log. */
  log: (line: string) => void;
  verbose: boolean;
  /** Delay before each restart after a crash. */
  restart?: Backoff;
  /** Once a child has stayed up this long, the next crash restarts it after the first delay again. */
  stableMs?: number;
}

/** A quick first restart (a one-off crash), then slower ones while it keeps crashing. */
export const DEFAULT_RESTART: Backoff = { firstMs: 200, baseMs: 1000, factor: 2, maxMs: 30_000, jitter: 0.2 };
const DEFAULT_STABLE_MS = 60_000;
const START_TIMEOUT_MS = 15_000;
// The child of an onair that was just killed exits a moment after it (when its IPC channel
// closes): a new onair started at once on the same port waits this long for the port.
const START_PORT_WAIT_MS = 2000;
const START_PORT_RETRY_MS = 250;
const STOP_GRACE_MS = 3000;
const TAIL_LINES = 40;
const MAX_LINE_CHARS = 1000;
const DEFAULT_HOST = '127.0.0.1';
/** node-media-server closes a session whose stream name has other characters. */
const KEY_PATTERN = /^[A-Za-z0-9_-]{1,256}$/;
/** A bound on the key list sent to the child on every change. */
export const MAX_PUBLISH_KEYS = 4096;

/**
 * node-media-server logs stream paths (`/live/<key>`): keep the first segment of every absolute
 * path and hide the rest, so no stream key reaches a log or an error message.
 */
export function redactPaths(line: string): string {
  return line.replace(/(^|[\s'"(=,:])(\/[^\s/'"]+\/)[^\s'",)]+/g, '$1$2***');
}

/**
 * The embedded RTMP server: node-media-server 4, without HTTP, in a child process (child.ts) that
 * this class supervises. A crash of the child (node-media-server throws on some malformed input)
 * or a failure to listen is the child's end, not the bridge's: it is restarted after a backoff,
 * and `onUp` listeners hear when it is back. The child exits when the bridge does, even when the
 * bridge is killed (its IPC channel closes).
 *
 * It is also the gate of an ingest: only the publish keys set here may publish (in app `live`),
 * in every child it starts; listening beyond loopback, only this machine may play (the bridge's
 * watch pages are for everyone else).
 */
export class LocalRtmp {
  #port: number;
  readonly #host: string;
  readonly #opts: LocalRtmpOptions;
  #publishKeys: readonly string[] | null;
  readonly #bridgeKeys: readonly string[];
  #refusedPublishes = 0;
  #refusedPlays = 0;
  readonly #restartPolicy: Backoff;
  readonly #root: string;
  readonly #tail: string[] = [];
  readonly #up = new Set<() => void>();
  readonly #holds = new Map<string, () => void>();
  #warm: ((app: string, stream: string) => () => void) | undefined;
  #child: ChildProcess | undefined;
  #runs = 0;
  #wasUp = false;
  #state: LocalRtmpState = 'starting';
  #restarts = 0;
  #failures = 0;
  #lastExit: LocalRtmpExit | null = null;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #stableTimer: ReturnType<typeof setTimeout> | undefined;
  #closing: Promise<void> | undefined;
  readonly #killOnExit = (): void => void this.#child?.kill('SIGKILL');

  private constructor(opts: LocalRtmpOptions, keys: { publish: readonly string[] | null; bridge: readonly string[] }, root: string) {
    this.#port = opts.port;
    this.#host = opts.host ?? DEFAULT_HOST;
    this.#opts = opts;
    this.#publishKeys = keys.publish;
    this.#bridgeKeys = keys.bridge;
    this.#restartPolicy = opts.restart ?? DEFAULT_RESTART;
    this.#root = root;
  }

  /** Starts the child and resolves once it listens; PORT_IN_USE when it cannot, LOCAL_RTMP_FAILED otherwise, a RangeError for bad keys. */
  static async start(opts: LocalRtmpOptions): Promise<LocalRtmp> {
    // Bad keys are refused before anything is made.
    const keys = {
      publish: checkKeys(opts.publishKeys !== undefined ? opts.publishKeys : isLoopbackHost(opts.host ?? DEFAULT_HOST) ? null : []),
      bridge: checkKeys(opts.bridgeKeys ?? []) ?? [],
    };
    const local = new LocalRtmp(opts, keys, await mkdtemp(join(tmpdir(), 'onair-nms-')));
    process.on('exit', local.#killOnExit);
    const deadline = performance.now() + START_PORT_WAIT_MS;
    for (;;) {
      try {
        await local.#launch();
        return local;
      } catch (err) {
        if (err instanceof OnairError && err.code === 'PORT_IN_USE' && performance.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, START_PORT_RETRY_MS));
          continue;
        }
        await local.close();
        throw err;
      }
    }
  }

  get port(): number {
    return this.#port;
  }

  /** The listen address. */
  get host(): string {
    return this.#host;
  }

  /**
   * Where the bridge itself connects: loopback when the server listens on every interface or on
   * loopback, the listen address otherwise.
   */
  get dialHost(): string {
    return isWildcardHost(this.#host) ? DEFAULT_HOST : this.#host;
  }

  /** `rtmp://<dialHost>:<port>/live`: what the bridge publishes to and plays from. */
  get url(): string {
    return `rtmp://${urlHost(this.dialHost)}:${this.#port}/${INGEST_APP}`;
  }

  /** True when any stream key may publish. */
  get open(): boolean {
    return this.#publishKeys === null;
  }

  /**
   * Which stream keys may publish from now on, in app `live` (null: any key in any app). Exact
   * strings of A–Z, a–z, 0–9, `_` and `-` (1–256 characters; node-media-server refuses other
   * names anyway), at most MAX_PUBLISH_KEYS. A publisher whose key is taken away is disconnected.
   * The keys and the bridge's own keys hold in every child process, restarts included.
   */
  setPublishKeys(keys: readonly string[] | null): void {
    this.#publishKeys = checkKeys(keys);
    this.#sendKeys(this.#child);
  }

  status(): LocalRtmpStatus {
    const live = this.#state === 'up' || this.#state === 'starting';
    return {
      state: this.#state,
      pid: live ? (this.#child?.pid ?? null) : null,
      restarts: this.#restarts,
      lastExit: this.#lastExit,
      refusedPublishes: this.#refusedPublishes,
      refusedPlays: this.#refusedPlays,
    };
  }

  /** Calls `fn` every time a restarted child listens again; returns the unsubscribe. */
  onUp(fn: () => void): () => void {
    this.#up.add(fn);
    return () => void this.#up.delete(fn);
  }

  /**
   * Calls `warm(app, stream)` for every stream published here and its release when the publish
   * ends or the child dies. node-media-server emits postPublish again when a publisher resumes
   * within its grace window, and for a second publisher it then refuses: one warm hold per stream
   * path.
   */
  warmPublished(warm: (app: string, stream: string) => () => void): void {
    this.#warm = warm;
  }

  /** The last lines the child wrote (stream keys redacted), for error messages. */
  tail(): string {
    return this.#tail.join('\n');
  }

  /** Stops the child (cleanly, SIGKILL after 3 s) and any pending restart. */
  close(): Promise<void> {
    this.#closing ??= this.#stop();
    return this.#closing;
  }

  async #stop(): Promise<void> {
    clearTimeout(this.#restartTimer);
    clearTimeout(this.#stableTimer);
    this.#up.clear();
    this.#warm = undefined;
    this.#releaseHolds();
    const child = this.#child;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        const kill = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
        child.once('close', () => {
          clearTimeout(kill);
          resolve();
        });
        const stop: ParentMessage = { type: 'stop' };
        if (child.connected) child.send(stop, (err) => err && child.kill('SIGKILL'));
        else child.kill('SIGKILL');
      });
    }
    this.#state = 'stopped';
    process.off('exit', this.#killOnExit);
    await rm(this.#root, { recursive: true, force: true });
  }

  get #closed(): boolean {
    return this.#closing !== undefined;
  }

  /** One child process; resolves when it listens, rejects if it ends before. */
  #launch(): Promise<void> {
    const store = join(this.#root, `run-${++this.#runs}`);
    const config: ChildConfig = { host: this.#host, port: this.#port, store };
    const child = spawn(process.execPath, [CHILD_SCRIPT, JSON.stringify(config)], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // A process group of its own: Ctrl-C in a terminal goes to the bridge, which stops it in order.
      detached: true,
    });
    this.#child = child;
    this.#readLines(child.stdout);
    this.#readLines(child.stderr);
    // The child listens only once it has the keys: no moment without the gate.
    this.#sendKeys(child);
    const started = performance.now();
    let upAt: number | undefined;
    let fatal: string | undefined;
    let listenFailed: string | undefined;
    let spawnError: Error | undefined;
    let timedOut = false;
    return new Promise<void>((resolve, reject) => {
      const startTimer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, START_TIMEOUT_MS);
      child.on('message', (m: unknown) => {
        if (!isChildMessage(m)) return;
        switch (m.type) {
          case 'ready':
            clearTimeout(startTimer);
            upAt = performance.now();
            this.#ready(m.port);
            resolve();
            break;
          case 'listen-failed':
            listenFailed = m.code;
            break;
          case 'fatal':
            fatal = redactPaths(m.error);
            break;
          case 'published':
            if (this.#warm !== undefined && !this.#holds.has(m.path)) this.#holds.set(m.path, this.#warm(m.app, m.stream));
            break;
          case 'unpublished':
            this.#holds.get(m.path)?.();
            this.#holds.delete(m.path);
            break;
          case 'refused':
            if (m.what === 'publish') this.#refusedPublishes++;
            else this.#refusedPlays++;
            if (this.#opts.verbose) this.#opts.log(`local RTMP server refused a ${m.what} from ${m.client} (${m.what === 'publish' ? 'stream key not allowed' : 'not on this machine'})`);
            break;
        }
      });
      let ended = false;
      const end = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (ended) return;
        ended = true;
        clearTimeout(startTimer);
        clearTimeout(this.#stableTimer);
        if (this.#child === child) this.#child = undefined;
        this.#releaseHolds();
        rm(store, { recursive: true, force: true }).catch(() => undefined);
        if (this.#closed) {
          if (upAt === undefined) reject(new OnairError('LOCAL_RTMP_FAILED', 'the local RTMP server was stopped while starting'));
          return;
        }
        const where = `${urlHost(this.#host)}:${this.#port}`;
        let reason: string;
        if (listenFailed !== undefined) reason = `cannot listen on ${where} (${listenFailed})`;
        else if (fatal !== undefined) reason = fatal;
        else if (timedOut) reason = `did not listen on ${where} within ${START_TIMEOUT_MS / 1000} s`;
        else if (spawnError !== undefined) reason = spawnError.message;
        else reason = this.#tail.at(-1) ?? 'no output';
        this.#lastExit = { code, signal, reason, at: new Date().toISOString(), upMs: upAt === undefined ? 0 : Math.round(performance.now() - upAt) };
        if (upAt !== undefined) {
          this.#scheduleRestart();
        } else if (listenFailed !== undefined) {
          reject(new OnairError('PORT_IN_USE', `cannot use ${where} for the local RTMP server (${listenFailed}); pick another with --local-rtmp-port or --no-local-rtmp`));
        } else {
          const ms = Math.round(performance.now() - started);
          reject(new OnairError('LOCAL_RTMP_FAILED', `the local RTMP server ${describeExit(this.#lastExit)} after ${ms} ms${this.#tail.length > 0 ? `; its last lines:\n${this.tail()}` : ''}`));
        }
      };
      child.once('close', end);
      child.once('error', (err) => {
        spawnError = err;
        // No process was made: no 'close' is coming.
        if (child.pid === undefined) end(null, null);
      });
    });
  }

  #ready(port: number): void {
    this.#port = port;
    this.#state = 'up';
    this.#stableTimer = setTimeout(() => (this.#failures = 0), this.#opts.stableMs ?? DEFAULT_STABLE_MS);
    this.#stableTimer.unref();
    if (!this.#wasUp) {
      this.#wasUp = true;
      return;
    }
    this.#opts.log(`local RTMP server is back on ${urlHost(this.#host)}:${port} (restart ${this.#restarts})`);
    for (const fn of this.#up) {
      try {
        fn();
      } catch (err) {
        this.#opts.log(`local RTMP server: a listener failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }

  #scheduleRestart(): void {
    const delay = backoffMs(this.#failures++, this.#restartPolicy);
    this.#state = 'restarting';
    this.#opts.log(`local RTMP server ${this.#lastExit === null ? 'ended' : describeExit(this.#lastExit)}; restarting in ${(delay / 1000).toFixed(1)} s`);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#closed) return;
      this.#restarts++;
      // A failure before listening (the port taken meanwhile, say) is recorded in lastExit; try again.
      this.#launch().catch(() => {
        if (!this.#closed) this.#scheduleRestart();
      });
    }, delay);
  }

  #sendKeys(child: ChildProcess | undefined): void {
    if (child === undefined || !child.connected) return;
    const keys = this.#publishKeys === null ? null : [...new Set([...this.#publishKeys, ...this.#bridgeKeys])];
    const message: ParentMessage = { type: 'publish-keys', keys };
    // A child whose channel fails is on its way out; the next one gets the keys at its start.
    child.send(message, (err) => err && child.kill('SIGKILL'));
  }

  #releaseHolds(): void {
    const releases = [...this.#holds.values()];
    this.#holds.clear();
    for (const release of releases) release();
  }

  #readLines(stream: Readable | null): void {
    if (stream === null) return;
    stream.setEncoding('utf8');
    let partial = '';
    stream.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = (lines.pop() ?? '').slice(0, MAX_LINE_CHARS);
      for (const raw of lines) {
        const line = redactPaths(raw.trimEnd().slice(0, MAX_LINE_CHARS));
        if (line === '') continue;
        this.#tail.push(line);
        if (this.#tail.length > TAIL_LINES) this.#tail.shift();
        if (this.#opts.verbose) this.#opts.log(`local RTMP: ${line}`);
      }
    });
    stream.on('error', () => undefined);
  }
}

function checkKeys(keys: readonly string[] | null): readonly string[] | null {
  if (keys === null) return null;
  if (keys.length > MAX_PUBLISH_KEYS) throw new RangeError(`${keys.length} publish keys, more than ${MAX_PUBLISH_KEYS}`);
  // The message names the position, never the key.
  const bad = keys.findIndex((k) => typeof k !== 'string' || !KEY_PATTERN.test(k));
  if (bad !== -1) throw new RangeError(`publish key #${bad + 1} is not 1-256 characters of A-Z, a-z, 0-9, _ and -`);
  return [...keys];
}

function describeExit(exit: LocalRtmpExit): string {
  const how = exit.signal !== null ? `was killed by ${exit.signal}` : exit.code === EXIT_FATAL ? 'crashed' : exit.code === EXIT_LISTEN ? 'could not listen' : `exited with status ${exit.code ?? '?'}`;
  return `${how} (${exit.reason})`;
}

import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitForPort } from './ports.js';
import { makeTempDir, removeTempDir, spawnTracked, waitFor } from './proc.js';

export interface NodeMediaServerOptions {
  /** NMS's own recorder: every published stream is also written to `recordDir` (default false). */
  record?: boolean;
  /**
   * How long NMS keeps a publish alive after its publisher disconnected, so that the same client
   * can resume it (timestamps continued). NMS's default is 30 s; the stream, and its recording,
   * end only after it. 0 ends them as soon as the publisher leaves.
   */
  publishGraceMs?: number;
}

export interface NodeMediaServerHandle {
  readonly rtmpPort: number;
  /** Temporary directory holding NMS's store (and `record/` when recording). */
  readonly dir: string;
  readonly recordDir?: string;
  /** `rtmp://127.0.0.1:<rtmpPort>/<app>/<name>` */
  url(app: string, name: string): string;
  /** Files NMS recorded for `app/name`, oldest first (names are start times in ms). */
  recordings(app: string, name: string): string[];
  /**
   * Resolves with the path of the recording of `app/name` once NMS has closed it (the last one if
   * the name was published more than once), which is `publishGraceMs` after the publisher left.
   */
  recordingDone(app: string, name: string, timeoutMs?: number): Promise<string>;
  /** The last lines NMS logged: its logger is chatty, so output is kept only for errors. */
  tail(): string;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and removes its directory. */
  stop(): Promise<void>;
}

const childScript = join(dirname(fileURLToPath(import.meta.url)), 'nms-child.mjs');

/** Starts node-media-server 4 in a child process on a free loopback port; no HTTP. */
export async function startNodeMediaServer(options: NodeMediaServerOptions = {}): Promise<NodeMediaServerHandle> {
  // Fail here, with the reason, rather than as a child that exits at once.
  createRequire(import.meta.url).resolve('node-media-server');
  const dir = makeTempDir('onair-nms-');
  const rtmpPort = await freePort();
  const recordDir = options.record === true ? join(dir, 'record') : undefined;
  const config = {
    bind: '127.0.0.1',
    rtmp: { port: rtmpPort },
    store: { path: join(dir, 'store') },
    ...(recordDir !== undefined ? { record: { path: recordDir } } : {}),
    ...(options.publishGraceMs !== undefined ? { publishGraceMs: options.publishGraceMs } : {}),
  };
  const child = spawnTracked(process.execPath, [childScript, JSON.stringify(config)], { cwd: dir, keepLines: 60, ipc: true });
  const recorded = new Map<string, string>();
  child.process.on('message', (m: { event?: string; streamPath?: string; filePath?: string }) => {
    if (m.event === 'doneRecord' && m.streamPath !== undefined && m.filePath !== undefined) recorded.set(m.streamPath, resolve(dir, m.filePath));
  });
  try {
    await waitForPort(rtmpPort, 10_000, () => child.process.exitCode === null);
  } catch (err) {
    await child.stop('SIGKILL');
    removeTempDir(dir);
    throw new Error(`node-media-server did not start: ${(err as Error).message}\n${child.tail()}`, { cause: err });
  }
  let stopped: Promise<void> | undefined;
  return {
    rtmpPort,
    dir,
    ...(recordDir !== undefined ? { recordDir } : {}),
    url: (app, name) => `rtmp://127.0.0.1:${rtmpPort}/${app}/${name}`,
    recordings: (app, name) => {
      if (recordDir === undefined) throw new Error('node-media-server was started without record: true');
      const streamDir = join(recordDir, app, name);
      if (!existsSync(streamDir)) return [];
      return readdirSync(streamDir).filter((f) => f.endsWith('.flv')).sort().map((f) => join(streamDir, f));
    },
    recordingDone: (app, name, timeoutMs = 10_000) => {
      if (recordDir === undefined) throw new Error('node-media-server was started without record: true');
      return waitFor(`node-media-server to finish recording /${app}/${name}`, () => recorded.get(`/${app}/${name}`), timeoutMs).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}\nnode-media-server, last lines:\n${child.tail()}`, { cause: err });
      });
    },
    tail: () => child.tail(),
    stop: () => {
      stopped ??= child.stop('SIGTERM', 5_000).then(() => removeTempDir(dir));
      return stopped;
    },
  };
}

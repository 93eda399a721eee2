import { join } from 'node:path';
import { REPO_ROOT } from '../../bridge/test/harness/fixtures.js';
import { freePort, waitForPort } from '../../bridge/test/harness/ports.js';
import { spawnTracked, type Child } from '../../bridge/test/harness/proc.js';

export interface Bridge {
  /** http://127.0.0.1:<port>/ */
  readonly url: string;
  readonly port: number;
  readonly localRtmpPort: number;
  readonly child: Child;
  stop(): Promise<void>;
  /** SIGKILL: the bridge dies without closing its sockets; resolves once it is gone. */
  kill(): Promise<void>;
}

/**
 * Runs `onair serve` as a child on free ports (HTTP and the embedded RTMP server), or on the
 * given ones to stand in for a bridge that was restarted.
 */
export async function startBridge(extraArgs: readonly string[] = [], ports: { port?: number; localRtmpPort?: number } = {}): Promise<Bridge> {
  const port = ports.port ?? (await freePort());
  const localRtmpPort = ports.localRtmpPort ?? (await freePort());
  const child = spawnTracked(process.execPath, [join(REPO_ROOT, 'bridge', 'bin', 'onair.mjs'), 'serve', '--port', String(port), '--local-rtmp-port', String(localRtmpPort), ...extraArgs], {
    cwd: REPO_ROOT,
    keepLines: 200,
  });
  const running = (): boolean => child.process.exitCode === null && child.process.signalCode === null;
  try {
    // The first start may compile the bridge.
    await waitForPort(port, 60_000, running);
    await waitForPort(localRtmpPort, 10_000, running);
  } catch (err) {
    await child.stop('SIGKILL');
    throw new Error(`onair serve did not start: ${(err as Error).message}\n${child.tail()}`, { cause: err });
  }
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    localRtmpPort,
    child,
    async stop() {
      // SIGINT stops at once; SIGTERM would drain, waiting for live studio sessions (docs/operations.md).
      const exit = await child.stop('SIGINT', 10_000);
      if (exit.code !== 0) throw new Error(`onair serve exited with ${exit.code ?? exit.signal}:\n${child.tail()}`);
    },
    async kill() {
      await child.stop('SIGKILL');
    },
  };
}

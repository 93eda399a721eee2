import { createConnection, createServer } from 'node:net';
import { waitFor } from './proc.js';

/**
 * A loopback TCP port that was free a moment ago (the kernel picks it). Another process can
 * take it before the caller binds; the window is small and ports are not reused quickly.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port assigned'));
      });
    });
  });
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Waits until 127.0.0.1:`port` accepts connections. */
export async function waitForPort(port: number, timeoutMs = 10_000, isAlive: () => boolean = () => true): Promise<void> {
  await waitFor(`127.0.0.1:${port} to accept connections`, async () => {
    if (!isAlive()) throw new Error(`the server for port ${port} exited before it listened`);
    return (await accepts(port)) ? true : undefined;
  }, timeoutMs);
}

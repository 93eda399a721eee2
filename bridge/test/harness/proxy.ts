import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on a free loopback port in front of `127.0.0.1:<targetPort>`, for chaos tests: it
 * can reset every connection and refuse new ones, stop forwarding without a word (a blackhole, as
 * a dead Wi-Fi link looks to both ends), or hold the target's bytes and release them in bursts (as
 * SRS's merged writes arrive at a player).
 */
export interface ChaosProxy {
  readonly port: number;
  /** Connections accepted and passed on so far. */
  readonly accepted: number;
  /** Connections open right now. */
  readonly open: number;
  /**
   * Resets every open connection (RST to both ends) and, for `refuseMs`, resets new ones as soon as
   * they are accepted. Resolves when the refusal window is over.
   */
  reset(refuseMs?: number): Promise<void>;
  /**
   * Stops reading from and writing to both ends of every connection (and of connections made
   * meanwhile) for `ms`: the peers see no error, only silence; their kernel buffers fill and their
   * writes wait. Everything held is delivered afterwards, in order, as TCP would.
   */
  blackhole(ms: number): Promise<void>;
  /** The same as a blackhole, until `pause(false)`. */
  pause(on: boolean): void;
  /** Holds bytes from the target and releases them every `everyMs` (0: pass at once again). */
  burst(everyMs: number): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  target: Socket;
  held: Buffer[];
}

export async function startChaosProxy(targetPort: number): Promise<ChaosProxy> {
  const pairs = new Set<Pair>();
  let accepted = 0;
  let refuseUntil = 0;
  let paused = false;
  let burstMs = 0;
  let burstTimer: NodeJS.Timeout | undefined;

  const silent = (): boolean => paused;
  const drop = (p: Pair): void => {
    pairs.delete(p);
    p.client.destroy();
    p.target.destroy();
  };
  const release = (p: Pair): void => {
    for (const chunk of p.held.splice(0)) p.client.write(chunk);
  };

  const pause = (on: boolean): void => {
    paused = on;
    for (const p of pairs) {
      if (on) {
        p.client.pause();
        p.target.pause();
      } else {
        p.client.resume();
        p.target.resume();
        if (burstMs === 0) release(p);
      }
    }
  };

  const server: Server = createServer((client) => {
    client.on('error', () => undefined);
    if (Date.now() < refuseUntil) {
      client.resetAndDestroy();
      return;
    }
    accepted++;
    client.pause();
    const target = createConnection({ host: '127.0.0.1', port: targetPort });
    const pair: Pair = { client, target, held: [] };
    pairs.add(pair);
    target.on('error', () => drop(pair));
    client.on('error', () => drop(pair));
    client.on('close', () => drop(pair));
    target.on('close', () => drop(pair));
    target.on('connect', () => {
      if (!silent()) client.resume();
    });
    client.on('data', (chunk) => target.write(chunk));
    target.on('data', (chunk) => {
      if (burstMs > 0 || silent()) pair.held.push(chunk);
      else client.write(chunk);
    });
    if (silent()) target.pause();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('proxy: no port');

  return {
    port: address.port,
    get accepted() {
      return accepted;
    },
    get open() {
      return pairs.size;
    },
    async reset(refuseMs = 0) {
      refuseUntil = Date.now() + refuseMs;
      for (const p of [...pairs]) {
        pairs.delete(p);
        p.client.resetAndDestroy();
        p.target.resetAndDestroy();
      }
      if (refuseMs > 0) await new Promise((r) => setTimeout(r, refuseMs));
    },
    async blackhole(ms) {
      pause(true);
      await new Promise((r) => setTimeout(r, ms));
      pause(false);
    },
    pause,
    burst(everyMs) {
      burstMs = everyMs;
      clearInterval(burstTimer);
      burstTimer = undefined;
      if (everyMs > 0) {
        burstTimer = setInterval(() => {
          if (!silent()) for (const p of pairs) release(p);
        }, everyMs);
      } else {
        for (const p of pairs) release(p);
      }
    },
    async close() {
      clearInterval(burstTimer);
      for (const p of [...pairs]) drop(p);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

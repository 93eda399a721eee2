import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** Bytes waiting in the proxy before it stops reading the client: the slow link's own buffer. */
const MAX_QUEUED_BYTES = 64 * 1024;
const TICK_MS = 10;
/** Tokens saved up at most: this long at the rate (a short burst, as a real link allows). */
const BURST_MS = 50;
/** The smallest burst, so one large TCP segment can always pass. */
const MIN_BURST_BYTES = 16 * 1024;

export interface ThrottleProxy {
  readonly port: number;
  /** http://127.0.0.1:<port>/ */
  readonly url: string;
  /** Limits the client→server direction to `bps` bits per second from now on; undefined: no limit. */
  setRate(bps: number | undefined): void;
  /** Bytes that went from clients to the server, all connections. */
  readonly forwarded: number;
  close(): Promise<void>;
}

/**
 * A TCP proxy on loopback in front of `targetPort` whose client→server direction is a token bucket
 * (a slow uplink: the studio page to the bridge, or the bridge to one RTMP server); the other
 * direction passes as it comes. It reads no faster than it forwards, so the sender's socket backs
 * up as it would on a slow network. Every connection's sockets get error handlers before any write.
 */
export async function startThrottleProxy(targetPort: number): Promise<ThrottleProxy> {
  let rate: number | undefined;
  let forwarded = 0;
  const pairs = new Set<{ client: Socket; server: Socket; stop(): void }>();

  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    const queue: Buffer[] = [];
    let queued = 0;
    let tokens = 0;
    let last = performance.now();
    const close = (): void => {
      clearInterval(timer);
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
    const pump = (): void => {
      const now = performance.now();
      if (rate === undefined) tokens = Infinity;
      else {
        const burst = Math.max(MIN_BURST_BYTES, (rate / 8) * (BURST_MS / 1000));
        tokens = Math.min(burst, (Number.isFinite(tokens) ? tokens : 0) + (rate / 8) * ((now - last) / 1000));
      }
      last = now;
      while (queue.length > 0 && tokens >= 1) {
        const head = queue[0]!;
        const n = Math.min(head.length, Math.floor(tokens));
        upstream.write(n === head.length ? head : head.subarray(0, n));
        if (n === head.length) queue.shift();
        else queue[0] = head.subarray(n);
        queued -= n;
        tokens -= n;
        forwarded += n;
      }
      if (queued < MAX_QUEUED_BYTES && client.isPaused()) client.resume();
    };
    const timer = setInterval(pump, TICK_MS);
    client.on('data', (chunk: Buffer) => {
      queue.push(chunk);
      queued += chunk.length;
      if (queued >= MAX_QUEUED_BYTES) client.pause();
      if (rate === undefined) pump();
    });
    client.on('end', () => upstream.end());
    upstream.pipe(client);
    const pair = { client, server: upstream, stop: close };
    pairs.add(pair);
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the throttle proxy has no port');
  return {
    port: address.port,
    url: `http://127.0.0.1:${address.port}/`,
    setRate(bps) {
      rate = bps;
    },
    get forwarded() {
      return forwarded;
    },
    async close() {
      for (const pair of pairs) pair.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

import { readFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { FlvReader, type FlvTag } from '@onair/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shortFlv } from '../../test/harness/fixtures.js';
import { startNginxRtmp, type NginxRtmp } from '../../test/harness/nginx.js';
import { startNodeMediaServer, type NodeMediaServerHandle } from '../../test/harness/nms.js';
import { DEFAULT_PUBLISH_ACK_WINDOW } from './ack-window.js';
import { RtmpPublisher } from './publisher.js';
import { failure } from '../../../shared/src/testing/async.js';

// A publisher's two watchdogs against real servers: a server that stops reading must fail the
// session within seconds, and healthy ones (fast, slow, acknowledging or not) must never trip them.

/** Metadata and the two sequence headers: sent once, before the looped media. */
function isConfig(t: FlvTag): boolean {
  return t.type === 18 || ((t.type === 8 || t.type === 9) && t.data[1] === 0);
}

/** The fixture's configuration tags, then its media over and over with timestamps running on. */
function* looped(tags: FlvTag[], seconds: number): Generator<FlvTag> {
  const media = tags.filter((t) => !isConfig(t));
  const period = media.at(-1)!.timestamp + 40;
  yield* tags.filter(isConfig);
  for (let n = 0; ; n++) {
    for (const t of media) {
      const timestamp = t.timestamp + n * period;
      if (timestamp > seconds * 1000) return;
      yield { ...t, timestamp };
    }
  }
}

/**
 * Publishes like the studio's relay for `seconds`: each tag at its time (or as fast as the server
 * takes them with `fast`), waiting while more than `highWater` bytes are queued. Stops early at
 * the first write the session refuses. Resolves with the most bytes that were ever queued.
 */
async function publish(pub: RtmpPublisher, tags: FlvTag[], seconds: number, opts: { fast?: boolean; highWater?: number } = {}): Promise<number> {
  const start = performance.now();
  let maxQueued = 0;
  const highWater = opts.highWater ?? 4 * 1024 * 1024;
  for (const tag of looped(tags, opts.fast ? 3600 : seconds)) {
    if (performance.now() - start > seconds * 1000) break;
    const due = tag.timestamp - (performance.now() - start);
    if (!opts.fast && due > 0) await new Promise((r) => setTimeout(r, due));
    try {
      pub.write(tag);
    } catch {
      break;
    }
    maxQueued = Math.max(maxQueued, pub.bufferedBytes);
    if (pub.bufferedBytes > highWater) await pub.drained();
    else if (opts.fast) await new Promise((r) => setImmediate(r));
  }
  return maxQueued;
}

/** A TCP relay to `targetPort` that reads from its client at most `bytesPerSecond`: a slow link. */
async function throttle(targetPort: number, bytesPerSecond: number): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const target = connect(targetPort, '127.0.0.1');
    for (const s of [client, target]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        client.destroy();
        target.destroy();
      });
    }
    target.on('data', (d) => client.write(d));
    const t0 = performance.now();
    let read = 0;
    client.on('data', (d) => {
      target.write(d);
      read += d.length;
      const ahead = read / bytesPerSecond - (performance.now() - t0) / 1000;
      if (ahead > 0) {
        client.pause();
        setTimeout(() => client.resume(), ahead * 1000);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

let tags: FlvTag[];
let nginx: NginxRtmp;
let nms: NodeMediaServerHandle;

beforeAll(async () => {
  const [file, n, m] = await Promise.all([shortFlv().then((p) => readFile(p)), startNginxRtmp({ record: false }), startNodeMediaServer({ publishGraceMs: 0 })]);
  nginx = n;
  nms = m;
  const reader = new FlvReader();
  tags = [...reader.push(file)];
  reader.end();
}, 60_000);

afterAll(async () => {
  await Promise.all([nginx?.dispose(), nms?.stop()]);
});

describe('a publish whose server stops reading fails within seconds', () => {
  it('nginx-rtmp stopped with SIGSTOP mid-publish: RTMP_ACK_STALLED about 10 s after the stop', async () => {
    const stopped = await startNginxRtmp({ record: false });
    try {
      const pub = await RtmpPublisher.connect(stopped.url('live', 'sekret'));
      let stoppedAt = 0;
      let acksBefore = 0;
      const stopper = setTimeout(() => {
        acksBefore = pub.stats.acksReceived;
        process.kill(stopped.pid, 'SIGSTOP');
        stoppedAt = performance.now();
      }, 3000);
      const sending = publish(pub, tags, 60);
      const err = await failure(pub.closed);
      const afterStop = performance.now() - stoppedAt;
      clearTimeout(stopper);
      await sending;
      expect(stoppedAt).toBeGreaterThan(0);
      // It had been acknowledging every 128 KiB of a 2.5 Mbps stream, about twice a second.
      expect(acksBefore).toBeGreaterThan(4);
      expect(err).toMatchObject({ code: 'RTMP_ACK_STALLED', message: expect.stringContaining('the server stopped acknowledging what we send: none for 10') });
      expect(err.message).not.toContain('sekret');
      // The default 10 s runs from when a window had gone out unacknowledged (a fraction of a
      // second at this bitrate); the kernel's socket buffers would hide the stop far longer.
      expect(afterStop).toBeGreaterThan(10_000);
      expect(afterStop, `failed ${Math.round(afterStop)} ms after the stop`).toBeLessThan(20_000);
    } finally {
      process.kill(stopped.pid, 'SIGCONT');
      await stopped.dispose();
    }
  }, 90_000);
});

describe('healthy publishes never trip the watchdogs (both set to 3 s here, 10 s and 20 s by default)', () => {
  const watchdogs = { ackStallTimeoutMs: 3000, sendStallTimeoutMs: 3000 };

  it('nginx-rtmp acknowledges every window we ask for', async () => {
    const pub = await RtmpPublisher.connect(nginx.url('live', 'healthy'), watchdogs);
    await publish(pub, tags, 6);
    await pub.end();
    const { bytesSent, acksReceived, bytesAcknowledged } = pub.stats;
    expect(bytesSent).toBeGreaterThan(1_500_000);
    // nginx acknowledges each time it has received 128 KiB more: all but the last window.
    expect(acksReceived).toBeGreaterThanOrEqual(Math.floor(bytesSent / DEFAULT_PUBLISH_ACK_WINDOW) - 2);
    expect(bytesAcknowledged).toBeGreaterThan(bytesSent - 2 * DEFAULT_PUBLISH_ACK_WINDOW);
  }, 30_000);

  it('node-media-server never acknowledges: the queue watchdog alone runs, and stays quiet', async () => {
    const pub = await RtmpPublisher.connect(nms.url('live', 'healthy'), watchdogs);
    await publish(pub, tags, 6);
    await pub.end();
    expect(pub.stats.bytesSent).toBeGreaterThan(1_500_000);
    expect(pub.stats.acksReceived).toBe(0);
  }, 30_000);

  it('a slow link to nginx-rtmp (200 kB/s, the publisher always backed up): progress and acknowledgements keep coming', async () => {
    const slow = await throttle(nginx.rtmpPort, 200_000);
    try {
      const pub = await RtmpPublisher.connect(`rtmp://127.0.0.1:${slow.port}/live/slow`, watchdogs);
      let error: Error | undefined;
      pub.closed.catch((err: Error) => (error = err));
      // As fast as it goes: once the kernel's buffers are full, the queue stays near 1 MiB and
      // drains only at the link's pace.
      const maxQueued = await publish(pub, tags, 8, { fast: true, highWater: 1024 * 1024 });
      await new Promise((r) => setImmediate(r));
      expect(error).toBeUndefined();
      expect(maxQueued).toBeGreaterThan(1024 * 1024);
      // About 1.6 MB read by nginx in 8 s: a dozen windows.
      expect(pub.stats.acksReceived).toBeGreaterThan(8);
      pub.destroy();
      await pub.closed;
    } finally {
      await slow.close();
    }
  }, 30_000);
});

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, isIP, type LookupFunction, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, createServer as createTlsServer } from 'node:tls';
import { promisify } from 'node:util';
import { encodeAmf0, type Amf0Value } from '@onair/shared';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChunkReader } from './chunk-reader.js';
import { ChunkWriter } from './chunk-writer.js';
import { decodeCommand } from './commands.js';
import { setChunkSizeMessage } from './messages.js';
import { RtmpPlayer } from './player.js';
import { RtmpPublisher } from './publisher.js';
import { failure } from '../../../shared/src/testing/async.js';

const servers: Server[] = [];
const sockets = new Set<Socket>();

async function listen(server: Server): Promise<number> {
  servers.push(server);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

afterEach(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/**
 * The server's half of the simple handshake, fed each read: answers C0+C1 with S0+S1+S2 once,
 * swallows C2, and returns the bytes past the handshake (chunks) with the new count of handshake bytes.
 */
function serverHandshake(socket: Socket, seen: number, data: Uint8Array): { seen: number; rest: Uint8Array } {
  if (seen >= 1537 + 1536) return { seen, rest: data };
  const now = seen + Math.min(data.length, 1537 + 1536 - seen);
  if (seen < 1537 && now >= 1537) socket.write(new Uint8Array(1 + 1536 * 2).fill(3, 0, 1));
  return { seen: now, rest: data.subarray(now - seen) };
}

/**
 * A minimal RTMP server for one play session: simple handshake, answers connect,
 * createStream and play, then sends `count` video messages of `size` bytes and Play.Stop.
 */
function playServer(count: number, size: number, stop = true): Server {
  return createServer((socket) => {
    const writer = new ChunkWriter();
    const reader = new ChunkReader();
    let handshake = 0;
    const send = (csid: number, type: number, streamId: number, payload: Uint8Array, timestamp = 0): void => {
      socket.write(writer.encode({ csid, type, timestamp, streamId, payload }));
    };
    const cmd = (streamId: number, ...values: Amf0Value[]): void => send(3, 20, streamId, encodeAmf0(values));
    socket.on('data', (data: Buffer) => {
      const step = serverHandshake(socket, handshake, data);
      handshake = step.seen;
      const rest = step.rest;
      for (const m of reader.push(rest)) {
        if (m.type !== 20) continue;
        const c = decodeCommand(m.type, m.payload);
        if (c.name === 'connect') {
          socket.write(writer.encode(setChunkSizeMessage(60000)));
          writer.setChunkSize(60000);
          cmd(0, '_result', c.transactionId, null, { level: 'status', code: 'NetConnection.Connect.Success' });
        } else if (c.name === 'createStream') {
          cmd(0, '_result', c.transactionId, null, 1);
        } else if (c.name === 'play') {
          cmd(1, 'onStatus', 0, null, { level: 'status', code: 'NetStream.Play.Start' });
          for (let i = 0; i < count; i++) {
            const body = new Uint8Array(size).fill(i & 0xff);
            body[0] = 0x27;
            send(6, 9, 1, body, i * 40);
          }
          if (stop) cmd(1, 'onStatus', 0, null, { level: 'status', code: 'NetStream.Play.Stop' });
        }
      }
    });
  });
}

/** A resolver that answers every name with `address`, and remembers what it was asked. */
function resolver(address: string): { lookup: LookupFunction; names: string[] } {
  const names: string[] = [];
  const lookup: LookupFunction = (hostname, options, callback) => {
    names.push(hostname);
    const family = isIP(address);
    setImmediate(() => (options.all ? callback(null, [{ address, family }]) : callback(null, address, family)));
  };
  return { lookup, names };
}

/** A TCP server that counts connections and hangs up on each. */
async function counting(): Promise<{ port: number; connections: () => number }> {
  let n = 0;
  const port = await listen(
    createServer((s) => {
      n++;
      s.destroy();
    }),
  );
  return { port, connections: () => n };
}

function refuseAll(seen: string[]): (address: string) => void {
  return (address) => {
    seen.push(address);
    throw new Error('not on this list');
  };
}

describe('RTMP sessions: checkAddress judges the address actually dialled', () => {
  it('refuses a name resolving to a refused address before connecting, over TCP and TLS, key redacted', async () => {
    const server = await counting();
    const { lookup, names } = resolver('127.0.0.1');
    for (const scheme of ['rtmp', 'rtmps']) {
      const seen: string[] = [];
      const err = await failure(RtmpPublisher.connect(`${scheme}://studio.onair.test:${server.port}/live/sekret`, { lookup, checkAddress: refuseAll(seen) }));
      expect(err).toMatchObject({ code: 'DESTINATION_REFUSED', message: expect.stringContaining('127.0.0.1 (studio.onair.test): not on this list') });
      expect(err.message).toContain(`${scheme}://studio.onair.test:${server.port}/live/***`);
      expect(err.message).not.toContain('sekret');
      expect(seen).toEqual(['127.0.0.1']);
    }
    expect(names).toEqual(['studio.onair.test', 'studio.onair.test']);
    expect(server.connections()).toBe(0);
  });

  it('judges IP literals, which net.connect never looks up, and what the system resolver makes of numeric names', async () => {
    const server = await counting();
    const seen: string[] = [];
    expect(await failure(RtmpPlayer.connect(`rtmp://127.0.0.1:${server.port}/live/k`, { checkAddress: refuseAll(seen) }))).toMatchObject({ code: 'DESTINATION_REFUSED' });
    expect(await failure(RtmpPlayer.connect(`rtmps://[::1]:${server.port}/live/k`, { checkAddress: refuseAll(seen) }))).toMatchObject({ code: 'DESTINATION_REFUSED' });
    // getaddrinfo reads 2130706433 as 127.0.0.1: the check sees the address, not the spelling.
    expect(await failure(RtmpPlayer.connect(`rtmp://2130706433:${server.port}/live/k`, { checkAddress: refuseAll(seen) }))).toMatchObject({ code: 'DESTINATION_REFUSED' });
    expect(seen).toEqual(['127.0.0.1', '::1', '127.0.0.1']);
    expect(server.connections()).toBe(0);
  });

  it('connects when the check passes, having seen the address and family', async () => {
    const port = await listen(playServer(3, 10));
    const { lookup } = resolver('127.0.0.1');
    const seen: [string, number][] = [];
    const player = await RtmpPlayer.connect(`rtmp://studio.onair.test:${port}/live/k`, { lookup, checkAddress: (a, f) => void seen.push([a, f]) });
    let tags = 0;
    for await (const tag of player) if (tag.type === 9) tags++;
    expect(tags).toBe(3);
    expect(seen).toEqual([['127.0.0.1', 4]]);
  });
});

describe('RTMP sessions: connection failures', () => {
  it('RTMP_CONNECT_REFUSED when nothing listens', async () => {
    const port = await listen(createServer());
    await new Promise((r) => servers.pop()!.close(r));
    const err = await failure(RtmpPublisher.connect(`rtmp://127.0.0.1:${port}/live/sekret`));
    expect(err.code).toBe('RTMP_CONNECT_REFUSED');
    expect(err.message).not.toContain('sekret');
  });

  it('RTMP_CONNECT_TIMEOUT when the server never answers the handshake', async () => {
    const port = await listen(createServer(() => undefined));
    const err = await failure(RtmpPlayer.connect(`rtmp://127.0.0.1:${port}/live/sekret`, { connectTimeoutMs: 300 }));
    expect(err).toMatchObject({ code: 'RTMP_CONNECT_TIMEOUT', message: expect.stringContaining('handshake') });
    expect(err.message).not.toContain('sekret');
  });

  it('HANDSHAKE_FAILED for a server that is not RTMP, or that hangs up during the handshake', async () => {
    const http = await listen(createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n')));
    expect(await failure(RtmpPublisher.connect(`rtmp://127.0.0.1:${http}/live/k`))).toMatchObject({ code: 'HANDSHAKE_FAILED' });
    const hangup = await listen(createServer((s) => s.once('data', () => s.destroy())));
    expect(await failure(RtmpPublisher.connect(`rtmp://127.0.0.1:${hangup}/live/k`))).toMatchObject({ code: 'HANDSHAKE_FAILED' });
  });

  it('RTMP_DNS_TIMEOUT after 5 s when the name never resolves (a lookup that never calls back)', async () => {
    const names: string[] = [];
    const never: LookupFunction = (hostname) => void names.push(hostname);
    const t0 = performance.now();
    const [pub, play] = await Promise.all([
      failure(RtmpPublisher.connect('rtmp://studio.onair.test/live/sekret', { lookup: never })),
      // Through the destination check too, as the studio connects.
      failure(RtmpPlayer.connect('rtmps://studio.onair.test/live/sekret', { lookup: never, checkAddress: () => undefined })),
    ]);
    const ms = performance.now() - t0;
    expect(pub).toMatchObject({ code: 'RTMP_DNS_TIMEOUT', message: 'rtmp://studio.onair.test/live/***: studio.onair.test did not resolve within 5000 ms' });
    expect(play).toMatchObject({ code: 'RTMP_DNS_TIMEOUT', message: 'rtmps://studio.onair.test/live/***: studio.onair.test did not resolve within 5000 ms' });
    expect(names).toEqual(['studio.onair.test', 'studio.onair.test']);
    expect(ms).toBeGreaterThan(4900);
    expect(ms).toBeLessThan(9000); // its own answer, before the 10 s connect timeout
  });

  it('TCP keepalive is on for rtmp:// and rtmps:// sockets (ss shows the timer)', async () => {
    const port = await listen(createServer((s) => s.on('error', () => undefined)));
    for (const scheme of ['rtmp', 'rtmps']) {
      const attempt = failure(RtmpPublisher.connect(`${scheme}://127.0.0.1:${port}/live/k`, { connectTimeoutMs: 1000 }));
      let line = '';
      for (let i = 0; i < 50 && line === ''; i++) {
        await new Promise((r) => setTimeout(r, 20));
        const { stdout } = await promisify(execFile)('ss', ['-tnoH', 'state', 'established', `( dport = :${port} )`]);
        line = stdout.trim();
      }
      expect(line, scheme).toContain('timer:(keepalive,');
      expect(await attempt).toMatchObject({ code: 'RTMP_CONNECT_TIMEOUT' });
    }
  });

  it('ABORTED when the signal fires while connecting', async () => {
    const port = await listen(createServer(() => undefined));
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    expect(await failure(RtmpPublisher.connect(`rtmp://127.0.0.1:${port}/live/k`, { signal: ac.signal }))).toMatchObject({ code: 'ABORTED' });
  });

  describe('RTMPS', () => {
    let dir: string;
    let cert: { key: Buffer; cert: Buffer };
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'onair-tls-'));
      await promisify(execFile)('openssl', [
        'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
        '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      ]);
      cert = { key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) };
    });
    afterAll(() => rm(dir, { recursive: true, force: true }));

    it('verifies certificates: a self-signed one fails with a TLS_* code and node reason', async () => {
      const port = await listen(createTlsServer(cert, (s) => s.on('error', () => undefined)));
      const err = await failure(RtmpPublisher.connect(`rtmps://localhost:${port}/live/sekret`));
      expect(err.code).toBe('TLS_DEPTH_ZERO_SELF_SIGNED_CERT');
      expect(err.message).toContain('self-signed certificate');
      expect(err.message).not.toContain('sekret');
    });

    it('with lookup and checkAddress, SNI and the certificate check still use the host name', async () => {
      const sni: string[] = [];
      const server = createTlsServer({ ...cert, SNICallback: (name, cb) => (sni.push(name), cb(null, createSecureContext(cert))) }, (s) => s.on('error', () => undefined));
      server.on('tlsClientError', () => undefined);
      const port = await listen(server);
      const { lookup } = resolver('127.0.0.1');
      const seen: string[] = [];
      const err = await failure(RtmpPublisher.connect(`rtmps://studio.onair.test:${port}/live/sekret`, { lookup, checkAddress: (a) => void seen.push(a) }));
      expect(err.code).toBe('TLS_DEPTH_ZERO_SELF_SIGNED_CERT');
      expect(sni).toEqual(['studio.onair.test']);
      expect(seen).toEqual(['127.0.0.1']);
    });

    it('plain rtmp:// to a TLS port fails the handshake with a hint', async () => {
      const port = await listen(createTlsServer(cert, (s) => s.on('error', () => undefined)));
      const err = await failure(RtmpPublisher.connect(`rtmp://127.0.0.1:${port}/live/k`, { connectTimeoutMs: 2000 }));
      expect(err).toMatchObject({ code: 'HANDSHAKE_FAILED', message: expect.stringContaining('rtmps://') });
    });
  });
});

describe('RtmpPlayer backpressure', () => {
  it('pauses the socket for a slow consumer and still delivers every tag in order', async () => {
    const count = 400;
    const port = await listen(playServer(count, 20000));
    const player = await RtmpPlayer.connect(`rtmp://127.0.0.1:${port}/live/cam`, { maxQueuedTags: 8 });
    let maxQueued = 0;
    let expected = 0;
    for await (const tag of player) {
      maxQueued = Math.max(maxQueued, player.stats.queuedTags);
      expect([tag.type, tag.timestamp, tag.data.length, tag.data[1]]).toEqual([9, expected * 40, 20000, expected & 0xff]);
      expected++;
      if (expected % 50 === 0) await new Promise((r) => setTimeout(r, 20));
    }
    await player.closed;
    expect(expected).toBe(count);
    // One socket read can hold several messages past the high-water mark, never the whole stream.
    expect(maxQueued).toBeLessThan(count / 2);
  });

  it('batches(): every tag in order, the tags of a read together, and the same bounds for a slow consumer', async () => {
    const count = 400;
    const port = await listen(playServer(count, 20000));
    const player = await RtmpPlayer.connect(`rtmp://127.0.0.1:${port}/live/cam`, { maxQueuedTags: 8 });
    const sizes: number[] = [];
    let expected = 0;
    for await (const tags of player.batches()) {
      sizes.push(tags.length);
      for (const tag of tags) {
        expect([tag.type, tag.timestamp, tag.data.length, tag.data[1]]).toEqual([9, expected * 40, 20000, expected & 0xff]);
        expected++;
      }
      expect(player.stats.queuedTags).toBe(0);
      await new Promise((r) => setTimeout(r, 5));
    }
    await player.closed;
    expect(expected).toBe(count);
    expect(Math.min(...sizes)).toBeGreaterThan(0);
    // The server writes faster than this consumer takes: batches hold several tags...
    expect(Math.max(...sizes)).toBeGreaterThan(1);
    // ...and never more than the paused socket let in: 8 plus what one 64 KiB read held.
    expect(Math.max(...sizes)).toBeLessThan(8 + 8);
    expect(() => player[Symbol.asyncIterator]()).toThrow(/only once/);
  });

  it('readBatchMs: every tag in order, in fewer reads, a stream faster than one buffer per wait taken whole', async () => {
    const BURST = 100;
    // A paced server: 60 small messages a second, as a live stream's audio and video come.
    const paced = createServer((socket) => {
      const writer = new ChunkWriter();
      const reader = new ChunkReader();
      let handshake = 0;
      let timer: NodeJS.Timeout | undefined;
      socket.on('close', () => clearInterval(timer));
      const cmd = (streamId: number, ...values: Amf0Value[]): void => {
        socket.write(writer.encode({ csid: 3, type: 20, timestamp: 0, streamId, payload: encodeAmf0(values) }));
      };
      socket.on('data', (data: Buffer) => {
        const step = serverHandshake(socket, handshake, data);
        handshake = step.seen;
        const rest = step.rest;
        for (const m of reader.push(rest)) {
          if (m.type !== 20) continue;
          const c = decodeCommand(m.type, m.payload);
          if (c.name === 'connect') cmd(0, '_result', c.transactionId, null, { level: 'status', code: 'NetConnection.Connect.Success' });
          else if (c.name === 'createStream') cmd(0, '_result', c.transactionId, null, 1);
          else if (c.name === 'play') {
            cmd(1, 'onStatus', 0, null, { level: 'status', code: 'NetStream.Play.Start' });
            let i = 0;
            timer = setInterval(() => {
              // Then a burst of 2 MB at once, 31 reads of 64 KiB.
              const n = i === 60 ? BURST : 1;
              for (let k = 0; k < n; k++, i++) {
                const body = new Uint8Array(i >= 60 ? 20_000 : 300).fill(i & 0xff);
                socket.write(writer.encode({ csid: 6, type: 9, timestamp: i * 16, streamId: 1, payload: body }));
              }
              if (i >= 60 + BURST + 10) {
                clearInterval(timer);
                cmd(1, 'onStatus', 0, null, { level: 'status', code: 'NetStream.Play.Stop' });
              }
            }, 16);
          }
        }
      });
    });
    const port = await listen(paced);
    const url = `rtmp://127.0.0.1:${port}/live/cam`;
    const read = async (readBatchMs: number): Promise<{ batches: number; ms: number }> => {
      const player = await RtmpPlayer.connect(url, { readBatchMs });
      let expected = 0;
      let batches = 0;
      let burstAt = 0;
      let burstDone = 0;
      for await (const tags of player.batches()) {
        // Reads during the paced second, before the burst.
        if (expected < 60) batches++;
        for (const tag of tags) {
          expect([tag.type, tag.timestamp, tag.data[0]]).toEqual([9, expected * 16, expected & 0xff]);
          if (expected === 60) burstAt = performance.now();
          if (expected === 60 + BURST - 1) burstDone = performance.now();
          expected++;
        }
      }
      await player.closed;
      expect(expected).toBe(60 + BURST + 10);
      return { batches, ms: burstDone - burstAt };
    };
    const plain = await read(0);
    const batched = await read(100);
    // ~60 reads a second without batching, ~10 with it: a second of small messages shows it
    // whatever the machine's load (a late timer only makes the batches larger).
    expect(batched.batches).toBeLessThan(plain.batches / 3);
    // The burst comes read after read, not one 64 KiB read per 100 ms (3.1 s): no rate cap.
    expect(batched.ms).toBeLessThan(1500);
  });

  it('also bounds the queue by bytes', async () => {
    const port = await listen(playServer(100, 100_000));
    const player = await RtmpPlayer.connect(`rtmp://127.0.0.1:${port}/live/cam`, { maxQueuedBytes: 300_000 });
    await new Promise((r) => setTimeout(r, 300));
    // Paused at 300 kB plus what one socket read still held (up to 64 kB, a message or so).
    expect(player.stats.queuedBytes).toBeLessThan(600_000);
    let n = 0;
    for await (const _tag of player) n++;
    expect(n).toBe(100);
  });

  it('a consumer leaving the loop early destroys the player', async () => {
    const port = await listen(playServer(50, 1000));
    const player = await RtmpPlayer.connect(`rtmp://127.0.0.1:${port}/live/cam`);
    let n = 0;
    for await (const _tag of player) if (++n === 3) break;
    await player.closed;
    expect(n).toBe(3);
  });

  it('idleEndMs ends the stream when a server goes quiet without telling (node-media-server)', async () => {
    const port = await listen(playServer(20, 1000, false));
    const player = await RtmpPlayer.connect(`rtmp://127.0.0.1:${port}/live/cam`, { idleEndMs: 200 });
    let n = 0;
    for await (const _tag of player) n++;
    await player.closed;
    expect(n).toBe(20);
  });
});

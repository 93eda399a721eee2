import { readFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { FlvReader, type FlvTag } from '@onair/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shortFlv } from '../../test/harness/fixtures.js';
import { startNginxRtmp, type NginxRtmp } from '../../test/harness/nginx.js';
import { RtmpPlayer } from './player.js';
import { RtmpPublisher } from './publisher.js';
import { failure } from '../../../shared/src/testing/async.js';

// Servers that complete the RTMP handshake and then misbehave. Every byte they send after it is
// assembled here by hand from the RTMP and AMF0 specs, not by our writer. Meanwhile a good
// publisher and player on a real nginx-rtmp, in this same process, must not notice.

// ---- hand-assembled wire bytes -------------------------------------------------------------

const u24 = (n: number): number[] => [(n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const u32 = (n: number): number[] => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const u32le = (n: number): number[] => u32(n).reverse();

/** fmt 0 chunk header (RTMP spec §5.3.1): 1-, 2- or 3-byte basic header, then 11 bytes. */
function fmt0(csid: number, type: number, length: number, streamId = 0, timestamp = 0): number[] {
  const basic = csid < 64 ? [csid] : csid < 320 ? [0, csid - 64] : [1, (csid - 64) & 0xff, (csid - 64) >> 8];
  return [...basic, ...u24(timestamp), ...u24(length), type, ...u32le(streamId)];
}

/** One message in a single chunk (the chunk size must allow it). */
function message(csid: number, type: number, payload: number[], streamId = 0): number[] {
  return [...fmt0(csid, type, payload.length, streamId), ...payload];
}

const setChunkSize = (size: number): number[] => message(2, 1, u32(size));

// AMF0 (AMF0 spec §2): number 0x00, string 0x02, object 0x03 … 00 00 09, null 0x05.
const amfString = (s: string): number[] => [0x02, s.length >> 8, s.length & 0xff, ...Buffer.from(s, 'latin1')];
const amfNumber = (n: number): number[] => {
  const b = Buffer.alloc(9);
  b[0] = 0x00;
  b.writeDoubleBE(n, 1);
  return [...b];
};
function amfObject(props: Record<string, string>): number[] {
  const out = [0x03];
  for (const [k, v] of Object.entries(props)) out.push(k.length >> 8, k.length & 0xff, ...Buffer.from(k, 'latin1'), ...amfString(v));
  return [...out, 0x00, 0x00, 0x09];
}
/** An AMF0 object holding an object holding … `depth` levels: `{a:{a:{…}}}`. */
function amfNested(depth: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < depth; i++) out.push(0x03, 0x00, 0x01, 0x61);
  out.push(0x05); // the innermost value: null
  for (let i = 0; i < depth; i++) out.push(0x00, 0x00, 0x09);
  return out;
}

/** `_result` for connect: onair's connect is always transaction 1. */
const connectResult = (): number[] =>
  message(3, 20, [
    ...amfString('_result'), ...amfNumber(1),
    ...amfObject({ fmsVer: 'FMS/3,0,1,123' }),
    ...amfObject({ level: 'status', code: 'NetConnection.Connect.Success', description: 'ok' }),
  ]);

// ---- hostile servers ----------------------------------------------------------------------

const servers: Server[] = [];
const sockets = new Set<Socket>();

/** Answers C0+C1 with S0+S1+S2 (the simple handshake, S2 echoing C1), then runs `after`. */
async function hostile(after: (socket: Socket) => void): Promise<number> {
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let got = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      got = Buffer.concat([got, d]);
      if (got.length < 1537) return;
      socket.off('data', onData);
      const s1 = Buffer.alloc(1536, 7);
      socket.write(Buffer.concat([Buffer.from([3]), s1, got.subarray(1, 1537)]));
      after(socket);
    };
    socket.on('data', onData);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

/** xorshift32: the same "garbage" on every run. */
function garbage(seed: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

// ---- the good sessions --------------------------------------------------------------------

let nginx: NginxRtmp;
let tags: FlvTag[];
let goodPublisher: RtmpPublisher;
let goodPlayer: RtmpPlayer;
let sending: Promise<number>;
let received: Promise<FlvTag[]>;

beforeAll(async () => {
  const [file, server] = await Promise.all([shortFlv().then((p) => readFile(p)), startNginxRtmp({ record: false })]);
  nginx = server;
  const reader = new FlvReader();
  tags = [...reader.push(file)];
  reader.end();
  goodPlayer = await RtmpPlayer.connect(nginx.url('live', 'good'));
  received = (async () => {
    const got: FlvTag[] = [];
    for await (const tag of goodPlayer) got.push(tag);
    return got;
  })();
  goodPublisher = await RtmpPublisher.connect(nginx.url('live', 'good'));
  // Spread over the whole suite: about 4 s of media sent in about 3 s.
  sending = (async () => {
    const start = performance.now();
    for (const tag of tags) {
      const due = tag.timestamp * 0.75 - (performance.now() - start);
      if (due > 0) await new Promise((r) => setTimeout(r, due));
      goodPublisher.write(tag);
    }
    return performance.now() - start;
  })();
}, 30_000);

afterAll(async () => {
  goodPublisher?.destroy();
  goodPlayer?.destroy();
  for (const s of sockets) s.destroy();
  await Promise.all([nginx?.dispose(), ...servers.map((s) => new Promise((r) => s.close(r)))]);
});

// ---- the cases ----------------------------------------------------------------------------

describe('hostile servers end their own session only', () => {
  it('a 16 MiB message announcement is refused at its header', async () => {
    // 0xFFFFFF (16 MiB − 1) is the most a 24-bit length can announce.
    const port = await hostile((s) => s.write(Buffer.from(fmt0(6, 9, 0xffffff, 1))));
    const err = await failure(RtmpPlayer.connect(`rtmp://127.0.0.1:${port}/live/sekret`));
    expect(err).toMatchObject({ code: 'RTMP_MESSAGE_TOO_LARGE', message: expect.stringContaining('message of 16777215 bytes') });
    expect(err.message).toContain('limit 8388608');
    expect(err.message).not.toContain('sekret');
  });

  it('trickled chunks of huge announced messages cost what arrived, not what was announced', async () => {
    const sessions = 16;
    const trickled = 64 * 1024;
    let started = 0;
    const port = await hostile((s) => {
      // Allowed up to the 24-bit maximum, announced, then fed 1 KiB every few ms.
      s.write(Buffer.from([...setChunkSize(65536), ...fmt0(6, 9, 0xffffff, 1)]));
      let sent = 0;
      const timer = setInterval(() => {
        if (s.destroyed || sent >= trickled) return clearInterval(timer);
        s.write(garbage(sent + 1, 1024));
        sent += 1024;
        if (sent >= trickled) started++;
      }, 2);
      s.on('close', () => clearInterval(timer));
    });
    const before = process.memoryUsage().arrayBuffers;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 20);
    const players = Array.from({ length: sessions }, () =>
      failure(RtmpPlayer.connect(`rtmp://127.0.0.1:${port}/live/k`, { connectTimeoutMs: 1500, limits: { maxMessageSize: 0xffffff } })),
    );
    const errors = await Promise.all(players);
    clearInterval(sampler);
    expect(started).toBe(sessions); // every server got all its chunks out before the timeout
    for (const err of errors) {
      expect(err).toMatchObject({ code: 'RTMP_CONNECT_TIMEOUT', message: expect.stringContaining('stuck in connecting') });
    }
    const announced = sessions * 0xffffff;
    // 256 MiB announced, 1 MiB received: buffers grow with the chunks that came in.
    expect(peak - before).toBeLessThan(announced / 16);
  });

  it('a large message started on each of 60 chunk streams, none finished: refused at 16 MiB held in all', async () => {
    const streams = 60;
    const part = 1024 * 1024;
    const body = garbage(99, part); // one buffer, written 60 times: the server side costs 1 MiB
    const port = await hostile((s) => {
      s.write(Buffer.from(setChunkSize(part)));
      // Each stream announces 8 MiB (maxMessageSize) and sends its first 1 MiB chunk.
      for (let csid = 3; csid < 3 + streams; csid++) {
        s.write(Buffer.from(fmt0(csid, 9, 8 * 1024 * 1024, 1)));
        s.write(body);
      }
    });
    const before = process.memoryUsage().arrayBuffers;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 5);
    const err = await failure(RtmpPlayer.connect(`rtmp://127.0.0.1:${port}/live/sekret`));
    clearInterval(sampler);
    expect(err).toMatchObject({
      code: 'RTMP_MESSAGE_TOO_LARGE',
      message: expect.stringMatching(/incomplete messages on \d+ chunk streams would hold \d+ bytes, more than maxPartialBytes 16777216$/),
    });
    expect(err.message).not.toContain('sekret');
    // 60 MiB would be held without the total limit; 16 MiB are, plus the buffers outgrown on
    // the way (each message's buffer doubles from 16 KiB) until they are collected.
    expect(peak - before).toBeLessThan(40 * 1024 * 1024);
  });

  it('thousands of chunk streams: refused past the limit', async () => {
    const port = await hostile((s) => {
      const bytes: number[] = [];
      for (let csid = 3; csid < 5003; csid++) bytes.push(...message(csid, 9, [0x17]));
      s.write(Buffer.from(bytes));
    });
    const err = await failure(RtmpPlayer.connect(`rtmp://127.0.0.1:${port}/live/k`));
    expect(err).toMatchObject({ code: 'RTMP_TOO_MANY_CHUNK_STREAMS', message: expect.stringContaining('more than 64 chunk streams') });
  });

  it('AMF0 nested 1000 deep (and 100,000 deep) is refused without deep recursion', async () => {
    for (const depth of [1000, 100_000]) {
      const payload = [...amfString('_result'), ...amfNumber(1), ...amfNested(depth)];
      const port = await hostile((s) => s.write(Buffer.from([...setChunkSize(0xffffff), ...message(3, 20, payload)])));
      const err = await failure(RtmpPublisher.connect(`rtmp://127.0.0.1:${port}/live/k`));
      expect(err).toMatchObject({ code: 'RTMP_PROTOCOL', message: expect.stringContaining('AMF0 nesting deeper than 16') });
    }
  });

  it('Set Chunk Size 0, 2^31 − 1 and 2^31 are refused, naming the value', async () => {
    for (const size of [0, 2 ** 31 - 1, 2 ** 31]) {
      const port = await hostile((s) => s.write(Buffer.from(setChunkSize(size))));
      const err = await failure(RtmpPublisher.connect(`rtmp://127.0.0.1:${port}/live/k`));
      expect(err).toMatchObject({ code: 'RTMP_BAD_CHUNK_SIZE', message: expect.stringContaining(`chunk size ${size} outside 1..16777216`) });
    }
  });

  it('garbage after the handshake ends the session with a protocol error', async () => {
    const text = Buffer.from('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'.repeat(100));
    const inputs = [text, ...[1, 2, 3, 4, 5, 6, 7, 8].map((seed) => garbage(seed, 256 * 1024))];
    const codes = new Set(['RTMP_PROTOCOL', 'RTMP_MESSAGE_TOO_LARGE', 'RTMP_TOO_MANY_CHUNK_STREAMS', 'RTMP_BAD_CHUNK_SIZE']);
    const results = await Promise.all(
      inputs.map(async (bytes) => {
        const port = await hostile((s) => s.write(bytes));
        const t0 = performance.now();
        const err = await failure(RtmpPlayer.connect(`rtmp://127.0.0.1:${port}/live/k`, { connectTimeoutMs: 5000 }));
        return { err, ms: performance.now() - t0 };
      }),
    );
    for (const { err, ms } of results) {
      expect(codes.has(err.code ?? ''), `${err.code}: ${err.message}`).toBe(true);
      expect(err.message).toMatch(/^rtmp:\/\/127\.0\.0\.1:\d+\/live\/\*\*\*: \S/);
      expect(ms).toBeLessThan(2500); // refused as it arrives, not by the connect timer
    }
    expect(results[0]!.err).toMatchObject({ code: 'RTMP_PROTOCOL', message: expect.stringContaining('starts with a fmt 1 header') });
  });

  it('a _result for connect, then silence: RTMP_CONNECT_TIMEOUT naming the stuck step', async () => {
    const port = await hostile((s) => s.write(Buffer.from(connectResult())));
    const [pub, play] = await Promise.all([
      failure(RtmpPublisher.connect(`rtmp://127.0.0.1:${port}/live/sekret`, { connectTimeoutMs: 400 })),
      failure(RtmpPlayer.connect(`rtmp://127.0.0.1:${port}/live/sekret`, { connectTimeoutMs: 400 })),
    ]);
    expect(pub).toMatchObject({ code: 'RTMP_CONNECT_TIMEOUT', message: expect.stringContaining('no NetStream.Publish.Start within 400 ms (stuck in creating-stream)') });
    expect(play).toMatchObject({ code: 'RTMP_CONNECT_TIMEOUT', message: expect.stringContaining('no NetStream.Play.Start within 400 ms (stuck in creating-stream)') });
    expect(pub.message + play.message).not.toContain('sekret');
  });

  it('a server that stops reading fails the publisher with RTMP_SEND_STALLED', async () => {
    // connect → 1; releaseStream, FCPublish, createStream → 2, 3, 4; all answered up front.
    const port = await hostile((s) => {
      s.write(
        Buffer.from([
          ...connectResult(),
          ...message(3, 20, [...amfString('_result'), ...amfNumber(4), 0x05, ...amfNumber(1)]),
          ...message(5, 20, [...amfString('onStatus'), ...amfNumber(0), 0x05, ...amfObject({ level: 'status', code: 'NetStream.Publish.Start' })], 1),
        ]),
      );
      s.pause();
    });
    const publisher = await RtmpPublisher.connect(`rtmp://127.0.0.1:${port}/live/k`, { sendStallTimeoutMs: 300 });
    const frame = new Uint8Array(64 * 1024).fill(0x27);
    const t0 = performance.now();
    for (let ts = 0; performance.now() - t0 < 5000; ts += 40) {
      try {
        publisher.write({ type: 9, timestamp: ts, data: frame });
      } catch {
        break;
      }
      if (publisher.bufferedBytes > 1024 * 1024) await publisher.drained();
    }
    const err = await failure(publisher.closed);
    expect(err).toMatchObject({ code: 'RTMP_SEND_STALLED', message: expect.stringContaining('for 300 ms') });
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it('meanwhile the good publisher and player on nginx-rtmp carried on, every tag intact', async () => {
    const sentMs = await sending;
    await goodPublisher.end();
    const got = await received;
    // Per track: nginx sends the two sequence headers first, so audio/video interleaving differs.
    for (const type of [8, 9]) {
      const sent = tags.filter((t) => t.type === type);
      const played = got.filter((t) => t.type === type);
      expect(played.map((t) => t.timestamp)).toEqual(sent.map((t) => t.timestamp));
      const differing = played.filter((t, i) => !Buffer.from(t.data).equals(Buffer.from(sent[i]!.data))).length;
      expect(differing).toBe(0);
    }
    // Sending was paced to span the cases above, so they ran while this stream was live.
    expect(sentMs).toBeGreaterThan(2500);
  });
});

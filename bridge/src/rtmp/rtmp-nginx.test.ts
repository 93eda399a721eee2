import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlvTag } from '@onair/shared';
import { RtmpPlayer } from './player.js';
import { RtmpPublisher } from './publisher.js';
import { RtmpConnection } from './session.js';

const run = promisify(execFile);

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Tags of an FLV file (FLV spec §E.2–E.4), read here so the test does not depend on our own reader. */
function flvTags(file: Uint8Array): FlvTag[] {
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const tags: FlvTag[] = [];
  let p = v.getUint32(5) + 4;
  while (p + 11 <= file.length) {
    const size = v.getUint32(p) & 0xffffff;
    const type = file[p]! & 0x1f;
    const timestamp = ((file[p + 7]! << 24) | (v.getUint32(p + 4) >>> 8)) >>> 0;
    tags.push({ type, timestamp, data: file.subarray(p + 11, p + 11 + size) });
    p += 11 + size + 4;
  }
  return tags;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('RtmpPublisher and RtmpPlayer against nginx-rtmp', () => {
  let dir: string;
  let port: number;
  let nginx: ChildProcess | undefined;
  let source: FlvTag[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'onair-rtmp-'));
    port = await freePort();
    await writeFile(
      join(dir, 'nginx.conf'),
      `load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off; master_process off; error_log ${dir}/err.log info; pid ${dir}/nginx.pid;
events {}
rtmp { server { listen 127.0.0.1:${port}; application live { live on; record all; record_path ${dir}; } } }
`,
    );
    const flv = join(dir, 'source.flv');
    await run('ffmpeg', [
      '-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-t', '3', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-f', 'flv', flv,
    ]);
    source = flvTags(await readFile(flv));
    nginx = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
    await waitFor('nginx to listen', async () => {
      const { connect } = await import('node:net');
      return new Promise<true | undefined>((resolve) => {
        const s = connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(undefined));
      });
    });
  });

  afterAll(async () => {
    if (nginx && nginx.exitCode === null) {
      nginx.kill('SIGTERM');
      await new Promise((r) => nginx!.once('exit', r));
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('publishes an ffmpeg FLV that a player receives and nginx records as H.264 + AAC', async () => {
    const url = `rtmp://127.0.0.1:${port}/live/smoke-key?token=sekret`;
    const player = await RtmpPlayer.connect(url);
    const received: FlvTag[] = [];
    const playing = (async () => {
      for await (const tag of player) received.push(tag);
    })();

    const publisher = await RtmpPublisher.connect(url);
    expect(publisher.url).toBe(`rtmp://127.0.0.1:${port}/live/***`);
    for (const tag of source) {
      publisher.write(tag);
      if (publisher.bufferedBytes > 1 << 20) await publisher.drained();
    }
    await publisher.end();
    await playing;
    await player.closed;
    expect(publisher.stats.messagesSent).toBeGreaterThan(source.length);

    const video = (tags: FlvTag[]): FlvTag[] => tags.filter((t) => t.type === 9);
    const audio = (tags: FlvTag[]): FlvTag[] => tags.filter((t) => t.type === 8);
    expect(video(received).length).toBe(video(source).length);
    expect(audio(received).length).toBe(audio(source).length);
    for (const [i, tag] of video(received).entries()) {
      const sent = video(source)[i]!;
      expect(tag.timestamp).toBe(sent.timestamp);
      expect(Buffer.from(tag.data).equals(Buffer.from(sent.data))).toBe(true);
    }
    expect(received.some((t) => t.type === 18)).toBe(true);

    const recorded = await waitFor('the recording', async () => {
      const f = (await readdir(dir)).find((n) => n.startsWith('smoke-key') && n.endsWith('.flv'));
      return f === undefined ? undefined : join(dir, f);
    });
    const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', recorded]);
    expect(stdout.trim().split('\n').sort()).toEqual(['aac', 'h264']);
    const probe = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', recorded]);
    expect(Number(probe.stdout)).toBeCloseTo(3, 0);
  });

  it('copies each tag on write: the caller may reuse its buffer at once', async () => {
    const url = `rtmp://127.0.0.1:${port}/live/reuse-key`;
    const player = await RtmpPlayer.connect(url);
    const received: FlvTag[] = [];
    const playing = (async () => {
      for await (const tag of player) received.push(tag);
    })();
    const publisher = await RtmpPublisher.connect(url);
    const scratch = new Uint8Array(Math.max(...source.map((t) => t.data.length)));
    for (const [i, tag] of source.entries()) {
      scratch.set(tag.data);
      publisher.write({ type: tag.type, timestamp: tag.timestamp, data: scratch.subarray(0, tag.data.length) });
      scratch.fill(0xee);
      // Several tags per tick, the way the relay sends a file chunk's tags.
      if (i % 16 === 15) await new Promise((r) => setImmediate(r));
    }
    await publisher.end();
    await playing;
    await player.closed;
    // nginx may reorder audio against video, never within a track.
    for (const type of [8, 9]) {
      const track = (tags: FlvTag[]): string[] => tags.filter((t) => t.type === type).map((t) => `${t.timestamp} ${Buffer.from(t.data).toString('hex')}`);
      const got = track(received);
      const want = track(source);
      expect(got.length).toBe(want.length);
      expect(got.findIndex((t, i) => t !== want[i]), `type ${type}`).toBe(-1);
    }
  });

  it('hands the messages of one tick to the socket in one writev, at the end of the tick', async () => {
    const conn = new RtmpConnection('publish', `rtmp://127.0.0.1:${port}/live/batch-key`, {}, () => undefined);
    await conn.started();
    const socket = conn.socket as unknown as Record<'_write' | '_writev', (...args: unknown[]) => void>;
    const calls: string[] = [];
    for (const name of ['_write', '_writev'] as const) {
      const real = socket[name].bind(socket);
      socket[name] = (...args) => {
        calls.push(name);
        real(...args);
      };
    }
    const before = conn.core.stats.bytesSent;
    const tags = source.filter((t) => t.type === 8).slice(0, 50);
    for (const tag of tags) conn.core.sendTag(tag);
    expect(calls).toEqual([]);
    expect(conn.socket.writableLength).toBe(conn.core.stats.bytesSent - before);
    // Nothing was backed up before: a burst within one tick is not a slow server.
    expect(conn.queuedBytes).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual(['_writev']);
    await conn.end();
  });

  it('maps nginx-rtmp refusals to clear errors: unknown app, a second publisher', async () => {
    await expect(RtmpPublisher.connect(`rtmp://127.0.0.1:${port}/nope/k1`)).rejects.toMatchObject({
      code: 'RTMP_CONNECT_REJECTED',
      message: expect.stringContaining('is the app name right?'),
    });
    const url = `rtmp://127.0.0.1:${port}/live/twice-sekret`;
    const first = await RtmpPublisher.connect(url);
    const second = RtmpPublisher.connect(url);
    await expect(second).rejects.toMatchObject({ code: 'RTMP_PUBLISH_BADNAME' });
    const err = (await second.catch((e: unknown) => e)) as Error;
    expect(err.message).toBe(`rtmp://127.0.0.1:${port}/live/***: publish refused: Already publishing (NetStream.Publish.BadName)`);
    expect(err.message).not.toContain('sekret');
    await first.end();
  });
});

import { readFile } from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlvReader } from '@onair/shared';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { shortFlv } from '../../test/harness/fixtures.js';
import { comparePackets, ffprobeStreams, framemd5, type FrameMd5 } from '../../test/harness/judge.js';
import { startNginxRtmp, type NginxRtmp } from '../../test/harness/nginx.js';
import { waitFor } from '../../test/harness/proc.js';
import { describeResult, killOnairProcesses, startOnair } from '../../test/harness/run.js';
import { RtmpPublisher } from '../rtmp/publisher.js';
import { publishFile, type PublishEvent } from './file-publish.js';
import { Pacer } from './pacer.js';

describe('Pacer', () => {
  it('releases tags at start + (ts − first ts)', () => {
    const p = new Pacer();
    expect(p.delay(16_770_000, 1000)).toBe(0);
    expect(p.delay(16_770_033, 1000)).toBe(33);
    expect(p.delay(16_770_066, 1050)).toBe(16);
    expect(p.delay(16_770_100, 1200)).toBe(0); // late: no negative waits, no catch-up burst beyond now
  });

  it('starts a new base on a jump instead of sleeping for hours', () => {
    const p = new Pacer(5_000);
    p.delay(0, 0); // metadata at 0 before media at 16,770 s
    expect(p.delay(16_770_000, 10)).toBe(0);
    expect(p.delay(16_770_040, 10)).toBe(40);
    expect(p.delay(100, 20)).toBe(0); // backwards reset
  });
});

describe('reading the file into one reused buffer', () => {
  it('FlvReader keeps no view of a pushed chunk: tags taken before the next read match the file', async () => {
    const file = new Uint8Array(await readFile(source));
    const hexOf = (d: Uint8Array): string => Buffer.from(d).toString('hex');
    const want = new FlvReader().push(file).map((t) => `${t.type} ${t.timestamp} ${hexOf(t.data)}`);
    for (const size of [7, 1000, 256 * 1024]) {
      const reader = new FlvReader();
      const buffer = new Uint8Array(size);
      const got: string[] = [];
      for (let at = 0; at < file.length; at += size) {
        const n = Math.min(size, file.length - at);
        buffer.set(file.subarray(at, at + n));
        for (const t of reader.push(buffer.subarray(0, n))) got.push(`${t.type} ${t.timestamp} ${hexOf(t.data)}`);
        buffer.fill(0xee);
      }
      reader.end();
      expect(got.length, `reads of ${size}`).toBe(want.length);
      expect(got.findIndex((t, i) => t !== want[i]), `reads of ${size}`).toBe(-1);
    }
  });
});

// Destinations that fail in the middle, made from a real nginx-rtmp behind a TCP proxy that
// cuts the connection, or stops reading, once the client has sent `afterBytes`.

let nginx: NginxRtmp;
let source: string;
let sourcePackets: FrameMd5;
let work: string;
const servers: Server[] = [];
const sockets = new Set<Socket>();

beforeAll(async () => {
  source = await shortFlv();
  [nginx, sourcePackets] = await Promise.all([startNginxRtmp({ stat: true }), framemd5(source)]);
  work = mkdtempSync(join(tmpdir(), 'onair-relay-'));
}, 30_000);
afterEach(killOnairProcesses);
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all([nginx?.dispose(), ...servers.map((s) => new Promise((r) => s.close(r)))]);
  if (work) rmSync(work, { recursive: true, force: true });
});

async function proxy(mode: 'drop' | 'stall', afterBytes: number): Promise<number> {
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: nginx.rtmpPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    upstream.pipe(client);
    let seen = 0;
    client.on('data', (d: Buffer) => {
      const room = afterBytes - seen;
      seen += d.length;
      upstream.write(room >= d.length ? d : d.subarray(0, Math.max(0, room)));
      if (seen < afterBytes) return;
      if (mode === 'drop') {
        client.destroy();
        upstream.destroy();
      } else {
        client.pause(); // and keep both open: the server side hears nothing more
        client.removeAllListeners('data');
      }
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as { port: number }).port;
}

async function expectRecordedExactly(name: string): Promise<void> {
  const cmp = comparePackets(sourcePackets, await framemd5(await nginx.recordingDone(name)), 'exact');
  expect(cmp.equal, cmp.summary).toBe(true);
}

describe('publishFile with destinations failing mid-stream', () => {
  it('a dropped and a stalled destination fail on their own; the good one gets every packet', async () => {
    const [dropPort, stallPort] = await Promise.all([proxy('drop', 300_000), proxy('stall', 300_000)]);
    const events: PublishEvent[] = [];
    const results = await publishFile(
      source,
      [nginx.url('live', 'relay-good'), `rtmp://127.0.0.1:${dropPort}/live/drop-key-1`, `rtmp://127.0.0.1:${stallPort}/live/stall-key-2`],
      { fast: true, onEvent: (e) => events.push(e), session: { closeTimeoutMs: 500, sendStallTimeoutMs: 500 } },
    );
    const [good, dropped, stalled] = results;
    expect(good?.error).toBeUndefined();
    expect(good?.tags).toBe(new FlvReader().push(await readFile(source)).length);
    expect(dropped?.error).toMatchObject({ code: 'RTMP_CONNECTION_LOST', message: expect.stringContaining('server closed the connection') });
    // The file is smaller than the kernel buffers: the stall shows when the server never closes.
    expect(stalled?.error).toMatchObject({ code: expect.stringMatching(/^RTMP_(CLOSE_TIMEOUT|SEND_STALLED)$/) });
    expect(dropped?.url).toBe(`rtmp://127.0.0.1:${dropPort}/live/***`);
    const failedUrls = events.filter((e) => e.kind === 'failed').map((e) => e.url);
    expect(failedUrls.sort()).toEqual([dropped?.url, stalled?.url].sort());
    expect(JSON.stringify(events) + String(dropped?.error) + String(stalled?.error)).not.toMatch(/drop-key|stall-key/);
    await expectRecordedExactly('relay-good');
  });
});

describe('onair CLI: interruptions and a reader that goes away', () => {
  it('Ctrl-C during publish unpublishes, exits 1 and says so', async () => {
    const key = 'sigint-key-4e5f';
    const cli = startOnair(['publish', source, nginx.url('live', key)]);
    await waitFor('the publisher to be live', async () => ((await nginx.isPublishing('live', key)) ? true : undefined), 20_000);
    cli.kill('SIGINT');
    const r = await cli.result;
    expect(r.code, describeResult(r)).toBe(1);
    expect(r.stderr).toMatch(/live\/\*\*\* — failed: interrupted before the whole file was sent \[INTERRUPTED\]/);
    expect(r.stderr).not.toContain(key);
    expect(r.ms).toBeLessThan(15_000);
    // nginx closed its recording: the stream was unpublished, and what arrived is readable.
    expect((await framemd5(await nginx.recordingDone(key))).packets.length).toBeGreaterThan(0);
  });

  it('play: stdout closed by the reader exits 1 (OUTPUT_CLOSED); Ctrl-C exits 1 with a valid file', async () => {
    const key = 'play-key-8a9b';
    const toFile = join(work, 'interrupted.flv');
    const toStdout = startOnair(['play', nginx.url('live', key)]);
    const toFileCli = startOnair(['play', nginx.url('live', key), '-o', toFile]);
    toStdout.process.stdout?.once('data', () => toStdout.process.stdout?.destroy());
    await waitFor('both players to subscribe', async () => ((await nginx.streamClients('live', key)).players === 2 ? true : undefined), 20_000);

    const publisher = await RtmpPublisher.connect(nginx.url('live', key));
    const reader = new FlvReader();
    const tags = reader.push(await readFile(source));
    const start = performance.now();
    let i = 0;
    for (; i < tags.length && performance.now() - start < 1500; i++) {
      const tag = tags[i]!;
      const due = tag.timestamp - (performance.now() - start);
      if (due > 0) await new Promise((r) => setTimeout(r, due));
      publisher.write(tag);
    }
    toFileCli.kill('SIGINT');
    const [rs, rf] = await Promise.all([toStdout.result, toFileCli.result]);
    publisher.destroy();

    expect(rs.code, describeResult(rs)).toBe(1);
    expect(rs.stderr).toContain('stdout was closed by the reader [OUTPUT_CLOSED]');
    expect(rf.code, describeResult(rf)).toBe(1);
    expect(rf.stderr).toContain(`${nginx.url('live', '***')}: interrupted [INTERRUPTED]`);
    expect(rs.stderr + rf.stderr).not.toContain(key);
    const streams = await ffprobeStreams(toFile);
    expect(streams.map((s) => s.codec_type).sort()).toEqual(['audio', 'video']);
  });
});

import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ffmpegPublish } from './harness/ffmpeg.js';
import { shortFlv } from './harness/fixtures.js';
import { comparePackets, framemd5, type FrameMd5 } from './harness/judge.js';
import { startNginxRtmp, type NginxRtmp } from './harness/nginx.js';
import { startNodeMediaServer, type NodeMediaServerHandle } from './harness/nms.js';
import { trackChild, waitFor } from './harness/proc.js';
import { describeResult, killOnairProcesses, ONAIR_BIN, runOnair, startOnair } from './harness/run.js';

// `onair publish -` and `onair restream`, judged by what real servers recorded (nginx-rtmp's
// `record all`, node-media-server's recorder) against ffmpeg's framemd5 of the source. nginx
// refuses every stream whose name starts with "refused" through an on_publish hook, as a platform
// refuses a wrong stream key.

let source: string;
let sourcePackets: FrameMd5;
let nginx: NginxRtmp;
let nms: NodeMediaServerHandle;
let hook: Server;

beforeAll(async () => {
  source = await shortFlv();
  sourcePackets = await framemd5(source);
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => res.writeHead(new URLSearchParams(body).get('name')?.startsWith('refused') ? 403 : 200).end());
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const hookPort = (hook.address() as { port: number }).port;
  [nginx, nms] = await Promise.all([
    startNginxRtmp({ stat: true, liveDirectives: `on_publish http://127.0.0.1:${hookPort}/publish;` }),
    startNodeMediaServer({ record: true, publishGraceMs: 0 }),
  ]);
});
afterEach(killOnairProcesses);
afterAll(async () => {
  await Promise.all([nginx?.dispose(), nms?.stop(), new Promise((r) => hook?.close(r))]);
});

async function expectNginxRecorded(name: string, timestamps: 'exact' | 'relative'): Promise<void> {
  const cmp = comparePackets(sourcePackets, await framemd5(await nginx.recordingDone(name)), timestamps);
  expect(cmp.equal, `${cmp.summary}\nnginx error log:\n${nginx.errorLog().slice(-2000)}`).toBe(true);
}

async function expectNmsRecorded(name: string, timestamps: 'exact' | 'relative'): Promise<void> {
  const cmp = comparePackets(sourcePackets, await framemd5(await nms.recordingDone('live', name)), timestamps);
  expect(cmp.equal, `${cmp.summary}\nnode-media-server:\n${nms.tail()}`).toBe(true);
}

/** Runs a shell pipeline; resolves with its exit status and stderr. */
function pipeline(command: string, timeoutMs = 60_000): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', command], { stdio: ['ignore', 'ignore', 'pipe'] });
    trackChild(child);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

const onair = `'${process.execPath}' '${ONAIR_BIN}'`;

describe('onair publish -', () => {
  it('relays FLV from ffmpeg on stdin byte for byte', async () => {
    const r = await pipeline(`ffmpeg -hide_banner -nostdin -loglevel error -re -i '${source}' -map 0 -c copy -f flv - | ${onair} publish - '${nginx.url('live', 'stdin-key')}'`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('stdin-key');
    await expectNginxRecorded('stdin-key', 'exact');
  });

  it('relays `onair play` piped in, to two servers at once', async () => {
    const piped = pipeline(`${onair} play '${nginx.url('live', 'pipe-src')}' -o - | ${onair} publish - '${nginx.url('live', 'pipe-dst')}' '${nms.url('live', 'pipe-dst')}'`);
    await waitFor('the player to subscribe', async () => ((await nginx.streamClients('live', 'pipe-src')).players === 1 ? true : undefined), 20_000);
    await ffmpegPublish(source, nginx.url('live', 'pipe-src'), { realtime: true });
    const r = await piped;
    expect(r.code, r.stderr).toBe(0);
    await expectNginxRecorded('pipe-dst', 'exact');
    await expectNmsRecorded('pipe-dst', 'exact');
  });

  it('fails on stdin that is not FLV, naming the input', async () => {
    const r = await pipeline(`echo 'not a video' | ${onair} publish - '${nginx.url('live', 'garbage')}'`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/FLV/);
  });
});

describe('onair restream', () => {
  it('relays a live stream to nginx-rtmp and node-media-server byte for byte; a refused destination fails alone; exits when the source ends', async () => {
    const restream = startOnair(['restream', nginx.url('live', 'rs-src'), nginx.url('live', 'rs-dst'), nms.url('live', 'rs-dst'), nginx.url('live', 'refused-key')], { timeoutMs: 60_000 });
    await waitFor('the restream to subscribe', async () => ((await nginx.streamClients('live', 'rs-src')).players === 1 ? true : undefined), 20_000);
    await waitFor('both good destinations to publish', () => ((restream.stderr().match(/ — publishing/g) ?? []).length >= 2 ? true : undefined), 20_000);
    await ffmpegPublish(source, nginx.url('live', 'rs-src'), { realtime: true });
    const r = await restream.result;
    expect(r.code, describeResult(r)).toBe(1);
    expect(r.stderr).toMatch(/live\/\*\*\* — failed: .*(stream name or key|refused)/);
    expect(r.stderr).toMatch(/1 of 3 destinations failed/);
    expect(r.stderr).not.toMatch(/rs-src|rs-dst|refused-key/);
    // Timestamps start at the first keyframe, which is the fixture's first frame: unchanged.
    await expectNginxRecorded('rs-dst', 'relative');
    await expectNmsRecorded('rs-dst', 'relative');
  });

  it('with --follow waits through the source ending: past the grace period it unpublishes, publishes again when the source is back, and stops on Ctrl-C with status 0', async () => {
    const restream = startOnair(['restream', '--follow', '--grace', '2', nginx.url('live', 'fw-src'), nginx.url('live', 'fw-dst')], { timeoutMs: 90_000 });
    await waitFor('the restream to subscribe', async () => ((await nginx.streamClients('live', 'fw-src')).players === 1 ? true : undefined), 20_000);
    await ffmpegPublish(source, nginx.url('live', 'fw-src'), { realtime: true });
    // The source left; two seconds later the destination is unpublished and its recording closed.
    await expectNginxRecorded('fw-dst', 'relative');
    await waitFor('the restream to play the source again', async () => ((await nginx.streamClients('live', 'fw-src')).players === 1 ? true : undefined), 20_000);
    await ffmpegPublish(source, nginx.url('live', 'fw-src'), { realtime: true });
    await waitFor('the second publish', async () => ((await nginx.streamClients('live', 'fw-dst')).publishing ? undefined : true), 20_000);
    await expectNginxRecorded('fw-dst', 'relative');
    restream.kill('SIGINT');
    const r = await restream.result;
    expect(r.code, describeResult(r)).toBe(0);
    expect(r.stderr.match(/fw-dst|fw-src/)).toBeNull();
    expect((r.stderr.match(/live\/\*\*\* — publishing/g) ?? []).length).toBe(2);
  });

  it('exits 0 when the source ends and every destination got it', async () => {
    const restream = startOnair(['restream', nginx.url('live', 'ok-src'), nms.url('live', 'ok-dst')], { timeoutMs: 60_000 });
    await waitFor('the restream to subscribe', async () => ((await nginx.streamClients('live', 'ok-src')).players === 1 ? true : undefined), 20_000);
    await ffmpegPublish(source, nginx.url('live', 'ok-src'), { realtime: true });
    const r = await restream.result;
    expect(r.code, describeResult(r)).toBe(0);
    expect(r.stderr).toMatch(/live\/\*\*\* — done: \d+\.\d\d MB/);
    await expectNmsRecorded('ok-dst', 'relative');
  });

  it('exits 1 saying why when the source cannot be played', async () => {
    const r = await runOnair(['restream', '--connect-timeout', '2', 'rtmp://127.0.0.1:1/live/x', nginx.url('live', 'never')]);
    expect(r.code, describeResult(r)).toBe(1);
    expect(r.stderr).toMatch(/127\.0\.0\.1:1/);
  });

  it('answers a usage error with status 2', async () => {
    const r = await runOnair(['restream', nginx.url('live', 'only-source')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/at least one destination/);
  });
});

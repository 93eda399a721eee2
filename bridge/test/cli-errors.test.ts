import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGarbageServer, startSilentServer, type BadServer } from './harness/bad-servers.js';
import { flvFixture, shortFlv } from './harness/fixtures.js';
import { comparePackets, framemd5 } from './harness/judge.js';
import { startNginxRtmp, type NginxRtmp } from './harness/nginx.js';
import { freePort } from './harness/ports.js';
import { waitFor } from './harness/proc.js';
import { describeResult, killOnairProcesses, runOnair, startOnair, type OnairResult } from './harness/run.js';

// Every failure must exit 1 with one stderr line naming the destination, its stream key shown
// as ***, and the reason; the key itself must appear nowhere.

let source: string;
let nginx: NginxRtmp;
const servers: BadServer[] = [];

beforeAll(async () => {
  source = await shortFlv();
  nginx = await startNginxRtmp({ stat: true });
});
// The cases run concurrently, so stray CLI processes are killed only once all are done.
afterAll(async () => {
  await killOnairProcesses();
  await Promise.all([nginx?.dispose(), ...servers.map((s) => s.close())]);
});

function expectFailure(r: OnairResult, key: string, redactedUrl: string, reason: RegExp): void {
  expect(r.code, describeResult(r)).toBe(1);
  expect(r.stderr).not.toContain(key);
  const line = r.stderr.split('\n').find((l) => l.includes(redactedUrl) && reason.test(l));
  expect(line, `no stderr line names ${redactedUrl} with ${reason}:\n${r.stderr}`).toBeDefined();
}

describe.concurrent('onair publish errors', () => {
  it('connection refused', async () => {
    const port = await freePort();
    const key = 'refused-key-1a2b';
    const r = await runOnair(['publish', '--fast', source, `rtmp://127.0.0.1:${port}/live/${key}`]);
    expectFailure(r, key, `rtmp://127.0.0.1:${port}/live/***`, /connection refused/i);
  });

  it('connect timeout: the server accepts and never answers', async () => {
    const server = await startSilentServer();
    servers.push(server);
    const key = 'silent-key-3c4d';
    const r = await runOnair(['publish', '--fast', source, server.url('live', key)], { timeoutMs: 40_000 });
    expectFailure(r, key, server.url('live', '***'), /within \d+ ms|timed out|timeout/i);
    expect(r.timedOut).toBe(false);
  }, 45_000);

  it('handshake failure: the server speaks something else', async () => {
    const server = await startGarbageServer();
    servers.push(server);
    const key = 'garbage-key-5e6f';
    const r = await runOnair(['publish', '--fast', source, server.url('live', key)], { timeoutMs: 20_000 });
    expectFailure(r, key, server.url('live', '***'), /handshake/i);
    expect(r.ms).toBeLessThan(8_000);
  });

  it('unknown application: nginx-rtmp closes the connection', async () => {
    const key = 'noapp-key-7a8b';
    const r = await runOnair(['publish', '--fast', source, nginx.url('nosuchapp', key)]);
    expectFailure(r, key, nginx.url('nosuchapp', '***'), /closed/i);
  });

  it('BadName: a second publisher of the same name gets "Already publishing"', async () => {
    const key = 'dup-key-9c0d';
    // 10 s at its own pace: still live however slowly the second CLI starts on a busy machine.
    const first = startOnair(['publish', await flvFixture({ seconds: 10 }), nginx.url('live', key)]);
    await waitFor('the first publisher to be live', async () => ((await nginx.isPublishing('live', key)) ? true : undefined), 10_000);
    const second = await runOnair(['publish', '--fast', source, nginx.url('live', key)]);
    expectFailure(second, key, nginx.url('live', '***'), /Already publishing/);
    const r = await first.result;
    expect(r.code, describeResult(r)).toBe(0);
  }, 30_000);

  it('one failing destination among two good ones: the others still complete', async () => {
    const port = await freePort();
    const bad = `rtmp://127.0.0.1:${port}/live/bad-key-e1f2`;
    const r = await runOnair(['publish', '--fast', source, nginx.url('live', 'good-a'), bad, nginx.url('live', 'good-b')]);
    expectFailure(r, 'bad-key-e1f2', `rtmp://127.0.0.1:${port}/live/***`, /connection refused/i);
    expect(r.stderr.split('\n').filter((l) => l.includes('/live/***') && /fail|error|refused/i.test(l) && !l.includes(`:${port}/`))).toEqual([]);
    const expected = await framemd5(source);
    for (const name of ['good-a', 'good-b']) {
      const cmp = comparePackets(expected, await framemd5(await nginx.recordingDone(name)), 'exact');
      expect(cmp.equal, cmp.summary).toBe(true);
    }
  });
});

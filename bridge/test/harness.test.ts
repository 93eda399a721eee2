import { copyFileSync, mkdtempSync, openSync, readSync, rmSync, writeSync, closeSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lateTimestampFlv, shortFlv } from './harness/fixtures.js';
import { comparePackets, framemd5 } from './harness/judge.js';
import { startNginxRtmp, type NginxRtmp } from './harness/nginx.js';
import { startNodeMediaServer, type NodeMediaServerHandle } from './harness/nms.js';
import { ffmpegPublish } from './harness/ffmpeg.js';
import { waitFor } from './harness/proc.js';
import { makeTestCertificates, type TestCertificates } from './harness/tls.js';

// The harness judged against ffmpeg, a publisher we did not write: if these fail, the onair
// tests' verdicts mean nothing.
describe('test harness, with ffmpeg as the publisher', () => {
  let nginx: NginxRtmp;
  let certs: TestCertificates;
  let work: string;
  beforeAll(async () => {
    certs = await makeTestCertificates();
    nginx = await startNginxRtmp({ stat: true, tlsTerminator: { cert: certs.cert, key: certs.key } });
    work = mkdtempSync(join(tmpdir(), 'onair-harness-'));
  });
  afterAll(async () => {
    await nginx?.dispose();
    certs?.dispose();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('nginx-rtmp records exactly what ffmpeg published, and the judge sees a flipped byte', async () => {
    const source = await shortFlv();
    await ffmpegPublish(source, nginx.url('live', 'ffmpeg1'));
    const recorded = await nginx.recordingDone('ffmpeg1');
    const expected = await framemd5(source);
    const cmp = comparePackets(expected, await framemd5(recorded), 'exact');
    expect(cmp.equal, cmp.summary).toBe(true);
    expect(expected.packets.length).toBeGreaterThan(300);

    // One payload byte changed in the middle of the file: the judge must name it.
    const corrupt = join(work, 'corrupt.flv');
    copyFileSync(recorded, corrupt);
    const fd = openSync(corrupt, 'r+');
    const at = Math.floor(statSync(corrupt).size / 2);
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, at);
    byte[0] = (byte[0] ?? 0) ^ 0x01;
    writeSync(fd, byte, 0, 1, at);
    closeSync(fd);
    const bad = comparePackets(expected, await framemd5(corrupt), 'exact');
    expect(bad.equal).toBe(false);
    expect(bad.summary).toMatch(/packet \d+: payload/);
  });

  it('keeps timestamps past 0xFFFFFF ms through nginx-rtmp', async () => {
    const source = await lateTimestampFlv();
    const expected = await framemd5(source);
    expect(Math.max(...expected.packets.map((p) => p.dts))).toBeGreaterThan(0xffffff);
    await ffmpegPublish(source, nginx.url('live', 'late'), { copyts: true });
    const cmp = comparePackets(expected, await framemd5(await nginx.recordingDone('late')), 'exact');
    expect(cmp.equal, cmp.summary).toBe(true);
  });

  it('reaches nginx through the TLS terminator and reports publishers on the stat page', async () => {
    const source = await shortFlv();
    const publishing = ffmpegPublish(source, nginx.rtmpsUrl('live', 'tls1'), { realtime: true });
    await waitFor('ffmpeg to publish through the terminator', async () => ((await nginx.isPublishing('live', 'tls1')) ? true : undefined));
    await publishing;
    expect(await nginx.isPublishing('live', 'tls1')).toBe(false);
    const cmp = comparePackets(await framemd5(source), await framemd5(await nginx.recordingDone('tls1')), 'exact');
    expect(cmp.equal, cmp.summary).toBe(true);
  });
});

describe('node-media-server harness', () => {
  let nms: NodeMediaServerHandle;
  beforeAll(async () => {
    nms = await startNodeMediaServer({ record: true, publishGraceMs: 0 });
  });
  afterAll(async () => {
    await nms?.stop();
  });

  it('node-media-server records exactly what ffmpeg published', async () => {
    const source = await shortFlv();
    await ffmpegPublish(source, nms.url('live', 'ffmpeg2'));
    const recording = await nms.recordingDone('live', 'ffmpeg2');
    expect(nms.recordings('live', 'ffmpeg2')).toEqual([recording]);
    const cmp = comparePackets(await framemd5(source), await framemd5(recording), 'exact');
    expect(cmp.equal, `${cmp.summary}\n${nms.tail()}`).toBe(true);
  });
});

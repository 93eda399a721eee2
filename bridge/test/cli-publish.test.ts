import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeRtmp, type FakeMessage } from './harness/fake-rtmp.js';
import { lateTimestampFlv, shiftedFlv, shortFlv } from './harness/fixtures.js';
import { comparePackets, ffprobeStreams, framemd5, type FrameMd5 } from './harness/judge.js';
import { startNginxRtmp, type NginxRtmp } from './harness/nginx.js';
import { startNodeMediaServer, type NodeMediaServerHandle } from './harness/nms.js';
import { waitFor } from './harness/proc.js';
import { describeResult, killOnairProcesses, runOnair } from './harness/run.js';
import { makeTestCertificates, type TestCertificates } from './harness/tls.js';

// `onair publish` judged by what real servers received: the files nginx-rtmp (`record all`) and
// node-media-server (its recorder) wrote, compared with ffmpeg's framemd5 of the source. nginx rebases recorded timestamps to the first audio/video message, which in these
// fixtures (as in every ffmpeg-made FLV) is a sequence header at 0, so timestamps compare exactly.

let source: string;
let sourcePackets: FrameMd5;
let nginx: NginxRtmp;
let nms: NodeMediaServerHandle;
let certs: TestCertificates;

beforeAll(async () => {
  source = await shortFlv();
  sourcePackets = await framemd5(source);
  certs = await makeTestCertificates();
  [nginx, nms] = await Promise.all([
    startNginxRtmp({ tlsTerminator: { cert: certs.cert, key: certs.key } }),
    startNodeMediaServer({ record: true, publishGraceMs: 0 }),
  ]);
});
afterEach(killOnairProcesses);
afterAll(async () => {
  await Promise.all([nginx?.dispose(), nms?.stop()]);
  certs?.dispose();
});

async function expectRecordedExactly(name: string, expected: FrameMd5 = sourcePackets): Promise<FrameMd5> {
  const recorded = await framemd5(await nginx.recordingDone(name));
  const cmp = comparePackets(expected, recorded, 'exact');
  expect(cmp.equal, `${cmp.summary}\nnginx error log:\n${nginx.errorLog().slice(-2000)}`).toBe(true);
  return recorded;
}

async function expectNmsRecordedExactly(name: string): Promise<void> {
  const recorded = await framemd5(await nms.recordingDone('live', name));
  const cmp = comparePackets(sourcePackets, recorded, 'exact');
  expect(cmp.equal, `${cmp.summary}\nnode-media-server:\n${nms.tail()}`).toBe(true);
}

describe('onair publish', () => {
  it('delivers every packet unchanged to nginx-rtmp (B-frames, AAC)', async () => {
    const key = 'nginx-key-5f3a9';
    const r = await runOnair(['publish', '--fast', source, nginx.url('live', key)]);
    expect(r.code, describeResult(r)).toBe(0);
    expect(r.stderr).not.toContain(key);
    await expectRecordedExactly(key);
  });

  it('paces by the file timestamps unless --fast', async () => {
    const duration = Math.max(...sourcePackets.packets.map((p) => p.dts)) / 1000;
    const r = await runOnair(['publish', source, nginx.url('live', 'paced')]);
    expect(r.code, describeResult(r)).toBe(0);
    expect(r.ms / 1000).toBeGreaterThanOrEqual(duration - 0.3);
    expect(r.ms / 1000).toBeLessThan(duration + 5);
    await expectRecordedExactly('paced');
  });

  it('delivers every packet unchanged to node-media-server', async () => {
    const key = 'nms-key-77c1e';
    const r = await runOnair(['publish', '--fast', source, nms.url('live', key)]);
    expect(r.code, describeResult(r)).toBe(0);
    expect(r.stderr).not.toContain(key);
    await expectNmsRecordedExactly(key);
  });

  it('publishes to nginx-rtmp and node-media-server at once', async () => {
    const r = await runOnair(['publish', '--fast', source, nginx.url('live', 'both-key'), nms.url('live', 'both-key')]);
    expect(r.code, describeResult(r)).toBe(0);
    expect(r.stderr).not.toContain('both-key');
    await expectRecordedExactly('both-key');
    await expectNmsRecordedExactly('both-key');
  });

  it('carries timestamps past 0xFFFFFF ms (extended timestamps) intact', async () => {
    const late = await lateTimestampFlv();
    const expected = await framemd5(late);
    const r = await runOnair(['publish', '--fast', late, nginx.url('live', 'late')]);
    expect(r.code, describeResult(r)).toBe(0);
    const recorded = await expectRecordedExactly('late', expected);
    expect(Math.max(...recorded.packets.map((p) => p.dts))).toBeGreaterThan(0xffffff);
  });

  it('sends timestamps unchanged; nginx-rtmp rebases its recording to the first audio/video message', async () => {
    const shifted = shiftedFlv(source, 5_000);
    const expected = await framemd5(shifted);
    expect(Math.min(...expected.packets.map((p) => p.dts))).toBe(5_000);
    const r = await runOnair(['publish', '--fast', shifted, nginx.url('live', 'shifted')]);
    expect(r.code, describeResult(r)).toBe(0);
    const recorded = await framemd5(await nginx.recordingDone('shifted'));
    const cmp = comparePackets(expected, recorded, 'relative');
    expect(cmp.equal, cmp.summary).toBe(true);
    expect(Math.min(...recorded.packets.map((p) => p.dts))).toBe(0);
  });

  it('publishes over RTMPS, trusting a CA from NODE_EXTRA_CA_CERTS', async () => {
    const key = 'tls-key-0b2d4';
    const r = await runOnair(['publish', '--fast', source, nginx.rtmpsUrl('live', key)], { env: { NODE_EXTRA_CA_CERTS: certs.caCert } });
    expect(r.code, describeResult(r)).toBe(0);
    await expectRecordedExactly(key);
  });

  it('refuses an RTMPS server whose certificate it cannot verify', async () => {
    const key = 'tls-key-untrusted';
    const r = await runOnair(['publish', '--fast', source, nginx.rtmpsUrl('live', key)], { env: { NODE_EXTRA_CA_CERTS: '' } });
    expect(r.code, describeResult(r)).toBe(1);
    expect(r.stderr).toMatch(/certificate/i);
    expect(r.stderr).toContain(nginx.rtmpsUrl('live', '***'));
    expect(r.stderr).not.toContain(key);
  });
});

describe('onair publish: servers that send the publish elsewhere', () => {
  it('follows a 302 redirect at connect to nginx-rtmp, which records every packet', async () => {
    const key = 'redirected-key-41d7';
    const redirector = await startFakeRtmp({ label: 'redirector', redirect: { to: nginx.url('live', key).replace(`/${key}`, ''), form: 'wowza' } });
    try {
      const r = await runOnair(['publish', '--fast', source, redirector.url('live', key)]);
      expect(r.code, describeResult(r)).toBe(0);
      expect(r.stderr).toContain(`${redirector.url('live', '***')} — moved to ${nginx.url('live', '***')}`);
      expect(r.stderr).not.toContain(key);
      expect(redirector.received).toEqual([]);
      await expectRecordedExactly(key);
    } finally {
      await redirector.close();
    }
  });

  it('moves mid-stream to nginx-rtmp at a reconnect request: what the first server got, then nginx, is every packet once', async () => {
    const key = 'moved-key-8e21';
    const first = await startFakeRtmp({ label: 'first' });
    try {
      const run = runOnair(['publish', source, first.url('live', key)]);
      // Half a second in (the next keyframe is at 2 s), the first server asks to move.
      await waitFor('media at the first server', () => (first.received.filter((m) => m.type === 9).length >= 15 ? true : undefined), 20_000);
      first.requestReconnect({ tcUrl: nginx.url('live', key).replace(`/${key}`, ''), description: 'maintenance' });
      const r = await run;
      expect(r.code, describeResult(r)).toBe(0);
      expect(r.stderr).toContain(`${first.url('live', '***')} — moved to ${nginx.url('live', '***')}`);
      expect(r.stderr).not.toContain(key);
      const recording = await nginx.recordingDone(key);
      const recorded = await framemd5(recording);
      // framemd5 hashes the packet data: the AVC tag body after its 5-byte header, the AAC one after 2.
      const md5 = (m: FakeMessage): string => createHash('md5').update(m.payload.subarray(m.type === 9 ? 5 : 2)).digest('hex');
      const isMedia = (m: FakeMessage): boolean => (m.type === 9 && m.payload[1] === 1) || (m.type === 8 && m.payload[1] === 1);
      for (const type of ['video', 'audio']) {
        const tagType = type === 'video' ? 9 : 8;
        const of = (f: FrameMd5): string[] => f.packets.filter((p) => f.mediaTypes.get(p.stream) === type).map((p) => p.md5);
        const before = first.received.filter((m) => m.type === tagType && isMedia(m)).map(md5);
        const after = of(recorded);
        expect(before.length, type).toBeGreaterThan(0);
        expect(after.length, type).toBeGreaterThan(0);
        expect([...before, ...after], type).toEqual(of(sourcePackets));
      }
      // nginx's part starts with a keyframe: every frame of it decodes, as many as it holds.
      const streams = await ffprobeStreams(recording, { decode: true });
      const video = streams.find((st) => st.codec_type === 'video')!;
      expect(Number(video.nb_read_frames)).toBe(recorded.packets.filter((p) => recorded.mediaTypes.get(p.stream) === 'video').length);
    } finally {
      await first.close();
    }
  });
});

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ffmpegPublish } from './harness/ffmpeg.js';
import { shortFlv } from './harness/fixtures.js';
import { comparePackets, ffprobeStreams, framemd5 } from './harness/judge.js';
import { startNginxRtmp, type NginxRtmp } from './harness/nginx.js';
import { makeTempDir, removeTempDir, waitFor } from './harness/proc.js';
import { describeResult, killOnairProcesses, startOnair } from './harness/run.js';

let nginx: NginxRtmp;
let work: string;

beforeAll(async () => {
  nginx = await startNginxRtmp({ record: false, stat: true });
  work = makeTempDir('onair-cli-play-');
});
afterEach(killOnairProcesses);
afterAll(async () => {
  await nginx?.dispose();
  if (work) removeTempDir(work);
});

describe('onair play', () => {
  it('pulls a live stream from nginx-rtmp into a decodable FLV, packets byte-identical', async () => {
    const source = await shortFlv();
    const key = 'play-key-9d8e7';
    const toFile = join(work, 'played.flv');
    const toStdout = join(work, 'stdout.flv');
    // Both players wait for the publisher, so they receive the stream from its first tag.
    const file = startOnair(['play', nginx.url('live', key), '-o', toFile], { timeoutMs: 30_000 });
    const stdout = startOnair(['play', nginx.url('live', key)], { timeoutMs: 30_000 });
    await waitFor('both players to subscribe', async () => ((await nginx.streamClients('live', key)).players === 2 ? true : undefined));
    await ffmpegPublish(source, nginx.url('live', key), { realtime: true });

    const [rf, rs] = await Promise.all([file.result, stdout.result]);
    expect(rf.code, describeResult(rf)).toBe(0);
    expect(rs.code, describeResult(rs)).toBe(0);
    expect(rf.stderr + rs.stderr).not.toContain(key);
    writeFileSync(toStdout, rs.stdout);

    const expected = await framemd5(source);
    for (const played of [toFile, toStdout]) {
      const streams = await ffprobeStreams(played, { decode: true });
      const video = streams.find((s) => s.codec_type === 'video');
      const audio = streams.find((s) => s.codec_type === 'audio');
      expect(video).toMatchObject({ codec_name: 'h264', width: 1280, height: 720 });
      expect(audio).toMatchObject({ codec_name: 'aac', sample_rate: '48000', channels: 2 });
      const videoIndex = [...expected.mediaTypes].find(([, t]) => t === 'video')?.[0];
      expect(Number(video?.nb_read_frames)).toBe(expected.packets.filter((p) => p.stream === videoIndex).length);
      // Players that subscribed before the publisher get its timestamps unchanged.
      const cmp = comparePackets(expected, await framemd5(played), 'exact');
      expect(cmp.equal, cmp.summary).toBe(true);
    }
  });
});

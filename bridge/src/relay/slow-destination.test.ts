import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlvReader, TagKind, tagKind, type DestinationStatus } from '@onair/shared';
import { decodeVideo, partialGops, probeVideoPackets } from '../../../e2e/support/gops.js';
import { startThrottleProxy, type ThrottleProxy } from '../../../e2e/support/throttle-proxy.js';
import { flvFixture } from '../../test/harness/fixtures.js';
import { startNginxRtmp, type NginxRtmp } from '../../test/harness/nginx.js';
import { waitFor } from '../../test/harness/proc.js';
import { DestinationRelay, type KindedTag } from './destination-relay.js';

const SECONDS = 24;
const FPS = 30;

let nginx: NginxRtmp;
let proxy: ThrottleProxy;

beforeAll(async () => {
  nginx = await startNginxRtmp({ record: true });
  proxy = await startThrottleProxy(nginx.rtmpPort);
});

afterAll(async () => {
  await proxy?.close();
  await nginx?.stop();
});

async function fixtureTags(): Promise<{ tags: KindedTag[]; firstKey: number; headers: KindedTag[] }> {
  const tags: KindedTag[] = new FlvReader().push(new Uint8Array(readFileSync(await flvFixture({ seconds: SECONDS })))).map((t) => ({ ...t, kind: tagKind(t) }));
  const firstKey = tags.findIndex((t) => t.kind === TagKind.Keyframe);
  return { tags, firstKey, headers: tags.slice(0, firstKey).filter((t) => t.kind !== TagKind.Audio) };
}

function relay(id: string, url: string, headers: readonly KindedTag[]): DestinationRelay {
  return new DestinationRelay({
    id,
    url,
    policy: { isAllowed: () => undefined, connectOptions: () => ({}) },
    streamStart: () => ({ headers, gop: [] }),
    onChange: () => undefined,
  });
}

describe('one slow destination', () => {
  it('cut to 1 Mbps, it drops whole GOPs and says so; the other, fed the same tags, keeps every frame', async () => {
    // 2.5 Mbps H.264 (keyframe every 2 s, B-frames) and 128 kbps AAC, fed in real time.
    const { tags, firstKey, headers } = await fixtureTags();
    proxy.setRate(1_000_000);
    const statuses: DestinationStatus[] = [];
    const fast = relay('fast', nginx.url('live', 'gops-fast'), headers);
    const slow = relay('slow', `rtmp://127.0.0.1:${proxy.port}/live/gops-slow`, headers);
    try {
      await waitFor('both live', () => (fast.state === 'live' && slow.state === 'live' ? true : undefined), 15_000);
      const t0 = performance.now();
      const first = tags[firstKey]!.timestamp;
      for (const tag of tags.slice(firstKey)) {
        const wait = tag.timestamp - first - (performance.now() - t0);
        if (wait > 5) await new Promise((r) => setTimeout(r, wait));
        fast.push(tag);
        slow.push(tag);
        if (tag.kind === TagKind.Keyframe) statuses.push(slow.status());
      }
    } finally {
      await Promise.all([fast.stop(), slow.stop()]);
    }
    const said = statuses.map((s) => s.reason).filter((r) => r !== undefined);
    console.log(`the slow destination said: ${[...new Set(said)].join(' / ')}`);
    expect(said.at(-1)).toMatch(/^falling behind: dropping video to keep up \(\d+ GOPs?\)$/);
    const gops = slow.status().droppedGops ?? 0;
    expect(gops).toBeGreaterThanOrEqual(1);
    expect(fast.status().droppedGops).toBeUndefined();
    expect(fast.status().reason).toBeUndefined();

    const sourceFrames = tags.filter((t) => t.kind === TagKind.Keyframe || t.kind === TagKind.Frame).length;
    const fastFile = await nginx.recordingDone('gops-fast', 20_000);
    const fastPackets = probeVideoPackets(fastFile);
    expect(fastPackets.length).toBe(sourceFrames);
    expect(decodeVideo(fastFile)).toEqual({ frames: sourceFrames, errors: '' });

    const slowFile = await nginx.recordingDone('gops-slow', 20_000);
    const slowPackets = probeVideoPackets(slowFile);
    console.log(`fast: ${fastPackets.length} of ${sourceFrames} frames; slow: ${slowPackets.length}, ${gops} GOPs dropped`);
    expect(slowPackets[0]!.key).toBe(true);
    expect(slowPackets.length).toBeLessThanOrEqual(sourceFrames - gops * 2 * FPS);
    expect(decodeVideo(slowFile)).toEqual({ frames: slowPackets.length, errors: '' });
    expect(partialGops(slowPackets, FPS)).toEqual([]);
  });

  it('a burst of media (the page resending after its socket came back) is not a slow server: no GOP dropped', async () => {
    const { tags, firstKey, headers } = await fixtureTags();
    const fast = relay('burst', nginx.url('live', 'gops-burst'), headers);
    const media = tags.slice(firstKey);
    try {
      await waitFor('live', () => (fast.state === 'live' ? true : undefined), 15_000);
      const t0 = performance.now();
      const first = media[0]!.timestamp;
      for (const tag of media) {
        // 5 s of silence after 4 s, then those 5 s at once, then real time again.
        const due = tag.timestamp - first < 4000 ? tag.timestamp - first : Math.max(9000, tag.timestamp - first);
        const wait = due - (performance.now() - t0);
        if (wait > 5) await new Promise((r) => setTimeout(r, wait));
        fast.push(tag);
      }
    } finally {
      await fast.stop();
    }
    expect(fast.status().droppedGops).toBeUndefined();
    const file = await nginx.recordingDone('gops-burst', 20_000);
    const frames = media.filter((t) => t.kind === TagKind.Keyframe || t.kind === TagKind.Frame).length;
    expect(probeVideoPackets(file).length).toBe(frames);
  });
});

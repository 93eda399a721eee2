import { Amf0EcmaArray, encodeAmf0, tagKind, type FlvTag } from '@onair/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeRtmp, type FakeMessage, type FakeRtmpOptions, type FakeRtmpServer, type RedirectForm } from '../../test/harness/fake-rtmp.js';
import { RtmpPublisher, type RtmpMove } from './publisher.js';
import { DestinationRelay, type DestinationPolicy } from '../relay/destination-relay.js';
import { ServerPolicy } from '../server/policy.js';
import { waitFor } from '../../test/harness/proc.js';
import { failure } from '../../../shared/src/testing/async.js';

const servers: FakeRtmpServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function fake(opts: FakeRtmpOptions): Promise<FakeRtmpServer> {
  const s = await startFakeRtmp(opts);
  servers.push(s);
  return s;
}

const GOP = 25;
const KEY = 'sekret-key';

/** Metadata and the two sequence headers, then `frames` video frames (a keyframe every GOP) each with an audio frame; every body numbered. */
function headers(): FlvTag[] {
  return [
    { type: 18, timestamp: 0, data: encodeAmf0(['onMetaData', new Amf0EcmaArray({ width: 320, height: 240, videocodecid: 7 })]) },
    { type: 9, timestamp: 0, data: Uint8Array.of(0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1e) },
    { type: 8, timestamp: 0, data: Uint8Array.of(0xaf, 0, 0x12, 0x10) },
  ];
}

function frame(i: number): FlvTag[] {
  const video = new Uint8Array(300).fill(i & 0xff);
  video.set([i % GOP === 0 ? 0x17 : 0x27, 1, 0, 0, 0, i >> 8, i & 0xff]);
  const audio = new Uint8Array(40).fill(0xa5);
  audio.set([0xaf, 1, i >> 8, i & 0xff]);
  return [
    { type: 9, timestamp: i * 40, data: video },
    { type: 8, timestamp: i * 40 + 20, data: audio },
  ];
}

const sig = (m: { type: number; timestamp: number; payload?: Uint8Array; data?: Uint8Array }): string =>
  `${m.type}@${m.timestamp}:${Buffer.from((m.payload ?? m.data)!).toString('hex')}`;

const isHeader = (m: FakeMessage): boolean => m.type === 18 || (m.payload[1] === 0 && (m.payload[0] === 0x17 || m.payload[0] === 0xaf));

/** What one connection of a server received. */
const on = (s: FakeRtmpServer, connection: number): FakeMessage[] => s.received.filter((m) => m.connection === connection);

/** Writes the stream in real time-ish (10 ms a frame), calling `at(i)` before frame i; returns the media sent. */
async function publish(publisher: RtmpPublisher, frames: number, at: (i: number) => void = () => undefined): Promise<FlvTag[]> {
  for (const h of headers()) publisher.write(h);
  const media: FlvTag[] = [];
  for (let i = 0; i < frames; i++) {
    at(i);
    for (const t of frame(i)) {
      publisher.write(t);
      media.push(t);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return media;
}

/** Checks that `first` then `second` connection got every media tag once, in order, and that `second` started with the headers and a keyframe. */
function expectSwitch(first: FakeMessage[], second: FakeMessage[], media: FlvTag[]): void {
  expect(first.slice(0, 3).map(sig)).toEqual(headers().map((h) => sig(h)));
  expect(second.length).toBeGreaterThan(4);
  // Metadata, the video and the audio sequence header, then a keyframe.
  expect(second.slice(0, 3).map(sig)).toEqual(headers().map((h) => sig(h)));
  expect([second[3]!.type, second[3]!.payload[0], second[3]!.payload[1]]).toEqual([9, 0x17, 1]);
  const got = [...first.filter((m) => !isHeader(m)), ...second.filter((m) => !isHeader(m))].map(sig);
  const want = media.map((t) => sig(t));
  expect(got.length).toBe(want.length);
  expect(got.findIndex((g, i) => g !== want[i])).toBe(-1);
  // Both halves carry real media: the switch came mid-stream.
  expect(first.filter((m) => !isHeader(m)).length).toBeGreaterThan(40);
}

describe('RtmpPublisher: a reconnect request mid-stream (Enhanced RTMP v2)', () => {
  it('moves to the tcUrl the server names at the next keyframe: no frame lost or repeated, the old publish ended before the new one', async () => {
    const log: string[] = [];
    // One cluster: a name can be published once across both servers.
    const names = new Set<string>();
    const a = await fake({ label: 'A', names, log });
    const b = await fake({ label: 'B', names, log });
    const moves: RtmpMove[] = [];
    const checked: string[] = [];
    const publisher = await RtmpPublisher.connect(a.url('live', KEY), { onMove: (m) => moves.push(m), checkUrl: (u) => void checked.push(u) });
    const media = await publish(publisher, 150, (i) => {
      if (i === 30) a.requestReconnect({ tcUrl: b.tcUrl('live'), description: 'moving you to B' });
    });
    await publisher.end();
    expect(publisher.moves).toBe(1);
    expect(publisher.url).toBe(`${b.tcUrl('live')}/***`);
    expect(moves).toEqual([
      { from: `${a.tcUrl('live')}/***`, to: `${b.tcUrl('live')}/***`, description: 'moving you to B', switchMs: expect.any(Number), heldTags: expect.any(Number) },
    ]);
    // The three headers and the keyframe at least; a held tag is one that waited, not one lost.
    expect(moves[0]!.heldTags).toBeGreaterThanOrEqual(4);
    expect(checked).toEqual([b.url('live', KEY)]);
    expectSwitch(on(a, 1), on(b, 1), media);
    // Break before make: A let go of the name before B was asked to publish it.
    expect(log.indexOf('B: publish')).toBeGreaterThan(log.indexOf('A: deleteStream'));
    expect(log.filter((l) => l.includes('refused'))).toEqual([]);
    expect(a.live() + b.live()).toBe(0);
  });

  it('without a tcUrl reconnects to the same server, which allows one publisher of the name', async () => {
    const log: string[] = [];
    const a = await fake({ label: 'A', log });
    const publisher = await RtmpPublisher.connect(a.url('live', KEY));
    const media = await publish(publisher, 120, (i) => {
      if (i === 30) a.requestReconnect();
    });
    await publisher.end();
    expect(publisher.moves).toBe(1);
    expect(a.connections()).toBe(2);
    expectSwitch(on(a, 1), on(a, 2), media);
    expect(log.filter((l) => l === 'A: publish' || l.includes('refused'))).toEqual(['A: publish', 'A: publish']);
  });

  it('a new server not ready at the next keyframe: the old one carries on until a keyframe finds it ready', async () => {
    const a = await fake({ label: 'A' });
    // Ready 0.5 s after the request at frame 20: past the keyframe of frame 25 unless a frame took 100 ms.
    const b = await fake({ label: 'B', createStreamDelayMs: 500 });
    const publisher = await RtmpPublisher.connect(a.url('live', KEY));
    const media = await publish(publisher, 150, (i) => {
      if (i === 20) a.requestReconnect({ tcUrl: b.tcUrl('live') });
    });
    await publisher.end();
    expect(publisher.moves).toBe(1);
    expectSwitch(on(a, 1), on(b, 1), media);
    const firstOnB = on(b, 1)[3]!;
    expect(firstOnB.timestamp).toBeGreaterThanOrEqual(50 * 40);
  });

  it('a move it cannot make (refused by checkUrl, nothing listening) is reported and the publish stays where it is, whole', async () => {
    const a = await fake({ label: 'A' });
    const gone = await fake({ label: 'gone' });
    await gone.close();
    servers.splice(servers.indexOf(gone), 1);
    const moves: RtmpMove[] = [];
    const publisher = await RtmpPublisher.connect(a.url('live', KEY), {
      onMove: (m) => moves.push(m),
      checkUrl: (u) => {
        if (u.includes('192.0.2.1')) throw new Error('a private address');
      },
    });
    const media = await publish(publisher, 100, (i) => {
      if (i === 10) a.requestReconnect({ tcUrl: 'rtmp://192.0.2.1/live' });
      if (i === 50) a.requestReconnect({ tcUrl: gone.tcUrl('live') });
    });
    await publisher.end();
    expect(publisher.moves).toBe(0);
    expect(moves.map((m) => [m.to, m.error?.code])).toEqual([
      ['rtmp://192.0.2.1/live/***', 'DESTINATION_REFUSED'],
      [`${gone.tcUrl('live')}/***`, 'RTMP_CONNECT_REFUSED'],
    ]);
    expect(moves[0]!.error!.message).toContain('a private address');
    expect(JSON.stringify(moves)).not.toContain(KEY);
    expect(on(a, 1).filter((m) => !isHeader(m)).map(sig)).toEqual(media.map((t) => sig(t)));
  });
});

describe('RtmpPublisher: a move that goes wrong half-way, or is overtaken by the end', () => {
  it('a new server refusing the publish after the old one was left ends the publisher with that refusal', async () => {
    const a = await fake({ label: 'A' });
    // Another encoder holds the name there.
    const b = await fake({ label: 'B', names: new Set([KEY]) });
    const publisher = await RtmpPublisher.connect(a.url('live', KEY));
    for (const h of headers()) publisher.write(h);
    let i = 0;
    for (; i < 10; i++) for (const t of frame(i)) publisher.write(t);
    a.requestReconnect({ tcUrl: b.tcUrl('live') });
    await waitFor('B ready', () => (b.connections() === 1 ? true : undefined));
    await new Promise((r) => setTimeout(r, 100));
    // The keyframe of frame 25 starts the switch; writes go on while it fails.
    let thrown: unknown;
    for (; i < 60 && thrown === undefined; i++) {
      try {
        for (const t of frame(i)) publisher.write(t);
      } catch (err) {
        thrown = err;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const err = await failure(publisher.closed);
    expect(err).toMatchObject({ code: 'RTMP_PUBLISH_BADNAME', message: expect.stringContaining('Already publishing') });
    expect(thrown).toMatchObject({ code: 'RTMP_PUBLISH_BADNAME' });
    expect(publisher.moves).toBe(0);
    await waitFor('both connections closed', () => (a.open() + b.open() === 0 ? true : undefined));
  });

  it('end() during a move in preparation closes the new connection and ends the old publish cleanly', async () => {
    const a = await fake({ label: 'A' });
    const b = await fake({ label: 'B' });
    const moves: RtmpMove[] = [];
    const publisher = await RtmpPublisher.connect(a.url('live', KEY), { onMove: (m) => moves.push(m) });
    for (const h of headers()) publisher.write(h);
    for (let i = 0; i < 10; i++) for (const t of frame(i)) publisher.write(t);
    a.requestReconnect({ tcUrl: b.tcUrl('live') });
    await waitFor('B connected', () => (b.connections() === 1 ? true : undefined));
    await publisher.end();
    await waitFor('both connections closed', () => (a.open() + b.open() === 0 ? true : undefined));
    expect(b.received).toEqual([]);
    expect(on(a, 1).filter((m) => !isHeader(m))).toHaveLength(20);
    expect(publisher.moves).toBe(0);
  });
});

describe('RtmpPublisher: redirects at connect (NetConnection.Connect.Rejected, ex.code 302)', () => {
  it('follows Wowza, SRS and description redirects: the publish lands on the target, each URL checked first', async () => {
    for (const form of ['wowza', 'srs', 'description'] as RedirectForm[]) {
      const target = await fake({ label: 'target' });
      const to = form === 'srs' ? `//127.0.0.1:${target.port}/live` : target.tcUrl('live');
      const redirector = await fake({ label: 'redirector', redirect: { to, form } });
      const checked: string[] = [];
      const publisher = await RtmpPublisher.connect(redirector.url('live', KEY), { checkUrl: (u) => void checked.push(u) });
      expect(publisher.url, form).toBe(`${target.tcUrl('live')}/***`);
      const media = await publish(publisher, 30);
      await publisher.end();
      expect(checked).toEqual([target.url('live', KEY)]);
      expect(redirector.received).toEqual([]);
      expect(on(target, 1).filter((m) => !isHeader(m)).map(sig)).toEqual(media.map((t) => sig(t)));
    }
  });

  it('up to 3 hops; a fourth, a loop, or a refused target end the connect with a clear error and nothing sent there', async () => {
    const target = await fake({ label: 'target' });
    const chain = async (hops: number): Promise<FakeRtmpServer> => {
      let next = target;
      for (let i = 0; i < hops; i++) next = await fake({ label: `r${i}`, redirect: { to: next.tcUrl('live'), form: 'wowza' } });
      return next;
    };
    const three = await RtmpPublisher.connect((await chain(3)).url('live', KEY));
    expect(three.url).toBe(`${target.tcUrl('live')}/***`);
    await three.end();
    const before = target.connections();

    const four = await failure(RtmpPublisher.connect((await chain(4)).url('live', KEY)));
    expect(four).toMatchObject({ code: 'RTMP_CONNECT_REJECTED', message: expect.stringContaining('more than 3 redirects') });

    // x → y → x: the second visit to x is not made; a server sending us to itself neither.
    const xOpts: FakeRtmpOptions = { label: 'x', redirect: { to: '', form: 'wowza' } };
    const x = await fake(xOpts);
    const y = await fake({ label: 'y', redirect: { to: x.tcUrl('live'), form: 'srs' } });
    xOpts.redirect = { to: y.tcUrl('live'), form: 'wowza' };
    const loop = await failure(RtmpPublisher.connect(x.url('live', KEY)));
    expect(loop).toMatchObject({ code: 'RTMP_CONNECT_REJECTED', message: expect.stringContaining('a redirect loop') });
    expect([x.connections(), y.connections()]).toEqual([1, 1]);
    const selfLoop = await fake({ label: 'self', redirect: { to: '/live', form: 'wowza' } });
    const looped = await failure(RtmpPublisher.connect(selfLoop.url('live', KEY)));
    expect(looped).toMatchObject({ code: 'RTMP_CONNECT_REJECTED', message: expect.stringContaining('a redirect loop') });
    expect(selfLoop.connections()).toBe(1);

    // A target that is no RTMP URL at all.
    const http = await fake({ label: 'http', redirect: { to: 'http://127.0.0.1/live', form: 'wowza' } });
    expect(await failure(RtmpPublisher.connect(http.url('live', KEY)))).toMatchObject({
      code: 'RTMP_CONNECT_REJECTED',
      message: expect.stringContaining('redirected to a URL we cannot use: the server sent us to "http://127.0.0.1/live"'),
    });

    // Refused by the URL check, and by the address check at dial time.
    const toTarget = await fake({ label: 'toTarget', redirect: { to: target.tcUrl('live'), form: 'wowza' } });
    const refused = await failure(
      RtmpPublisher.connect(toTarget.url('live', KEY), {
        checkUrl: (u) => {
          if (u !== toTarget.url('live', KEY)) throw new Error('private addresses are not allowed');
        },
      }),
    );
    expect(refused).toMatchObject({ code: 'DESTINATION_REFUSED', message: expect.stringContaining('private addresses are not allowed') });
    let dials = 0;
    const dialled = await failure(
      RtmpPublisher.connect(toTarget.url('live', KEY), {
        // The first address (the redirector's) passes; the target's, dialled next, does not.
        checkAddress: () => {
          if (dials++ > 0) throw new Error('loopback');
        },
      }),
    );
    expect(dialled).toMatchObject({ code: 'DESTINATION_REFUSED' });
    for (const e of [four, loop, looped, refused, dialled]) expect(e.message).not.toContain(KEY);
    expect(target.connections()).toBe(before);
  });
});

describe('DestinationRelay: reconnect requests and redirects in the destination status', () => {
  /** The studio's policy bound beyond loopback (private addresses refused), except for `origin` itself. */
  function policyExcept(origin: string, checked: string[]): DestinationPolicy {
    const strict = new ServerPolicy({ host: '0.0.0.0', token: 'test-token-0123456789' });
    return {
      isAllowed: (url) => {
        checked.push(url);
        return url === origin ? undefined : strict.isAllowed(url);
      },
      connectOptions: () => ({}),
    };
  }

  function relay(url: string, policy: DestinationPolicy, lines: string[] = []): DestinationRelay {
    return new DestinationRelay({
      id: 'd',
      url,
      policy,
      streamStart: () => ({ headers: headers().map((t) => ({ ...t, kind: tagKind(t) })), gop: [] }),
      onChange: () => undefined,
      retry: { baseMs: 60_000, factor: 1, maxMs: 60_000, jitter: 0 },
      log: (line) => lines.push(line),
    });
  }

  it('a move shows as movedTo and moves; every frame reaches one of the two servers once', async () => {
    const a = await fake({ label: 'A' });
    const b = await fake({ label: 'B' });
    const lines: string[] = [];
    const r = relay(a.url('live', KEY), { isAllowed: () => undefined, connectOptions: () => ({}) }, lines);
    await waitFor('live', () => (r.state === 'live' ? true : undefined), 10_000);
    expect(r.status()).not.toHaveProperty('movedTo');
    const media: FlvTag[] = [];
    for (let i = 0; i < 120; i++) {
      if (i === 30) a.requestReconnect({ tcUrl: b.tcUrl('live'), description: `maintenance, key ${KEY}` });
      for (const t of frame(i)) {
        r.push({ ...t, kind: tagKind(t) });
        media.push(t);
      }
      await new Promise((res) => setTimeout(res, 10));
    }
    await waitFor('moved', () => (r.status().moves === 1 ? true : undefined), 10_000);
    expect(r.status()).toMatchObject({ state: 'live', url: `${a.tcUrl('live')}/***`, movedTo: `${b.tcUrl('live')}/***`, moves: 1 });
    await r.stop();
    expectSwitch(on(a, 1), on(b, 1), media);
    expect(lines.find((l) => l.includes('moved from'))).toMatch(
      `${a.tcUrl('live')}/***: moved from ${a.tcUrl('live')}/*** to ${b.tcUrl('live')}/*** at the server's request (maintenance, key ***); `,
    );
  });

  it('a redirect at connect to an address the policy refuses fails the destination for good; one it allows shows as movedTo', async () => {
    const target = await fake({ label: 'target' });
    const redirector = await fake({ label: 'redirector', redirect: { to: target.tcUrl('live'), form: 'wowza' } });
    const checked: string[] = [];
    const refused = relay(redirector.url('live', KEY), policyExcept(redirector.url('live', KEY), checked));
    await waitFor('failed', () => (refused.state === 'failed' ? true : undefined), 10_000);
    expect(refused.status()).toMatchObject({ state: 'failed', reason: expect.stringContaining('DESTINATION_REFUSED') });
    expect(refused.status().reason).toContain(`redirected to ${target.tcUrl('live')}/***`);
    expect(refused.status().reason).not.toContain(KEY);
    expect(checked).toEqual([redirector.url('live', KEY), target.url('live', KEY)]);
    expect(target.connections()).toBe(0);
    await refused.stop();

    const allowed = relay(redirector.url('live', KEY), { isAllowed: () => undefined, connectOptions: () => ({}) });
    await waitFor('live', () => (allowed.state === 'live' ? true : undefined), 10_000);
    expect(allowed.status()).toMatchObject({ state: 'live', url: `${redirector.tcUrl('live')}/***`, movedTo: `${target.tcUrl('live')}/***` });
    expect(allowed.status()).not.toHaveProperty('moves');
    await allowed.stop();
    expect(on(target, 1).slice(0, 3).map(sig)).toEqual(headers().map((h) => sig(h)));
  });
});

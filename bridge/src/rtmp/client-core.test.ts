import { Amf0EcmaArray, amf0Props, decodeAmf0, encodeAmf0, type Amf0Value } from '@onair/shared';
import { describe, expect, it } from 'vitest';
import { AckWindow } from './ack-window.js';
import { ChunkReader } from './chunk-reader.js';
import { RtmpClientCore, RtmpRedirectError, type RtmpClientCoreOptions, type RtmpClientEvent, type RtmpRole } from './client-core.js';
import type { RtmpMessage } from './messages.js';
import { parseRtmpUrl } from './url.js';
import { cat as concat } from '../../../shared/src/testing/bytes.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.trim().split(/\s+/).filter(Boolean), (b) => parseInt(b, 16));

/**
 * Server-side chunking written out here, independent of ChunkWriter: fmt0 header, then fmt3
 * continuation chunks, csid < 64, timestamps below 0xFFFFFF (RTMP spec §5.3.1).
 */
function chunk(csid: number, type: number, streamId: number, payload: Uint8Array, chunkSize: number, timestamp = 0): Uint8Array {
  const head = [csid, timestamp >> 16, (timestamp >> 8) & 255, timestamp & 255, payload.length >> 16, (payload.length >> 8) & 255, payload.length & 255, type, streamId & 255, (streamId >> 8) & 255, (streamId >> 16) & 255, streamId >>> 24];
  const out = [...head];
  for (let at = 0; at < payload.length || at === 0; at += chunkSize) {
    if (at > 0) out.push(0xc0 | csid);
    out.push(...payload.subarray(at, at + chunkSize));
    if (payload.length === 0) break;
  }
  return Uint8Array.from(out);
}

const command = (chunkSize: number, streamId: number, ...values: Amf0Value[]): Uint8Array =>
  chunk(3, 20, streamId, encodeAmf0(values), chunkSize);
const status = (chunkSize: number, streamId: number, level: string, code: string, description = ''): Uint8Array =>
  chunk(5, 20, streamId, encodeAmf0(['onStatus', 0, null, { level, code, description }]), chunkSize);

// Protocol control messages as servers send them after the handshake (values from notes/rtmp.md).
const NGINX_CONTROL = concat(
  hex('02 00 00 00 00 00 04 05 00 00 00 00 00 4c 4b 40'), // Window Ack Size 5,000,000
  hex('02 00 00 00 00 00 05 06 00 00 00 00 00 4c 4b 40 02'), // Set Peer Bandwidth 5,000,000 dynamic
  hex('02 00 00 00 00 00 04 01 00 00 00 00 00 00 10 00'), // Set Chunk Size 4096
);
const SRS_CONTROL = concat(
  hex('02 00 00 00 00 00 04 05 00 00 00 00 00 26 25 a0'), // Window Ack Size 2,500,000
  hex('02 00 00 00 00 00 05 06 00 00 00 00 00 26 25 a0 02'), // Set Peer Bandwidth 2,500,000 dynamic
  hex('02 00 00 00 00 00 04 01 00 00 00 00 00 00 ea 60'), // Set Chunk Size 60000
);

interface Outgoing {
  csid: number;
  type: number;
  streamId: number;
  values?: Amf0Value[];
  payload: Uint8Array;
}

/** A client core wired to a fake server that reads what the client sends with ChunkReader. */
function client(role: RtmpRole, url: string, extra: Partial<RtmpClientCoreOptions> = {}) {
  const sent: Uint8Array[] = [];
  const events: RtmpClientEvent[] = [];
  const core = new RtmpClientCore(
    { role, url: parseRtmpUrl(url), handshakeEpochMs: 0, fillRandom: (b) => b.fill(7), ...extra },
    { send: (b) => sent.push(b), event: (e) => events.push(e) },
  );
  const reader = new ChunkReader();
  let handshakeLeft = 1 + 1536 + 1536; // C0, C1, C2
  let raw: Uint8Array[] = [];
  let msgs: RtmpMessage[] = [];
  const drain = (): void => {
    for (const b of sent.splice(0)) {
      let rest = b;
      if (handshakeLeft > 0) {
        const n = Math.min(handshakeLeft, b.length);
        raw.push(b.subarray(0, n));
        handshakeLeft -= n;
        rest = b.subarray(n);
      }
      msgs.push(...reader.push(rest));
    }
  };
  const out = (): Outgoing[] => {
    drain();
    const taken = msgs;
    msgs = [];
    return taken.map((m) => ({
      csid: m.csid,
      type: m.type,
      streamId: m.streamId,
      payload: m.payload,
      ...(m.type === 20 ? { values: decodeAmf0(m.payload) } : {}),
    }));
  };
  const handshakeBytes = (): Uint8Array => {
    drain();
    const b = concat(...raw);
    raw = [];
    return b;
  };
  return { core, events, out, handshakeBytes };
}

const S1 = new Uint8Array(1536).fill(0x5a);
const S0S1S2 = (s2: Uint8Array) => concat(hex('03'), S1, s2);

/** Runs the handshake; returns C0+C1+C2 as the server received them. */
function handshake(c: ReturnType<typeof client>): Uint8Array {
  c.core.start();
  const c0c1 = c.handshakeBytes();
  c.core.receive(S0S1S2(c0c1.subarray(1)));
  return concat(c0c1, c.handshakeBytes());
}

describe('RtmpClientCore handshake', () => {
  it('sends C0+C1 (version 3, zeros at 4–7), then C2 echoing S1, then Set Chunk Size and connect', () => {
    const c = client('publish', 'rtmp://example.com/live/key');
    c.core.start();
    expect(c.out()).toEqual([]);
    const c0c1 = c.handshakeBytes();
    expect(c0c1.length).toBe(1537);
    expect(c0c1[0]).toBe(3);
    expect([...c0c1.subarray(5, 9)]).toEqual([0, 0, 0, 0]);
    // S0+S1 split: C2 goes out as soon as S1 is complete, before S2 arrives.
    c.core.receive(concat(hex('03'), S1.subarray(0, 1000)));
    expect(c.handshakeBytes().length).toBe(0);
    c.core.receive(S1.subarray(1000));
    expect(c.handshakeBytes()).toEqual(S1);
    expect(c.core.phase).toBe('handshake');
    c.core.receive(c0c1.subarray(1));
    const msgs = c.out();
    expect(msgs.map((m) => [m.csid, m.type])).toEqual([[2, 1], [3, 20]]);
    expect([...msgs[0]!.payload]).toEqual([0, 0, 0x10, 0]);
    expect(c.core.phase).toBe('connecting');
  });

  it('refuses an S0 that is not version 3', () => {
    const c = client('publish', 'rtmp://example.com/live/key');
    c.core.start();
    expect(() => c.core.receive(hex('06 00 00'))).toThrow(expect.objectContaining({ code: 'HANDSHAKE_FAILED' }));
  });
});

describe('RtmpClientCore publish transcripts', () => {
  it('nginx-rtmp: connect, releaseStream/FCPublish/createStream back to back, publish, Publish.Start, media, stop', () => {
    const c = client('publish', 'rtmp://127.0.0.1:1935/live/sekret-key?auth=1');
    handshake(c);
    const [, connect] = c.out();
    const [name, txn, obj] = connect!.values!;
    expect([name, txn, connect!.csid, connect!.streamId]).toEqual(['connect', 1, 3, 0]);
    expect(obj).toEqual({
      app: 'live',
      type: 'nonprivate',
      flashVer: 'FMLE/3.0 (compatible; onair)',
      swfUrl: 'rtmp://127.0.0.1:1935/live',
      tcUrl: 'rtmp://127.0.0.1:1935/live',
      capsEx: 1, // Enhanced RTMP v2 CapsExMask.Reconnect
    });
    expect(new URL(amf0Props(obj!)!['tcUrl'] as string).pathname).toBe('/live');

    c.core.receive(concat(
      NGINX_CONTROL,
      command(4096, 0, '_result', 1, { fmsVer: 'FMS/3,0,1,123', capabilities: 31 }, { level: 'status', code: 'NetConnection.Connect.Success', description: 'Connection succeeded.', objectEncoding: 0 }),
    ));
    const afterConnect = c.out();
    // Set Peer Bandwidth with the dynamic limit type needs no answer (RTMP spec §5.4.5). Window
    // Acknowledgement Size 131,072 on chunk stream 2: the server is to acknowledge every 128 KiB.
    expect(afterConnect.map((m) => m.values?.slice(0, 2) ?? [m.type])).toEqual([
      [5],
      ['releaseStream', 2],
      ['FCPublish', 3],
      ['createStream', 4],
    ]);
    expect([afterConnect[0]!.csid, ...afterConnect[0]!.payload]).toEqual([2, 0x00, 0x02, 0x00, 0x00]);
    expect(afterConnect[2]!.values![3]).toBe('sekret-key?auth=1');
    expect(c.core.phase).toBe('creating-stream');

    c.core.receive(command(4096, 0, '_result', 4, null, 1));
    const [publish] = c.out();
    expect(publish!.values).toEqual(['publish', 5, null, 'sekret-key?auth=1', 'live']);
    expect(publish!.streamId).toBe(1);
    expect(c.core.phase).toBe('starting');

    c.core.receive(status(4096, 1, 'status', 'NetStream.Publish.Start', 'sekret-key?auth=1 is now published.'));
    expect(c.events).toEqual([{ type: 'started', info: { level: 'status', code: 'NetStream.Publish.Start', description: 'sekret-key?auth=1 is now published.' } }]);
    expect(c.core.phase).toBe('live');

    const key = new Uint8Array(10000).fill(1);
    c.core.sendTag({ type: 9, timestamp: 40, data: key });
    c.core.sendTag({ type: 8, timestamp: 41, data: hex('af 01 21') });
    const meta = encodeAmf0(['onMetaData', new Amf0EcmaArray({ width: 320 })]);
    c.core.sendTag({ type: 18, timestamp: 0, data: meta });
    const media = c.out();
    expect(media.map((m) => [m.csid, m.type, m.streamId, m.payload.length])).toEqual([
      [6, 9, 1, 10000],
      [4, 8, 1, 3],
      [5, 18, 1, 16 + meta.length], // 16: AMF0 string '@setDataFrame'
    ]);
    expect(decodeAmf0(media[2]!.payload)).toEqual(['@setDataFrame', 'onMetaData', new Amf0EcmaArray({ width: 320 })]);

    c.core.finish();
    expect(c.out().map((m) => m.values)).toEqual([
      ['FCUnpublish', 6, null, 'sekret-key?auth=1'],
      ['deleteStream', 7, null, 1],
    ]);
    expect(c.core.peerClosed()).toBeUndefined();
  });

  it('SRS: Window Ack + Set Peer BW + chunk size 60000 in one burst, onBWDone, _result(txn, null, undefined), onFCPublish', () => {
    const c = client('publish', 'rtmp://srs.local/live/stream');
    handshake(c);
    c.out();
    const long = 'x'.repeat(20000); // longer than 4096: only reads right with chunk size 60000 applied
    c.core.receive(concat(
      SRS_CONTROL,
      command(60000, 0, '_result', 1, { fmsVer: 'FMS/3,5,3,888' }, { level: 'status', code: 'NetConnection.Connect.Success', description: long }),
      command(60000, 0, 'onBWDone', 0, null),
    ));
    expect(c.out().map((m) => m.values?.[0] ?? m.type)).toEqual([5, 'releaseStream', 'FCPublish', 'createStream']);
    c.core.receive(concat(
      command(60000, 0, '_result', 2, null, undefined),
      command(60000, 0, 'onFCPublish', 0, null, { code: 'NetStream.Publish.Start', description: 'FCPublish to stream stream.' }),
      command(60000, 0, '_result', 3, null, undefined),
      command(60000, 0, '_result', 4, null, 1),
    ));
    expect(c.out().map((m) => m.values?.[0])).toEqual(['publish']);
    c.core.receive(status(60000, 1, 'status', 'NetStream.Publish.Start', 'Started publishing stream.'));
    expect(c.core.phase).toBe('live');
    expect(c.events.map((e) => e.type)).toEqual(['status', 'started']);
  });

  it('surfaces NetStream.Publish.BadName with the server description, key redacted', () => {
    const c = client('publish', 'rtmp://127.0.0.1/live/sekret-key');
    handshake(c);
    c.core.receive(concat(NGINX_CONTROL, command(4096, 0, '_result', 1, null, { level: 'status', code: 'NetConnection.Connect.Success' })));
    c.core.receive(command(4096, 0, '_result', 4, null, 1));
    let err: { code?: string; message?: string } = {};
    try {
      c.core.receive(status(4096, 1, 'error', 'NetStream.Publish.BadName', 'Already publishing sekret-key'));
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.code).toBe('RTMP_PUBLISH_BADNAME');
    expect(err.message).toContain('Already publishing ***');
    expect(err.message).not.toContain('sekret');
  });

  /** A publisher that sent publish (transaction 5) for `key` on stream 1, waiting for its answer. */
  function starting(key: string): ReturnType<typeof client> {
    const c = client('publish', `rtmp://127.0.0.1/live/${key}`);
    handshake(c);
    c.core.receive(concat(NGINX_CONTROL, command(4096, 0, '_result', 1, null, { level: 'status', code: 'NetConnection.Connect.Success' })));
    c.core.receive(command(4096, 0, '_result', 4, null, 1));
    expect(c.core.phase).toBe('starting');
    return c;
  }

  function thrown(fn: () => void): { code?: string; message?: string } {
    try {
      fn();
    } catch (err) {
      return err as { code?: string; message?: string };
    }
    throw new Error('expected a throw');
  }

  it('an _error answer to publish ends the connect with RTMP_PUBLISH_FAILED, or RTMP_PUBLISH_BADNAME for that code', () => {
    const denied = starting('sekret-key');
    const err = thrown(() =>
      denied.core.receive(command(4096, 1, '_error', 5, null, { level: 'error', code: 'NetStream.Publish.Denied', description: 'stream key sekret-key refused' })),
    );
    expect(err).toEqual(expect.objectContaining({ code: 'RTMP_PUBLISH_FAILED', message: 'publish failed (NetStream.Publish.Denied: stream key *** refused)' }));
    const badName = starting('sekret-key');
    expect(thrown(() => badName.core.receive(command(4096, 1, '_error', 5, null, { level: 'error', code: 'NetStream.Publish.BadName', description: 'in use' })))).toEqual(
      expect.objectContaining({ code: 'RTMP_PUBLISH_BADNAME', message: 'publish refused (NetStream.Publish.BadName: in use)' }),
    );
  });

  it('NetStream.Publish.Failed, .Denied, .Unauthorized end the connect with RTMP_PUBLISH_FAILED whatever their level', () => {
    for (const [level, code] of [['error', 'NetStream.Publish.Failed'], ['status', 'NetStream.Publish.Failed'], ['warning', 'NetStream.Publish.Denied'], ['error', 'NetStream.publish.Unauthorized']] as const) {
      const c = starting('sekret-key');
      const err = thrown(() => c.core.receive(status(4096, 1, level, code, 'no publishing of sekret-key here')));
      expect(err, `${level} ${code}`).toEqual(expect.objectContaining({ code: 'RTMP_PUBLISH_FAILED', message: `publish failed: no publishing of *** here (${code})` }));
    }
    // Other statuses before the start are only reported.
    const c = starting('key');
    c.core.receive(status(4096, 1, 'status', 'NetStream.Publish.Idle', 'waiting'));
    expect(c.events).toEqual([{ type: 'status', info: { level: 'status', code: 'NetStream.Publish.Idle', description: 'waiting' } }]);
  });

  it('reports a close during connect as an app problem (nginx-rtmp with an unknown app)', () => {
    const c = client('publish', 'rtmp://127.0.0.1/nope/key');
    handshake(c);
    expect(c.core.peerClosed()).toMatchObject({ code: 'RTMP_CONNECT_REJECTED', message: 'server closed the connection during connect: is the app name right?' });
  });

  it('reports _error for connect with its description', () => {
    const c = client('publish', 'rtmp://127.0.0.1/nope/key');
    handshake(c);
    expect(() => c.core.receive(command(128, 0, '_error', 1, null, { level: 'error', code: 'NetConnection.Connect.Rejected', description: 'app not found' }))).toThrow(
      expect.objectContaining({ code: 'RTMP_CONNECT_REJECTED', message: expect.stringContaining('app not found') }),
    );
  });

  it('a connect rejection with a redirect: Wowza and SRS ex.redirect (as _error or onStatus), or a URL in the description', () => {
    const cases: [Uint8Array, string][] = [
      // Wowza: _error answering connect, ex { code 302, redirect: the tcUrl }.
      [command(128, 0, '_error', 1, null, { level: 'error', code: 'NetConnection.Connect.Rejected', description: 'Connection failed: Application rejected connection.', ex: { code: 302, redirect: 'rtmp://edge2.example.com/live' } }), 'rtmp://edge2.example.com/live'],
      // SRS 4+: onStatus, redirect the tcUrl and redirect2 the whole URL with the stream name.
      [command(128, 0, 'onStatus', 0, null, { level: 'error', code: 'NetConnection.Connect.Rejected', description: 'RTMP 302 Redirect', ex: { code: 302, redirect: 'rtmp://10.0.0.2:19350/live', redirect2: 'rtmp://10.0.0.2:19350/live/sekret-key' } }), 'rtmp://10.0.0.2:19350/live'],
      [command(128, 0, '_error', 1, null, { level: 'error', code: 'NetConnection.Connect.Rejected', description: 'moved: use rtmp://b.example.com/app instead' }), 'rtmp://b.example.com/app'],
    ];
    for (const [answer, redirect] of cases) {
      const c = client('publish', 'rtmp://127.0.0.1/live/sekret-key');
      handshake(c);
      const err = thrown(() => c.core.receive(answer));
      expect(err).toBeInstanceOf(RtmpRedirectError);
      expect(err).toMatchObject({ code: 'RTMP_CONNECT_REJECTED', redirect, message: expect.stringContaining(`redirected to ${redirect}`) });
      expect(err.message).not.toContain('sekret');
    }
    // A plain refusal by onStatus (SRS) is a connect rejection too, not a publish failure.
    const c = client('publish', 'rtmp://127.0.0.1/live/key');
    handshake(c);
    const plain = thrown(() => c.core.receive(status(128, 0, 'error', 'NetConnection.Connect.Rejected', 'vhost disabled')));
    expect(plain).not.toBeInstanceOf(RtmpRedirectError);
    expect(plain).toMatchObject({ code: 'RTMP_CONNECT_REJECTED', message: expect.stringContaining('vhost disabled') });
    // Naming the refused URL is no redirect.
    const named = client('publish', 'rtmp://127.0.0.1/live/key');
    handshake(named);
    const refusal = thrown(() => named.core.receive(command(128, 0, '_error', 1, null, { level: 'error', code: 'NetConnection.Connect.Rejected', description: 'rtmp://127.0.0.1/live: no such app' })));
    expect(refusal).not.toBeInstanceOf(RtmpRedirectError);
  });

  it('NetConnection.Connect.ReconnectRequest while live is an event with its tcUrl and description; before live it is ignored', () => {
    const c = starting('key');
    c.core.receive(status(4096, 0, 'status', 'NetConnection.Connect.ReconnectRequest', 'too early'));
    expect(c.events).toEqual([]);
    c.core.receive(status(4096, 1, 'status', 'NetStream.Publish.Start'));
    c.core.receive(concat(
      command(4096, 0, 'onStatus', 0, null, { level: 'status', code: 'NetConnection.Connect.ReconnectRequest', description: 'The streaming server is undergoing updates.', tcUrl: '//192.0.2.7/realtimeapp' }),
      status(4096, 0, 'status', 'NetConnection.Connect.ReconnectRequest'),
    ));
    expect(c.events.slice(1)).toEqual([
      { type: 'reconnect-request', tcUrl: '//192.0.2.7/realtimeapp', description: 'The streaming server is undergoing updates.' },
      { type: 'reconnect-request', tcUrl: '', description: '' },
    ]);
    expect(c.core.phase).toBe('live');
  });

  it('deferPublish: stops after createStream (phase ready, event ready) until publish()', () => {
    const c = client('publish', 'rtmp://127.0.0.1/live/key', { deferPublish: true });
    handshake(c);
    c.core.receive(concat(NGINX_CONTROL, command(4096, 0, '_result', 1, null, { level: 'status', code: 'NetConnection.Connect.Success' })));
    c.out();
    c.core.receive(command(4096, 0, '_result', 4, null, 7));
    expect(c.out()).toEqual([]);
    expect(c.core.phase).toBe('ready');
    expect(c.events).toEqual([{ type: 'ready' }]);
    c.core.publish();
    const [publish] = c.out();
    expect([publish!.streamId, ...publish!.values!]).toEqual([7, 'publish', 5, null, 'key', 'live']);
    c.core.receive(status(4096, 7, 'status', 'NetStream.Publish.Start'));
    expect(c.core.phase).toBe('live');
  });

  it('answers Ping Request with Ping Response echoing the value, and acknowledges half the window', () => {
    const c = client('publish', 'rtmp://127.0.0.1/live/key');
    handshake(c);
    c.out();
    c.core.receive(hex('02 00 00 00 00 00 06 04 00 00 00 00 00 06 12 34 56 78'));
    expect(c.out().map((m) => [m.type, [...m.payload]])).toEqual([[4, [0, 7, 0x12, 0x34, 0x56, 0x78]]]);
    const ackValue = (m: Outgoing): number => new DataView(m.payload.buffer, m.payload.byteOffset).getUint32(0);
    // Window Ack Size 4096: more than half of it (the handshake) is already in, so an ack goes out at once.
    c.core.receive(hex('02 00 00 00 00 00 04 05 00 00 00 00 00 00 10 00'));
    const [first] = c.out();
    expect(first!.type).toBe(3);
    expect(ackValue(first!)).toBe(c.core.stats.bytesReceived);
    const filler = chunk(3, 20, 0, encodeAmf0(['onBWDone', 0, null, 'y'.repeat(100)]), 128);
    let got: Outgoing[] = [];
    while (got.length === 0) {
      c.core.receive(filler);
      got = c.out();
    }
    expect(got.map((m) => m.type)).toEqual([3]);
    expect(ackValue(got[0]!)).toBe(c.core.stats.bytesReceived);
    const step = ackValue(got[0]!) - ackValue(first!);
    expect(step).toBeGreaterThanOrEqual(2048);
    expect(step).toBeLessThan(2048 + filler.length);
  });
});

describe('RtmpClientCore acknowledgements of what a publisher sends', () => {
  it('asks for one every 128 KiB after connect, keeps that window when a Set Peer Bandwidth comes, reports each Acknowledgement', () => {
    const c = client('publish', 'rtmp://127.0.0.1/live/key');
    handshake(c);
    c.out();
    // A hard Set Peer Bandwidth of 5,000,000 before the connect _result (RTMP spec §5.4.5).
    c.core.receive(hex('02 00 00 00 00 00 05 06 00 00 00 00 00 4c 4b 40 00'));
    const [answer] = c.out();
    expect([answer!.type, ...answer!.payload]).toEqual([5, 0x00, 0x02, 0x00, 0x00]);
    // Announced once: the connect _result does not repeat it.
    c.core.receive(command(128, 0, '_result', 1, null, { level: 'status', code: 'NetConnection.Connect.Success' }));
    expect(c.out().map((m) => m.values?.[0] ?? m.type)).toEqual(['releaseStream', 'FCPublish', 'createStream']);
    // Acknowledgement (type 3) of 131,072 bytes, then one past 2^32 − 1 wrapped to 5.
    c.core.receive(concat(hex('02 00 00 00 00 00 04 03 00 00 00 00 00 02 00 00'), hex('02 00 00 00 00 00 04 03 00 00 00 00 00 00 00 05')));
    expect(c.events).toEqual([
      { type: 'acknowledgement', sequence: 131072 },
      { type: 'acknowledgement', sequence: 5 },
    ]);
    expect(c.core.stats.acksReceived).toBe(2);
    expect(c.out()).toEqual([]); // an Acknowledgement needs no answer
  });

  it('the window is an option; a player answers Set Peer Bandwidth with the peer size and asks 2,500,000 after connect', () => {
    const pub = new RtmpClientCore({ role: 'publish', url: parseRtmpUrl('rtmp://h/live/k'), windowAckSize: 4096 }, { send: () => undefined, event: () => undefined });
    expect(pub.ackWindow).toBe(4096);
    const c = client('play', 'rtmp://127.0.0.1/live/cam');
    handshake(c);
    c.out();
    c.core.receive(concat(
      hex('02 00 00 00 00 00 05 06 00 00 00 00 00 4c 4b 40 01'), // soft 5,000,000
      command(128, 0, '_result', 1, null, { level: 'status', code: 'NetConnection.Connect.Success' }),
    ));
    const sizes = c.out().filter((m) => m.type === 5).map((m) => new DataView(m.payload.buffer, m.payload.byteOffset).getUint32(0));
    expect(sizes).toEqual([5_000_000, 2_500_000]);
  });
});

describe('AckWindow: what the server acknowledged, and when an acknowledgement is overdue', () => {
  it('owes nothing before the first acknowledgement: node-media-server 4 never sends one', () => {
    const w = new AckWindow(1000);
    expect(w.overdue(10_000_000, 0)).toBe(0);
    expect(w.overdue(20_000_000, 600_000)).toBe(0);
  });

  it('owes nothing until an acknowledgement accounts for half of what went out since the one before', () => {
    const w = new AckWindow(1000);
    // A slow link: the kernel took 50,000 bytes at once, the server has read 1000 of them.
    w.received(1000, 50_000);
    expect(w.tracking).toBe(false);
    expect(w.overdue(60_000, 0)).toBe(0);
    expect(w.overdue(60_000, 60_000)).toBe(0);
    // The server read bytes that were already out: that counts.
    w.received(2000, 50_000);
    expect(w.tracking).toBe(true);
    expect(w.acknowledged).toBe(2000);
    expect(w.overdue(51_001, 60_100)).toBe(0);
    expect(w.overdue(51_001, 70_100)).toBe(10_000);
  });

  it('owes nothing to a server whose acknowledgements do not count our bytes (old ZLMediaKit counted what it sent)', () => {
    const w = new AckWindow(128 * 1024);
    w.received(131_200, 50_000_000); // after 128 KiB of its own pings and answers, 50 MB into the publish
    expect(w.tracking).toBe(false);
    expect(w.overdue(60_000_000, 0)).toBe(0);
    expect(w.overdue(90_000_000, 600_000)).toBe(0);
    w.received(262_400, 200_000_000);
    expect(w.tracking).toBe(false);
    expect(w.overdue(300_000_000, 1_200_000)).toBe(0);
  });

  it('owes one once more than a window went out since the last, timed from when that was first seen', () => {
    const w = new AckWindow(1000);
    w.received(1000, 1200); // the server counts from after the handshake; we counted 200 more
    expect(w.overdue(2200, 0)).toBe(0); // a window exactly: nothing owed yet
    expect(w.overdue(2201, 100)).toBe(0); // owed from now
    expect(w.overdue(5000, 2100)).toBe(2000);
    expect(w.overdue(9000, 10_100)).toBe(10_000);
    w.received(2000, 9000);
    expect(w.overdue(9000, 10_200)).toBe(0);
    expect(w.overdue(10_001, 10_300)).toBe(0);
    expect(w.overdue(10_002, 10_900)).toBe(600);
    expect([w.acks, w.acknowledged]).toEqual([2, 2000]);
  });

  it('a repeated sequence number is not progress', () => {
    const w = new AckWindow(1000);
    w.received(1000, 1000);
    expect(w.overdue(3000, 0)).toBe(0);
    w.received(1000, 3000);
    expect(w.overdue(3000, 5000)).toBe(5000);
    expect(w.acks).toBe(1);
  });

  it('counts across the 32-bit wrap of the sequence number, past 4 GiB sent', () => {
    const window = 1 << 20;
    const w = new AckWindow(window);
    const offset = 3073; // bytes we sent that the server does not count (the handshake)
    let sent = offset;
    let now = 0;
    // 4100 MiB at one acknowledgement per MiB: the server's count passes 2^32 once.
    for (let i = 0; i < 4100; i++) {
      sent += window;
      now += 100;
      expect(w.overdue(sent, now)).toBe(0);
      w.received((sent - offset) % 2 ** 32, sent);
    }
    expect(sent - offset).toBeGreaterThan(2 ** 32);
    expect(w.acknowledged).toBe(sent - offset);
    expect(w.spacing).toBe(window);
    // Then it stops acknowledging.
    expect(w.overdue(sent + window + 1, now + 100)).toBe(0);
    expect(w.overdue(sent + 2 * window, now + 10_100)).toBe(10_000);
  });

  it('a server counter that restarts near the top (nginx-rtmp at 0xF0000000, SRS to its step) is progress, not 256 MiB read', () => {
    const window = 1 << 26; // 0xF0000000 is 60 windows
    for (const server of ['nginx-rtmp', 'SRS']) {
      const w = new AckWindow(window);
      let sent = 0;
      let count = 0;
      let now = 0;
      for (let i = 0; i < 70; i++) {
        sent += window;
        now += 100;
        expect(w.overdue(sent, now), `${server} after ${i} windows`).toBe(0);
        count += window;
        if (server === 'nginx-rtmp' && count >= 0xf000_0000) {
          count = 0; // ngx_rtmp_recv: reset to 0 and no acknowledgement this time
          continue;
        }
        if (server === 'SRS' && count > 0xf000_0000) count = window; // the step it just counted
        w.received(count, sent);
      }
      // nginx-rtmp never acknowledges the window it read just before its reset.
      expect(w.acknowledged, server).toBe(server === 'SRS' ? sent : sent - window);
      expect(w.spacing, server).toBe(window);
      expect(w.overdue(sent + 2 * window + 1, now + 100)).toBe(0);
      expect(w.overdue(sent + 2 * window + 1, now + 200)).toBe(100);
    }
  });

  it('a server that acknowledges at a larger window of its own is owed an acknowledgement only after that one', () => {
    const w = new AckWindow(1000);
    w.received(5000, 5100); // it ignored our 1000 and keeps 5000
    expect(w.spacing).toBe(5000);
    expect(w.overdue(9000, 0)).toBe(0);
    expect(w.overdue(10_101, 10)).toBe(0);
    expect(w.overdue(10_101, 20)).toBe(10);
  });
});

describe('RtmpClientCore play transcript (node-media-server / nginx-rtmp style)', () => {
  it('createStream, play(-2000) + SetBufferLength, Play.Start, both metadata forms, aggregate, UnpublishNotify', () => {
    const c = client('play', 'rtmp://127.0.0.1/live/cam');
    handshake(c);
    c.out();
    c.core.receive(concat(
      hex('02 00 00 00 00 00 04 05 00 00 00 00 00 4c 4b 40'),
      hex('02 00 00 00 00 00 05 06 00 00 00 00 00 4c 4b 40 02'),
      hex('02 00 00 00 00 00 04 01 00 00 00 00 00 00 ff ff'), // NMS: 65535
      command(65535, 0, '_result', 1, null, { level: 'status', code: 'NetConnection.Connect.Success' }),
    ));
    expect(c.out().map((m) => m.values?.slice(0, 2) ?? [m.type])).toEqual([[5], ['createStream', 2]]);
    c.core.receive(command(65535, 0, '_result', 2, null, 1));
    const [play, buffer] = c.out();
    expect(play!.values).toEqual(['play', 3, null, 'cam', -2000]);
    expect(play!.streamId).toBe(1);
    expect([buffer!.type, ...buffer!.payload]).toEqual([4, 0, 3, 0, 0, 0, 1, 0, 0, 0x0b, 0xb8]);

    const meta = encodeAmf0(['onMetaData', new Amf0EcmaArray({ width: 640 })]);
    // Aggregate: two FLV tags (type, size24, ts24, ts-ext, stream id 0) with PreviousTagSize, timestamps 1000/1040.
    const aggregate = concat(
      hex('09 00 00 02 00 03 e8 00 00 00 00'), hex('17 00'), hex('00 00 00 0d'),
      hex('08 00 00 01 00 04 10 00 00 00 00'), hex('af'), hex('00 00 00 0c'),
    );
    c.core.receive(concat(
      hex('02 00 00 00 00 00 06 04 00 00 00 00 00 00 00 00 00 01'), // StreamBegin 1
      status(65535, 1, 'status', 'NetStream.Play.Reset', 'Playing and resetting cam.'),
      status(65535, 1, 'status', 'NetStream.Play.Start', 'Started playing cam.'),
      chunk(5, 18, 1, encodeAmf0(['|RtmpSampleAccess', false, false]), 65535),
      chunk(5, 18, 1, meta, 65535),
      chunk(5, 18, 1, concat(encodeAmf0(['@setDataFrame']), meta), 65535),
      chunk(4, 8, 1, hex('af 00 12 10'), 65535, 0),
      chunk(6, 9, 1, hex('17 00 00 00 00'), 65535, 0),
      chunk(6, 22, 1, aggregate, 65535, 500),
    ));
    expect(c.core.phase).toBe('live');
    const tags = c.events.flatMap((e) => (e.type === 'tag' ? [[e.tag.type, e.tag.timestamp, [...e.tag.data].length]] : []));
    expect(tags).toEqual([
      [18, 0, meta.length],
      [18, 0, meta.length],
      [8, 0, 4],
      [9, 0, 5],
      [9, 500, 2],
      [8, 540, 1],
    ]);
    expect(c.events.map((e) => e.type).filter((t) => t !== 'tag')).toEqual(['status', 'started']);

    c.core.receive(status(65535, 1, 'status', 'NetStream.Play.UnpublishNotify', 'cam is now unpublished.'));
    expect(c.events.at(-1)).toEqual({ type: 'ended', reason: 'NetStream.Play.UnpublishNotify' });
    c.core.finish();
    expect(c.out().map((m) => m.values)).toEqual([['deleteStream', 4, null, 1]]);
    expect(c.core.peerClosed()).toBeUndefined();
  });

  it('keeps no view of the bytes it is given: one read buffer, reused and overwritten, gives the same tags', () => {
    // The session hands every socket read over in the same buffer. Messages split across
    // reads and chunks (chunk size 128), whole in one read, and an aggregate must all survive it.
    const media: Uint8Array[] = [];
    for (let i = 0; i < 30; i++) {
      const size = [5, 300, 127, 128, 1000][i % 5]!;
      media.push(chunk(i % 2 ? 4 : 6, i % 2 ? 8 : 9, 1, new Uint8Array(size).map((_, j) => (i * 7 + j) & 0xff), 128, i * 20));
    }
    const aggregate = concat(hex('09 00 00 02 00 03 e8 00 00 00 00'), hex('17 01'), hex('00 00 00 0d'));
    const stream = concat(
      command(128, 0, '_result', 1, null, null),
      command(128, 0, '_result', 2, null, 1),
      status(128, 1, 'status', 'NetStream.Play.Start'),
      ...media,
      chunk(6, 22, 1, aggregate, 128, 900),
    );
    const tagsOf = (feed: (c: ReturnType<typeof client>) => void): Array<[number, number, number[]]> => {
      const c = client('play', 'rtmp://127.0.0.1/live/cam');
      handshake(c);
      feed(c);
      // Copied out only now, after the last receive.
      return c.events.flatMap((e) => (e.type === 'tag' ? [[e.tag.type, e.tag.timestamp, [...e.tag.data]] as [number, number, number[]]] : []));
    };
    const expected = tagsOf((c) => c.core.receive(stream.slice()));
    expect(expected).toHaveLength(31);
    const read = new Uint8Array(97);
    const reused = tagsOf((c) => {
      for (let at = 0; at < stream.length; at += read.length) {
        const n = Math.min(read.length, stream.length - at);
        read.set(stream.subarray(at, at + n));
        c.core.receive(read.subarray(0, n));
        read.fill(0xee);
      }
    });
    expect(reused).toEqual(expected);
  });

  it('ends on StreamEOF for its stream', () => {
    const c = client('play', 'rtmp://127.0.0.1/live/cam');
    handshake(c);
    c.core.receive(command(128, 0, '_result', 1, null, null));
    c.core.receive(command(128, 0, '_result', 2, null, 1));
    c.core.receive(status(128, 1, 'status', 'NetStream.Play.Start'));
    c.core.receive(hex('02 00 00 00 00 00 06 04 00 00 00 00 00 01 00 00 00 01'));
    expect(c.events.at(-1)).toEqual({ type: 'ended', reason: 'StreamEOF' });
  });
});

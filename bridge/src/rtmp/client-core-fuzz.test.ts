import { once } from 'node:events';
import { connect } from 'node:net';
import { Amf0EcmaArray, OnairError, encodeAmf0, type Amf0Value, type FlvTag } from '@onair/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNginxRtmp, type NginxRtmp } from '../../test/harness/nginx.js';
import { startNodeMediaServer, type NodeMediaServerHandle } from '../../test/harness/nms.js';
import { cat } from '../../../shared/src/testing/bytes.js';
import { Rng, fnv, mutate, pieces, randomCuts, smallCuts } from '../../../shared/src/testing/fuzz.js';
import { FUZZ_TIMEOUT_MS, arrayBufferGrowth, expectSame, fuzz, fuzzFailure, recordInputs } from '../../../shared/src/testing/fuzz-run.js';
import { mediaSeeds } from '../../../shared/src/testing/media-seeds.js';
import { ChunkReader } from './chunk-reader.js';
import { ChunkWriter } from './chunk-writer.js';
import { RtmpClientCore, type ClientPhase, type RtmpClientEvent, type RtmpRole } from './client-core.js';
import { MessageType, type RtmpMessage } from './messages.js';
import { RtmpPublisher } from './publisher.js';
import { parseRtmpUrl } from './url.js';

// Seeded fuzzing of the sans-I/O RTMP client state machine (RtmpClientCore) with what servers
// answer: transcripts recorded from nginx-rtmp and node-media-server here (publish and play, the
// handshake included), replayed into a fresh core with their bytes mutated, or taken apart into
// messages and put together again with hostile ones among them (replies to the wrong transaction,
// stream ids that are not ids, status codes in the wrong phase, tiny windows, pings, aggregates).
// Properties: receive() returns or throws OnairError; the phase only moves forward; `started`
// and `ended` come at most once and tags only to a player, never after `ended`; the bytes it
// sends and keeps grow in proportion to what it receives; and the events are the same however
// the server's bytes are split.

const PHASES: readonly ClientPhase[] = ['idle', 'handshake', 'connecting', 'creating-stream', 'starting', 'live', 'ending', 'closed'];
const HANDSHAKE = 1 + 2 * 1536;

interface Transcript {
  name: string;
  role: RtmpRole;
  url: string;
  /** Everything the server sent: S0, S1, S2, then the chunk stream. */
  bytes: Uint8Array;
  /** The chunk stream as messages, to take apart and put together again. */
  messages: RtmpMessage[];
}

function core(role: RtmpRole, url: string, sink: { send: (b: Uint8Array) => void; event: (e: RtmpClientEvent) => void }): RtmpClientCore {
  return new RtmpClientCore({ role, url: parseRtmpUrl(url), handshakeEpochMs: 0, fillRandom: (b) => b.fill(7) }, sink);
}

/**
 * Runs a real client session against `url` and keeps what the server sent. A publisher sends
 * `tags` once live and finishes; a player runs `whilePlaying` once live and waits for the end.
 */
async function record(name: string, role: RtmpRole, url: string, tags: readonly FlvTag[], whilePlaying?: () => Promise<void>): Promise<Transcript> {
  const u = parseRtmpUrl(url);
  const socket = connect(u.port, u.host);
  const received: Uint8Array[] = [];
  let fail: (err: unknown) => void = () => undefined;
  const failed = new Promise<never>((_, reject) => (fail = reject));
  let started: () => void = () => undefined;
  let ended: () => void = () => undefined;
  const isStarted = new Promise<void>((resolve) => (started = resolve));
  const isEnded = new Promise<void>((resolve) => (ended = resolve));
  const c = core(role, url, {
    send: (b) => socket.write(b),
    event: (e) => (e.type === 'started' ? started() : e.type === 'ended' ? ended() : undefined),
  });
  socket.on('error', (err) => fail(err));
  socket.on('data', (d: Buffer) => {
    received.push(new Uint8Array(d));
    try {
      c.receive(d);
    } catch (err) {
      fail(err);
    }
  });
  socket.on('connect', () => c.start());
  const within = <T>(what: string, p: Promise<T>): Promise<T> =>
    Promise.race([p, failed, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${name}: no ${what} within 10 s`)), 10_000))]);
  await within('NetStream.*.Start', isStarted);
  if (role === 'publish') {
    for (const t of tags) c.sendTag(t);
  } else {
    await whilePlaying?.();
    // nginx-rtmp tells its players the publisher left; node-media-server does not.
    await Promise.race([isEnded, failed, new Promise((r) => setTimeout(r, 1500))]);
  }
  c.finish();
  // Whatever the server says after deleteStream belongs to the transcript too.
  await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, 300))]);
  socket.destroy();
  const bytes = cat(...received);
  const messages = new ChunkReader().push(bytes.subarray(HANDSHAKE));
  return { name, role, url, bytes, messages };
}

let nginx: NginxRtmp | undefined;
let nms: NodeMediaServerHandle | undefined;
const transcripts: Transcript[] = [];

beforeAll(async () => {
  const tags = mediaSeeds().tags['bframes']!;
  [nginx, nms] = await Promise.all([startNginxRtmp(), startNodeMediaServer({ publishGraceMs: 0 })]);
  const servers = [
    ['nginx-rtmp', (name: string) => nginx!.url('live', name)],
    ['node-media-server', (name: string) => nms!.url('live', name)],
  ] as const;
  for (const [server, url] of servers) {
    transcripts.push(await record(`${server} publish`, 'publish', url('fuzzpub'), tags));
    // Play while a real publisher sends the seed FLV, until it unpublishes.
    const publisher = await RtmpPublisher.connect(url('fuzzplay'));
    const headers = tags.filter((t) => t.type === 18 || t.data[1] === 0);
    for (const t of headers) publisher.write(t);
    await publisher.drained();
    transcripts.push(
      await record(`${server} play`, 'play', url('fuzzplay'), [], async () => {
        await new Promise((r) => setTimeout(r, 200));
        for (const t of tags.filter((x) => !headers.includes(x))) publisher.write(t);
        await publisher.drained();
        await new Promise((r) => setTimeout(r, 200));
        await publisher.end();
      }),
    );
  }
}, 60_000);

afterAll(async () => {
  await nginx?.dispose();
  await nms?.stop();
});

// ---- hostile server messages ----------------------------------------------------------------

const CODES = [
  'NetConnection.Connect.Success', 'NetConnection.Connect.Rejected', 'NetConnection.Connect.Closed',
  'NetStream.Publish.Start', 'NetStream.Publish.BadName', 'NetStream.Publish.Failed', 'NetStream.Unpublish.Success',
  'NetStream.Play.Start', 'NetStream.Play.Reset', 'NetStream.Play.Stop', 'NetStream.Play.UnpublishNotify',
  'NetStream.Play.Complete', 'NetStream.Play.StreamNotFound', 'NetStream.Play.PublishNotify', '', 'x'.repeat(300),
];

function info(rng: Rng): Amf0Value {
  if (rng.oneIn(8)) return rng.pick([null, undefined, 'status', 1, [1, 2]]);
  const obj: Record<string, Amf0Value> = { level: rng.pick(['status', 'error', 'warning', '', 'ERROR']), code: rng.pick(CODES) };
  if (rng.oneIn(2)) obj['description'] = rng.pick(['', 'no such stream key: fuzzkey', 'é€😀']);
  return rng.oneIn(4) ? new Amf0EcmaArray(obj) : obj;
}

const u32 = (v: number): number[] => [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];

/** A message a broken or hostile server might send at any point of a session. */
function hostileMessage(rng: Rng, streamId: number): RtmpMessage {
  const on = rng.oneIn(4) ? rng.pick([0, 1, 2, 0xffffffff]) : streamId;
  const txn = rng.int(3) ? 1 + rng.int(6) : rng.pick([0, -1, 0.5, 1e9, NaN]);
  const command = (values: Amf0Value[]): RtmpMessage => ({ csid: 3, type: rng.oneIn(8) ? MessageType.CommandAmf3 : MessageType.CommandAmf0, timestamp: 0, streamId: on, payload: encodeAmf0(values) });
  const control = (type: number, payload: number[]): RtmpMessage => ({ csid: 2, type, timestamp: 0, streamId: 0, payload: Uint8Array.from(payload) });
  switch (rng.int(14)) {
    case 0:
      return command(['_result', txn, rng.oneIn(2) ? null : { fmsVer: 'FMS/3,0,1,123' }, info(rng)]);
    case 1:
      return command(['_result', txn, null, rng.pick<Amf0Value>([1, 0, -1, 1.5, 2 ** 32, NaN, 'x', null, undefined, 0xffffffff])]);
    case 2:
      return command(['_error', txn, null, info(rng)]);
    case 3:
      return command(['onStatus', 0, null, info(rng)]);
    case 4:
      return command([rng.pick<Amf0Value>(['close', 'onBWDone', 'onFCPublish', 'onFCUnpublish', '_checkbw', 'unknown', 5, null]), txn, null, info(rng)]);
    case 5:
      return control(MessageType.WindowAckSize, u32(rng.pick([0, 1, 2, 100, 2_500_000, 0xffffffff])));
    case 6:
      return control(MessageType.SetPeerBandwidth, [...u32(rng.pick([0, 1, 1000, 2_500_000, 0xffffffff])), rng.int(4)]);
    case 7: {
      const event = rng.int(3) ? rng.pick([0, 1, 2, 4, 6, 7, 31]) : rng.int(0x10000);
      const payload = [event >> 8, event & 0xff, ...u32(rng.oneIn(2) ? streamId : rng.next())];
      return control(MessageType.UserControl, rng.oneIn(8) ? payload.slice(0, rng.int(6)) : payload);
    }
    case 8:
      return control(rng.pick([MessageType.SetChunkSize, MessageType.Abort, MessageType.Acknowledgement]), u32(rng.pick([1, 128, 4096, 0x7fffffff, 0, 3])));
    case 9: {
      const name = rng.pick(['onMetaData', '@setDataFrame', '|RtmpSampleAccess', 'onStatus', 'onTextData', '']);
      const payload = encodeAmf0([name, rng.oneIn(2) ? 'onMetaData' : new Amf0EcmaArray({ width: 640 }), false]);
      const amf3 = rng.oneIn(6);
      return { csid: 5, type: amf3 ? MessageType.DataAmf3 : MessageType.DataAmf0, timestamp: rng.int(1000), streamId: on, payload: amf3 ? cat(Uint8Array.of(0), payload) : payload };
    }
    case 10: {
      // An aggregate: FLV tags back to back, with sizes that fit or overrun.
      const tags: number[] = [];
      for (let n = rng.int(4); n > 0; n--) {
        const body = Array.from(rng.bytes(rng.int(10)));
        const size = rng.int(6) ? body.length : rng.pick([0xffffff, body.length + 1]);
        tags.push(rng.pick([8, 9, 18, 20]), size >> 16, (size >> 8) & 0xff, size & 0xff, ...u32(rng.next()).slice(1), rng.int(256), 0, 0, 0, ...body, ...u32(11 + body.length));
      }
      return { csid: 6, type: MessageType.Aggregate, timestamp: rng.next(), streamId: on, payload: Uint8Array.from(rng.oneIn(4) ? tags.slice(0, rng.int(tags.length + 1)) : tags) };
    }
    case 11:
      return { csid: rng.pick([4, 6]), type: rng.pick([MessageType.Audio, MessageType.Video]), timestamp: rng.next(), streamId: on, payload: rng.bytes(rng.int(40)) };
    case 12: {
      const payload = encodeAmf0(['_result', txn, null, info(rng)]);
      return { csid: 3, type: MessageType.CommandAmf0, timestamp: 0, streamId: on, payload: mutate(rng, payload, [payload]) };
    }
    default:
      return { csid: 2 + rng.int(7), type: rng.pick([16, 19, 21, 0, 255]), timestamp: 0, streamId: on, payload: rng.bytes(rng.int(20)) };
  }
}

/** The transcript's messages with some removed, repeated, damaged or joined by hostile ones, chunked again. */
function recombined(rng: Rng, t: Transcript): Uint8Array {
  const streamId = 1;
  const list: RtmpMessage[] = [];
  const cut = rng.oneIn(3) ? rng.int(t.messages.length + 1) : t.messages.length;
  for (const m of t.messages.slice(0, cut)) {
    switch (rng.int(16)) {
      case 0:
        continue;
      case 1:
        list.push(m, m);
        break;
      case 2:
        list.push({ ...m, payload: mutate(rng, m.payload, [m.payload]) });
        break;
      case 3:
        list.push(hostileMessage(rng, streamId), m);
        break;
      default:
        list.push(m);
    }
  }
  for (let n = rng.int(6); n > 0; n--) list.splice(rng.int(list.length + 1), 0, hostileMessage(rng, streamId));
  const w = new ChunkWriter();
  const out: Uint8Array[] = [t.bytes.subarray(0, HANDSHAKE)];
  for (const m of list) {
    out.push(w.encode(m));
    if (m.type === MessageType.SetChunkSize && m.payload.length >= 4) {
      const size = new DataView(m.payload.buffer, m.payload.byteOffset).getUint32(0);
      if (size >= 1 && size <= 0xffffff) w.setChunkSize(size);
      else break; // the client refuses it: nothing after it is read
    }
  }
  return cat(...out);
}

interface Session {
  events: string[];
  error: string | undefined;
  phases: ClientPhase[];
  sent: number;
  receives: number;
}

/** A fresh core fed `chunks` in order, sending a tag whenever a publisher is live. */
function session(t: Transcript, chunks: readonly Uint8Array[], input: Uint8Array): Session {
  const out: Session = { events: [], error: undefined, phases: [], sent: 0, receives: 0 };
  let phase: ClientPhase = 'idle';
  // Looked at whenever the core sends or emits, inside receive() too, and after each call.
  const observe = (): void => {
    const next = c.phase;
    if (PHASES.indexOf(next) < PHASES.indexOf(phase)) throw fuzzFailure(`${t.name}: phase went from ${phase} back to ${next}`, input);
    if (next !== phase) out.phases.push(next);
    phase = next;
  };
  const c: RtmpClientCore = core(t.role, t.url, {
    send: (b) => {
      out.sent += b.length;
      observe();
    },
    event: (e) => {
      out.events.push(e.type === 'tag' ? `tag ${e.tag.type} ${e.tag.timestamp} ${e.tag.data.length} ${fnv(e.tag.data)}` : JSON.stringify(e));
      observe();
    },
  });
  c.start();
  const step = (what: string, fn: () => void): boolean => {
    try {
      fn();
    } catch (err) {
      if (!(err instanceof OnairError)) throw fuzzFailure(`${t.name}: ${what} threw ${String(err)} (not OnairError)`, input, err);
      out.error = `${err.code}: ${err.message}`;
      return false;
    }
    observe();
    return true;
  };
  for (const chunk of chunks) {
    out.receives++;
    if (!step('receive', () => c.receive(chunk))) break;
    if (t.role === 'publish' && c.phase === 'live') c.sendTag({ type: 9, timestamp: out.receives, data: Uint8Array.of(0x17, 1, 0, 0, 0) });
  }
  step('finish', () => c.finish());
  let closed: unknown;
  step('peerClosed', () => (closed = c.peerClosed()));
  if (closed !== undefined && !(closed instanceof OnairError)) throw fuzzFailure(`${t.name}: peerClosed gave ${String(closed)}`, input);
  return out;
}

function checkEvents(t: Transcript, s: Session, input: Uint8Array): void {
  const count = (type: string): number => s.events.filter((e) => e.startsWith(`{"type":"${type}"`)).length;
  if (count('started') > 1 || count('ended') > 1) throw fuzzFailure(`${t.name}: ${count('started')} started, ${count('ended')} ended events`, input);
  const tags = s.events.filter((e) => e.startsWith('tag '));
  if (t.role === 'publish' && tags.length > 0) throw fuzzFailure(`${t.name}: a publisher emitted tags`, input);
  if (tags.some((e) => !/^tag (8|9|18) /.test(e))) throw fuzzFailure(`${t.name}: a tag of type ${tags.find((e) => !/^tag (8|9|18) /.test(e))}`, input);
  const end = s.events.findIndex((e) => e.startsWith('{"type":"ended"'));
  if (end >= 0 && s.events.slice(end).some((e) => e.startsWith('tag '))) throw fuzzFailure(`${t.name}: tags after ended`, input);
  const started = s.events.findIndex((e) => e.startsWith('{"type":"started"'));
  if (started >= 0 !== s.phases.includes('live')) throw fuzzFailure(`${t.name}: started ${started >= 0} but live ${s.phases.includes('live')}`, input);
}

describe('fuzz: RtmpClientCore', () => {
  it('replays the recorded transcripts: publish and play reach live, play ends with the publisher', () => {
    expect(transcripts.map((t) => t.name)).toEqual(['nginx-rtmp publish', 'nginx-rtmp play', 'node-media-server publish', 'node-media-server play']);
    for (const t of transcripts) {
      const s = session(t, [t.bytes], t.bytes);
      expect(s.error, t.name).toBeUndefined();
      expect(s.phases, t.name).toContain('live');
      expect(s.phases.slice(-2), t.name).toEqual(['ending', 'closed']);
      if (t.role === 'play') expect(s.events.filter((e) => e.startsWith('tag ')).length, t.name).toBeGreaterThan(30);
      if (t.name === 'nginx-rtmp play') expect(s.events.some((e) => e.startsWith('{"type":"ended"')), t.name).toBe(true);
    }
  });

  it('server bytes mutated, recombined or hostile: OnairError only, phases forward, same events however split, bounded', { timeout: FUZZ_TIMEOUT_MS }, () => {
    let failed = 0;
    let live = 0;
    let bytes = 0;
    const run = fuzz('RTMP RtmpClientCore', 0xc11e, (rng, c) => {
      const t = rng.pick(transcripts);
      let input: Uint8Array;
      if (rng.oneIn(2)) {
        input = recombined(rng, t);
      } else {
        // The server's own bytes, the handshake left alone (one case in 50 excepted), cut short or not.
        const at = rng.oneIn(50) ? 0 : HANDSHAKE;
        const end = rng.oneIn(3) ? at + rng.int(t.bytes.length - at + 1) : t.bytes.length;
        input = cat(t.bytes.subarray(0, at), mutate(rng, t.bytes.subarray(at, end), transcripts.map((x) => x.bytes.subarray(HANDSHAKE))));
      }
      bytes += input.length;
      let whole: Session | undefined;
      const grown = arrayBufferGrowth(() => {
        whole = session(t, [input], input);
      });
      // The chunk reader's buffers, the events' copies of payloads: a few times the input.
      if (grown > 4 * input.length + (2 << 20)) throw fuzzFailure(`${t.name}: ${grown} bytes allocated for ${input.length}`, input);
      // Byte by byte on every eighth case (up to 8 KiB: the publish transcripts), else random cuts.
      const at = c % 8 === 0 && input.length < 8192 ? Array.from(input.keys()).slice(1) : rng.oneIn(2) ? randomCuts(rng, input.length) : smallCuts(rng, input.length, 512);
      const split = session(t, pieces(input, at), input);
      for (const s of [whole!, split]) checkEvents(t, s, input);
      // Acknowledgements follow the pushes (one at most per receive), pings and commands the input.
      if (split.sent > 5000 + 16 * split.receives + 3 * input.length) throw fuzzFailure(`${t.name}: sent ${split.sent} bytes for ${input.length} in ${split.receives} pushes`, input);
      expectSame(`${t.name} events whole and split`, input, [split.events, split.error], [whole!.events, whole!.error]);
      if (whole!.error) failed++;
      if (whole!.phases.includes('live')) live++;
    });
    recordInputs('RTMP RtmpClientCore (bytes received)', bytes, run);
    // The state machine must be driven into its live phase often, and refuse often.
    expect(live).toBeGreaterThan(run.cases / 5);
    expect(failed).toBeGreaterThan(run.cases / 10);
    expect(failed).toBeLessThan(run.cases * 0.9);
  });
});

describe('RtmpClientCore: inputs the fuzzer found', () => {
  /** One message in one fmt 0 chunk (at most 128 bytes: the default chunk size), RTMP spec §5.3.1. */
  const message = (csid: number, type: number, streamId: number, payload: Uint8Array): Uint8Array =>
    cat(Uint8Array.of(csid, 0, 0, 0, 0, 0, payload.length, type, streamId, 0, 0, 0), payload);
  const S0S1S2 = cat(Uint8Array.of(3), new Uint8Array(2 * 1536).fill(0x5a));

  function live(role: RtmpRole): { c: RtmpClientCore; events: RtmpClientEvent[] } {
    const events: RtmpClientEvent[] = [];
    const c = core(role, 'rtmp://127.0.0.1/live/key', { send: () => undefined, event: (e) => events.push(e) });
    c.start();
    c.receive(S0S1S2);
    c.receive(message(3, 20, 0, encodeAmf0(['_result', 1, null, { level: 'status', code: 'NetConnection.Connect.Success' }])));
    // Publish: releaseStream 2, FCPublish 3, createStream 4. Play: createStream 2.
    c.receive(message(3, 20, 0, encodeAmf0(['_result', role === 'publish' ? 4 : 2, null, 1])));
    return { c, events };
  }

  it('acts on the messages a read completes before a malformed chunk in the same read', () => {
    const { c, events } = live('publish');
    const start = message(5, 20, 1, encodeAmf0(['onStatus', 0, null, { level: 'status', code: 'NetStream.Publish.Start' }]));
    // fmt 2 header on chunk stream 61, never opened with fmt 0.
    expect(() => c.receive(cat(start, Uint8Array.of(0xbd, 0, 0, 0)))).toThrow('chunk stream 61 starts with a fmt 2 header');
    expect(events.map((e) => e.type)).toEqual(['started']); // was []: Publish.Start was lost
  });

  it('passes on only audio, video and script tags from an aggregate message', () => {
    const { c, events } = live('play');
    c.receive(message(5, 20, 1, encodeAmf0(['onStatus', 0, null, { level: 'status', code: 'NetStream.Play.Start' }])));
    // Aggregate (type 22): a type-20 tag, then a video tag, each with its PreviousTagSize.
    const aggregate = Uint8Array.of(
      0x14, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x05, 0, 0, 0, 12,
      0x09, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0x17, 0x02, 0, 0, 0, 13,
    );
    c.receive(message(6, 22, 1, aggregate));
    expect(events.flatMap((e) => (e.type === 'tag' ? [e.tag.type] : []))).toEqual([9]); // was [20, 9]
  });
});

import { EventEmitter } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Amf0EcmaArray,
  CloseCode,
  FlvReader,
  MAX_STUDIO_BINARY_BYTES,
  encodeAmf0,
  flvHeader,
  flvTag,
  parseStudioServerMessage,
  type FlvTag,
  type StudioServerMessage,
} from '@onair/shared';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shortFlv } from '../../test/harness/fixtures.js';
import { comparePackets, ffprobeStreams, framemd5 } from '../../test/harness/judge.js';
import { startNginxRtmp, type NginxRtmp } from '../../test/harness/nginx.js';
import { freePort } from '../../test/harness/ports.js';
import { makeTempDir, waitFor } from '../../test/harness/proc.js';
import { StudioClient } from '../../test/harness/studio-client.js';
import { Rng, mutate } from '../../../shared/src/testing/fuzz.js';
import { FUZZ_CASES, FUZZ_TIMEOUT_MS, fuzzAsync, fuzzFailure, recordInputs } from '../../../shared/src/testing/fuzz-run.js';
import { mediaSeeds } from '../../../shared/src/testing/media-seeds.js';
import { OnairServer } from '../server/onair-server.js';
import { ServerPolicy } from '../server/policy.js';
import type { WebSocket as WsSocket } from 'ws';
import { StudioSessions } from './studio-sessions.js';
import { serveStudioSocket } from './studio-socket.js';

// Seeded fuzzing of the studio WebSocket protocol (docs/ws-protocol.md) against real sessions:
// serveStudioSocket and StudioSessions driven in-process through sockets that behave like ws's
// (close codes and reasons checked as ws checks them, messages still delivered while closing),
// then the same sequences over real WebSockets to `OnairServer`. Pages send random sequences of
// start, resume, gap, stop and binary frames: valid tags, mutated tags, garbage, JSON that is
// not a message. Destinations point at a closed port, so sessions retry without any RTMP server;
// the last test adds nginx-rtmp. Properties: nothing throws out of the socket handlers and no
// promise is left rejected; every text the bridge sends parses with the page's validator; a bad
// input closes only the socket it came on, with the close code and error code docs/ws-protocol.md
// gives for it, while a good session next to it keeps every frame; sessions and timers come
// back to what they were once the sockets are gone.

/** Close codes docs/ws-protocol.md lists for the studio socket, and the error codes sent with each. */
const CLOSES = new Map<number, readonly string[]>([
  [CloseCode.Normal, []],
  [CloseCode.GoingAway, []],
  [CloseCode.InvalidData, ['FLV_MALFORMED', 'FLV_SCRIPT_REFUSED']],
  [CloseCode.PolicyViolation, ['BAD_MESSAGE', 'ALREADY_LIVE']],
  [CloseCode.TooBig, []],
  [CloseCode.TryAgainLater, ['SESSION_LIMIT']],
  [CloseCode.Superseded, []],
  [CloseCode.SessionEnded, ['SESSION_UNKNOWN']],
]);

const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/**
 * The part of a ws WebSocket that serveStudioSocket uses, with ws's rules: close() refuses what
 * ws refuses (invalid codes, reasons over 123 bytes), a closing socket still emits the messages
 * the page sent before it saw the close, and 'close' comes once the page answers.
 */
class FakeSocket extends EventEmitter {
  readonly OPEN = OPEN;
  readyState = OPEN;
  readonly sent: StudioServerMessage[] = [];
  closeCode: number | undefined;
  closeReason = '';
  /** The socket whose input was being handled when this one was closed. */
  closedBy: FakeSocket | undefined;

  constructor(
    readonly name: string,
    readonly driver: { actor: FakeSocket | undefined; fail: (why: string) => void },
  ) {
    super();
  }

  send(data: string): void {
    if (this.readyState !== OPEN) throw new Error('send on a socket that is not open');
    let msg: StudioServerMessage;
    try {
      msg = parseStudioServerMessage(data);
    } catch (err) {
      this.driver.fail(`the page's validator refuses what the bridge sent on ${this.name} (${String(err)}): ${data.slice(0, 300)}`);
      return;
    }
    this.sent.push(msg);
  }

  close(code?: number, reason?: string): void {
    if (this.readyState !== OPEN) return;
    if (code === undefined || !Number.isInteger(code) || code < 1000 || code > 4999) throw new TypeError(`invalid close code ${String(code)}`);
    if (reason !== undefined && Buffer.byteLength(reason) > 123) throw new RangeError(`close reason of ${Buffer.byteLength(reason)} bytes`);
    this.closeCode = code;
    this.closeReason = reason ?? '';
    this.closedBy = this.driver.actor;
    this.readyState = CLOSING;
  }

  /** The page's side of the closing handshake, or the connection dropping. */
  gone(): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.emit('close', this.closeCode ?? 1006, Buffer.from(this.closeReason));
  }

  terminate(): void {
    this.gone();
  }

  /** A live page's browser answers pings by itself. */
  ping(): void {
    if (this.readyState === OPEN) setImmediate(() => this.emit('pong'));
  }
}

let tags: FlvTag[] = [];
/** Binary frames a page sends, in order: metadata, sequence headers, media. */
let frames: Uint8Array[] = [];
let closedPort = 0;

beforeAll(async () => {
  tags = mediaSeeds().tags['bframes']!;
  frames = tags.map((t) => flvTag(t));
  closedPort = await freePort();
});

// ---- what pages send ----------------------------------------------------------------------

type Op =
  | { text: string }
  | { binary: Uint8Array }
  | { drop: true }; // the page's connection goes away

/** A real RTMP server some destinations point at (the last test), instead of the closed port. */
let rtmpPort: number | undefined;

function destinations(rng: Rng): { id: string; url: string }[] {
  return Array.from({ length: 1 + rng.int(3) }, (_, i) => ({
    id: `d${i}`,
    url: rng.int(6)
      ? `rtmp://127.0.0.1:${rtmpPort !== undefined && rng.oneIn(2) ? rtmpPort : closedPort}/live/fuzz${rng.int(1000)}`
      : rng.pick(['rtmp://[::1/x/y', 'rtmp://127.0.0.1:0/a/b', 'rtmps://a/b', 'RTMP://h']),
  }));
}

function hostileText(rng: Rng, tokens: readonly { id: string; token: string }[]): string {
  const known = tokens.length > 0 && rng.oneIn(2) ? rng.pick(tokens) : { id: 'deadbeef', token: 'nope' };
  const valid = [
    { type: 'start', destinations: destinations(rng) },
    { type: 'resume', session: known.id, token: rng.oneIn(2) ? known.token : `${known.token}x` },
    { type: 'gap', frames: rng.int(100), ms: rng.int(5000) },
    { type: 'stop' },
  ];
  const msg = rng.pick(valid);
  switch (rng.int(8)) {
    case 0:
      return JSON.stringify({ ...msg, type: rng.pick(['Start', 'play', '', 7, null]) });
    case 1:
      return JSON.stringify({ ...msg, destinations: rng.pick([[], 'x', Array(9).fill({ id: 'a', url: 'rtmp://h/a/b' }), [{ id: 'a', url: 'http://x' }]]) });
    case 2:
      return JSON.stringify(msg).slice(0, rng.int(JSON.stringify(msg).length));
    case 3:
      return rng.pick(['', 'null', '[]', '"stop"', '{', '\u0000', 'x'.repeat(70_000), `{"type":"gap","frames":-1,"ms":1e400}`]);
    default:
      return JSON.stringify(msg);
  }
}

const META = encodeAmf0(['@setDataFrame', 'onMetaData', new Amf0EcmaArray({ width: 640, encoder: 'x'.repeat(400) })]);

function hostileBinary(rng: Rng, next: number): Uint8Array {
  const frame = frames[next % frames.length]!;
  switch (rng.int(10)) {
    case 0:
      return mutate(rng, frame, frames);
    case 1:
      return rng.bytes(rng.int(40));
    case 2: {
      // A script tag that is not a clean onMetaData.
      const body = rng.pick([
        encodeAmf0(['onTextData', { text: 'x' }]),
        encodeAmf0(['onMetaData', 'not an object']),
        mutate(rng, META, [META]),
        Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0xff),
      ]);
      return flvTag({ type: 18, timestamp: 0, data: body });
    }
    case 3:
      // Valid tags of odd kinds: unknown type, empty body, timestamps far apart.
      return flvTag({ type: rng.pick([8, 9, 1, 31]), timestamp: rng.next(), data: rng.bytes(rng.int(3)) });
    default:
      return frame;
  }
}

function ops(rng: Rng, tokens: readonly { id: string; token: string }[]): Op[] {
  const list: Op[] = [];
  if (rng.int(4)) list.push({ text: JSON.stringify({ type: 'start', destinations: destinations(rng) }) });
  let next = 0;
  for (let n = rng.int(30); n > 0; n--) {
    switch (rng.int(10)) {
      case 0:
      case 1:
        list.push({ text: hostileText(rng, tokens) });
        break;
      case 2:
        if (rng.oneIn(4)) list.push({ drop: true });
        else list.push({ binary: hostileBinary(rng, next++) });
        break;
      default:
        list.push({ binary: frames[next++ % frames.length]! });
    }
  }
  return list;
}

function describeOps(list: readonly Op[]): string {
  return JSON.stringify(list.map((o) => ('text' in o ? { text: o.text.slice(0, 200) } : 'binary' in o ? { binary: Buffer.from(o.binary.subarray(0, 48)).toString('hex') + (o.binary.length > 48 ? `…(${o.binary.length})` : '') } : 'drop')));
}

// ---- checks -------------------------------------------------------------------------------

function checkClose(s: { name: string; sent: readonly StudioServerMessage[]; closeCode: number | undefined; closeReason: string }, replay: () => string): void {
  if (s.closeCode === undefined) return;
  const allowed = CLOSES.get(s.closeCode);
  if (allowed === undefined) throw fuzzFailure(`${s.name} closed with ${s.closeCode} (${s.closeReason}), a code docs/ws-protocol.md does not give`, replay);
  const error = s.sent.findLast((m) => m.type === 'error');
  if (allowed.length > 0 && (error === undefined || !allowed.includes(error.code))) {
    throw fuzzFailure(`${s.name} closed with ${s.closeCode} after error ${error?.type === 'error' ? error.code : 'none'}, expected one of ${allowed.join(', ')}`, replay);
  }
}

function timers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('fuzz: studio protocol, in process', () => {
  it('random page sequences end only their own socket, with a documented code; a good session keeps every frame', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const faults: string[] = [];
    const onFault = (err: unknown): void => void faults.push(String(err instanceof Error ? err.stack : err));
    process.on('uncaughtException', onFault);
    process.on('unhandledRejection', onFault);
    const log: string[] = [];
    const sessions = new StudioSessions(
      {
        policy: new ServerPolicy({ host: '127.0.0.1' }),
        graceMs: 2,
        retry: { baseMs: 50, factor: 2, maxMs: 200, jitter: 0.1 },
        statusIntervalMs: 50,
        ackIntervalMs: 10,
        log: (line) => void (log.length < 100 && log.push(line)),
      },
      { maxSessions: 6, maxSessionsPerClient: 3 },
    );
    const driver = { actor: undefined as FakeSocket | undefined, fail: (why: string) => void faults.push(why) };
    const open = (name: string, client = '127.0.0.1'): FakeSocket => {
      const s = new FakeSocket(name, driver);
      serveStudioSocket(s as unknown as WsSocket, client, sessions, { resendBufferMs: 15_000, pingIntervalMs: 500 });
      return s;
    };
    /** Hands `data` to `s` as ws would; nothing may throw out of the handlers. */
    const deliver = (s: FakeSocket, data: Uint8Array | string, replay: () => string): void => {
      if (s.readyState === CLOSED) return;
      driver.actor = s;
      try {
        if (typeof data === 'string') s.emit('message', Buffer.from(data), false);
        else s.emit('message', Buffer.from(data.buffer, data.byteOffset, data.byteLength), true);
      } catch (err) {
        throw fuzzFailure(`${s.name}: the socket handler threw ${String(err)}`, replay, err);
      } finally {
        driver.actor = undefined;
      }
    };

    // The good page: one session, valid frames throughout, across every case.
    const good = open('good');
    deliver(good, JSON.stringify({ type: 'start', destinations: [{ id: 'g', url: `rtmp://127.0.0.1:${closedPort}/live/good` }] }), () => 'good start');
    const goodSession = good.sent.find((m) => m.type === 'session');
    expect(goodSession?.type).toBe('session');
    let goodFrames = 0;
    const timersBefore = timers();

    const tokens: { id: string; token: string }[] = [];
    let inputs = 0;
    let carried = 0;
    const codes = new Map<string, number>();
    const run = await fuzzAsync('studio protocol (page sequences, in process)', 0x57d1, async (rng, c) => {
      // Room for new sessions most of the time (the last cases' end once their grace runs out);
      // otherwise the pages meet the session limit.
      if (rng.int(4)) while (sessions.size > 3) await new Promise((resolve) => setTimeout(resolve, 1));
      const pages = Array.from({ length: 1 + rng.int(3) }, (_, i) => ({
        socket: open(`page${c}.${i}`, rng.oneIn(4) ? `10.0.0.${rng.int(3)}` : '127.0.0.1'),
        ops: ops(rng, tokens),
      }));
      const replay = (): string => pages.map((p) => `${p.socket.name}: ${describeOps(p.ops)}`).join('\n');
      // The pages' operations interleaved, as their frames would arrive.
      const cursors = pages.map(() => 0);
      for (;;) {
        const left = pages.map((p, i) => (cursors[i]! < p.ops.length ? i : -1)).filter((i) => i >= 0);
        if (left.length === 0) break;
        const i = rng.pick(left);
        const page = pages[i]!;
        const op = page.ops[cursors[i]!++]!;
        inputs++;
        if ('drop' in op) page.socket.gone();
        else deliver(page.socket, 'text' in op ? op.text : op.binary, replay);
        // A page sees the close after a while; frames it sent meanwhile still arrive.
        if (page.socket.readyState === CLOSING && rng.oneIn(3)) page.socket.gone();
        if (rng.oneIn(4)) {
          deliver(good, frames[goodFrames % frames.length]!, () => 'good frame');
          goodFrames++;
        }
        if (rng.oneIn(8)) await tick();
      }
      for (const p of pages) {
        for (const m of p.socket.sent) if (m.type === 'session' && tokens.length < 50) tokens.push({ id: m.id, token: m.token });
        if (p.socket.sent.some((m) => m.type === 'session' || m.type === 'resumed')) carried++;
        const code = String(p.socket.closeCode ?? 'open');
        codes.set(code, (codes.get(code) ?? 0) + 1);
        p.socket.gone();
        checkClose(p.socket, replay);
        if (p.socket.closeCode !== undefined && p.socket.closeCode !== CloseCode.Superseded && p.socket.closedBy !== p.socket) {
          throw fuzzFailure(`${p.socket.name} was closed (${p.socket.closeCode}) by input on ${p.socket.closedBy?.name ?? 'no socket'}`, replay);
        }
      }
      if (good.readyState !== OPEN) throw fuzzFailure(`the good page's socket was closed (${good.closeCode} ${good.closeReason})`, replay);
      if (sessions.size > 6) throw fuzzFailure(`${sessions.size} sessions, limit 6`, replay);
      if (faults.length > 0) throw fuzzFailure(`faults: ${faults.join('\n')}`, replay);
      await tick();
    }, { cases: Math.ceil(FUZZ_CASES / 10) }); // about 30 messages and frames each
    recordInputs('studio protocol (messages and frames, in process)', inputs, run);
    // The pages must get sessions, and be refused for each kind of fault, or little was tested.
    expect(carried).toBeGreaterThan(run.cases / 4);
    for (const code of ['1007', '1008', '1013', '4002']) expect(codes.get(code) ?? 0, `closes with ${code}`).toBeGreaterThan(run.cases / 1000);

    // Every fuzz socket is gone: after the grace period only the good session is left, and the
    // timers come back to what they were (destinations stopped retrying, intervals cleared).
    await waitFor('fuzz sessions ended', () => (sessions.size === 1 ? true : undefined), 10_000);
    await waitFor('timers released', () => (timers() <= timersBefore + 2 ? true : undefined), 10_000);
    const status = await waitFor('good status', () => good.sent.findLast((m) => m.type === 'ack'), 5000);
    await waitFor('every good frame acknowledged', () => (good.sent.findLast((m) => m.type === 'ack')?.type === 'ack' && (good.sent.findLast((m) => m.type === 'ack') as { received: number }).received === goodFrames ? true : undefined), 5000);
    expect(status.type).toBe('ack');
    expect(good.readyState).toBe(OPEN);
    deliver(good, JSON.stringify({ type: 'stop' }), () => 'good stop');
    good.gone();
    await sessions.closeAll();
    await waitFor('all sessions ended', () => (sessions.size === 0 ? true : undefined), 10_000);
    process.off('uncaughtException', onFault);
    process.off('unhandledRejection', onFault);
    expect(faults).toEqual([]);
    expect(run.cases).toBeGreaterThan(0);
  });
});

describe('fuzz: studio protocol, over WebSockets, with nginx-rtmp', () => {
  let nginx: NginxRtmp;
  let server: OnairServer;
  let scratch: string;

  beforeAll(async () => {
    scratch = makeTempDir('onair-studio-fuzz-');
    nginx = await startNginxRtmp({ record: true });
    server = await OnairServer.listen({
      host: '127.0.0.1',
      port: 0,
      webRoot: scratch,
      policy: new ServerPolicy({ host: '127.0.0.1' }),
      studioConfig: { localRtmp: null },
      studio: { graceMs: 300, retry: { baseMs: 200, factor: 1.5, maxMs: 1000, jitter: 0.1 }, statusIntervalMs: 200, limits: { maxSessions: 8, maxSessionsPerClient: 8 } },
    });
  });

  afterAll(async () => {
    rtmpPort = undefined;
    await server?.close();
    await nginx?.dispose();
  });

  /** One page's operations over a real socket; resolves with what the page saw. */
  async function page(ops: readonly Op[], rng: Rng): Promise<{ name: string; sent: StudioServerMessage[]; closeCode: number | undefined; closeReason: string; invalid: string[] }> {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/studio-ws`, { origin: `http://127.0.0.1:${server.port}` });
    const seen = { name: 'page', sent: [] as StudioServerMessage[], closeCode: undefined as number | undefined, closeReason: '', invalid: [] as string[] };
    const closed = new Promise<void>((resolve) => {
      ws.on('close', (code, reason) => {
        seen.closeCode = code;
        seen.closeReason = reason.toString();
        resolve();
      });
    });
    ws.on('error', () => undefined);
    ws.on('message', (data, binary) => {
      if (binary) return void seen.invalid.push('a binary frame');
      try {
        seen.sent.push(parseStudioServerMessage(data.toString()));
      } catch (err) {
        seen.invalid.push(String(err));
      }
    });
    await new Promise<void>((resolve) => {
      ws.once('open', () => resolve());
      ws.once('close', () => resolve());
    });
    let dropped = false;
    for (const op of ops) {
      if (ws.readyState !== ws.OPEN) break;
      if ('drop' in op) {
        dropped = true;
        ws.terminate();
      } else {
        ws.send('text' in op ? op.text : op.binary);
      }
      if (rng.oneIn(4)) await new Promise((r) => setTimeout(r, rng.int(20)));
    }
    await Promise.race([closed, new Promise((r) => setTimeout(r, 150))]);
    // A close the page chose itself (a drop, or leaving at the end) is not the bridge's to check.
    if (seen.closeCode === undefined || dropped) {
      ws.close();
      await closed;
      seen.closeCode = undefined;
    }
    return seen;
  }

  it('hostile pages next to a good one: documented close codes only, and nginx records the good stream whole', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    rtmpPort = nginx.rtmpPort;
    const input = new FlvReader().push(readFileSync(await shortFlv()));
    const good = new StudioClient(server.port);
    await good.start([{ id: 'nginx', url: nginx.url('live', 'goodfuzz') }]);
    await good.waitState('nginx', 'live');
    let sending = true;
    // The good page streams the fixture, paced, while the hostile pages come and go.
    const streaming = good.sendTags(input, true).finally(() => (sending = false));
    let inputs = 0;
    const run = await fuzzAsync('studio protocol (page sequences, WebSockets and nginx)', 0x57d2, async (rng) => {
      const list: Op[] = ops(rng, []);
      if (rng.oneIn(8)) list.push({ binary: new Uint8Array(MAX_STUDIO_BINARY_BYTES + 1) }); // 1009 from ws itself
      inputs += list.length;
      const seen = await page(list, rng);
      const replay = (): string => describeOps(list);
      if (seen.invalid.length > 0) throw fuzzFailure(`the page's validator refused: ${seen.invalid.join('; ')}`, replay);
      checkClose(seen, replay);
      if (good.closeCode !== undefined) throw fuzzFailure(`the good page's socket closed (${good.closeCode} ${good.closeReason})`, replay);
    }, { stop: () => !sending });
    recordInputs('studio protocol (messages and frames, WebSockets and nginx)', inputs, run);
    await streaming;
    await good.stop();
    good.close();
    expect(run.cases).toBeGreaterThan(10);
    // What nginx recorded equals the fixture from its first keyframe, as in studio-session.test.ts.
    const expectedFile = join(scratch, 'expected.flv');
    const firstKey = input.findIndex((t) => t.type === 9 && t.data[0] === 0x17 && t.data[1] === 1);
    const expected = input.filter((t, i) => i >= firstKey || t.type === 18 || t.data[1] === 0);
    writeFileSync(expectedFile, Buffer.concat([flvHeader({ audio: true, video: true }), ...expected.map((t) => flvTag(t))]));
    const recorded = await nginx.recordingDone('goodfuzz');
    const cmp = comparePackets(await framemd5(expectedFile), await framemd5(recorded), 'exact');
    expect(cmp.equal, cmp.summary).toBe(true);
    await ffprobeStreams(recorded, { decode: true });
  });
});

import { describe, expect, it } from 'vitest';
import { OnairError } from '../errors.js';
import { Rng } from '../testing/fuzz.js';
import { FUZZ_TIMEOUT_MS, attempt, expectSame, fuzz, fuzzFailure } from '../testing/fuzz-run.js';
import { MAX_CLOSE_REASON_BYTES, MAX_REASON_LENGTH, capReason, closeReason } from './close.js';
import {
  MAX_DESTINATIONS,
  MAX_STUDIO_TEXT_BYTES,
  parseStudioClientMessage,
  parseStudioServerMessage,
  type StudioClientMessage,
  type StudioServerMessage,
} from './studio.js';
import { MAX_WATCH_TEXT_BYTES, parseWatchServerMessage, parseWatchTarget, watchTargetPath, type WatchServerMessage } from './watch.js';

// Seeded fuzzing of the JSON validators of both WebSocket protocols (docs/ws-protocol.md), which
// read what the other side sends: random JSON-ish texts, valid messages with fields at and past
// their limits, and those mutated as values and as text. Properties: the message or OnairError
// BAD_MESSAGE, never another error; what is accepted holds only known fields within their limits,
// and serialises back into a text that parses to the same value; texts over the limit are refused.
// The watch-target path parser and the close-reason cutters run on the same kind of input.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---- random JSON --------------------------------------------------------------------------

const KEYS = [
  'type', 'destinations', 'id', 'url', 'session', 'token', 'frames', 'ms', 'version', 'maxBinaryBytes', 'graceMs',
  'resendBufferMs', 'received', 'bytes', 'tags', 'gaps', 'count', 'state', 'reason', 'retryInMs', 'dropped',
  'bufferedBytes', 'movedTo', 'moves', 'droppedGops', 'code', 'message', 'source', 'viewers', '__proto__', 'constructor', 'toString', '', 'x',
];
const TYPES = ['start', 'resume', 'gap', 'stop', 'welcome', 'session', 'resumed', 'ack', 'status', 'error', 'reconnect', 'Start', 'stop ', ''];
const STATES = ['connecting', 'live', 'retrying', 'failed', 'stopped', 'waiting', 'LIVE', ''];
const NUMBERS = [0, -0, 1, -1, 0.5, 2 ** 53, 2 ** 53 + 2, 1e308, Number.MIN_VALUE, -1e-300];
/** Characters that JSON writes differently (escapes, lone surrogates), and plain ones. */
const CHARS = ['a', 'Z', '0', '-', '_', '/', ':', ' ', '"', '\\', '\n', '\u0000', '\u007f', 'é', '€', '😀', '\u2028', '\ud800', '\udfff'];

/**
 * While set, every text is at its limit and made of this one character: the largest message the
 * validators allow, in a character JSON may write longer than it reads.
 */
let atLimits: string | undefined;

function randomText(rng: Rng, max: number): string {
  if (atLimits !== undefined) return atLimits.repeat(max);
  const n = rng.oneIn(8) ? max + rng.int(3) - 1 : rng.int(Math.min(max, 40));
  // Plain characters, a mix, or one character repeated.
  const mode = rng.int(3);
  if (mode === 0) return rng.pick(CHARS).repeat(n);
  let s = '';
  for (let i = 0; i < n; i++) s += mode === 1 ? rng.pick(CHARS) : rng.pick(['a', 'b', '0', '-', '_']);
  return s;
}

function randomJson(rng: Rng, depth: number): unknown {
  switch (rng.int(depth > 0 ? 9 : 6)) {
    case 0:
      return rng.pick(NUMBERS);
    case 1:
      return rng.int(100_000);
    case 2:
      return rng.oneIn(2) ? rng.oneIn(2) : null;
    case 3:
      return rng.pick([...TYPES, ...STATES]);
    case 4:
    case 5:
      return randomText(rng, rng.pick([64, 128, 512, 2048]));
    case 6:
      return Array.from({ length: rng.int(rng.oneIn(4) ? 12 : 3) }, () => randomJson(rng, depth - 1));
    default: {
      const obj: Record<string, unknown> = {};
      for (let n = rng.int(6); n > 0; n--) Object.defineProperty(obj, rng.pick(KEYS), { value: randomJson(rng, depth - 1), enumerable: true, writable: true, configurable: true });
      return obj;
    }
  }
}

// ---- valid messages, at their limits --------------------------------------------------------

const SESSION_CHARS = 'abcXYZ019_-';

function sessionText(rng: Rng, max: number): string {
  const n = rng.oneIn(4) ? max : 1 + rng.int(max);
  let s = '';
  for (let i = 0; i < n; i++) s += SESSION_CHARS[rng.int(SESSION_CHARS.length)];
  return s;
}

function url(rng: Rng): string {
  const base = rng.pick(['rtmp://', 'rtmps://', 'RTMP://', 'rtmp://127.0.0.1:1935/live/']);
  return base + randomText(rng, 2048 - base.length);
}

function nonNegative(rng: Rng): number {
  return rng.pick([0, 1, rng.int(1_000_000), 2 ** 53, 1e308, 0.25]);
}

function studioClient(rng: Rng): Record<string, unknown> {
  switch (rng.int(4)) {
    case 0: {
      const n = atLimits !== undefined || rng.oneIn(4) ? MAX_DESTINATIONS : 1 + rng.int(MAX_DESTINATIONS);
      return { type: 'start', destinations: Array.from({ length: n }, (_, i) => ({ id: `${i}${randomText(rng, 62)}`, url: url(rng) })) };
    }
    case 1:
      return { type: 'resume', session: sessionText(rng, 64), token: sessionText(rng, 128) };
    case 2:
      return { type: 'gap', frames: nonNegative(rng), ms: nonNegative(rng) };
    default:
      return { type: 'stop' };
  }
}

function studioServer(rng: Rng): Record<string, unknown> {
  switch (rng.int(6)) {
    case 0:
      return { type: 'welcome', version: 2, maxBinaryBytes: nonNegative(rng), graceMs: nonNegative(rng), resendBufferMs: nonNegative(rng) };
    case 1:
      return { type: 'session', id: sessionText(rng, 64), token: sessionText(rng, 128) };
    case 2:
      return { type: rng.pick(['ack', 'resumed']), received: nonNegative(rng) };
    case 3:
      return { type: 'error', code: randomText(rng, 64), message: randomText(rng, MAX_REASON_LENGTH) };
    default: {
      const n = atLimits !== undefined || rng.oneIn(3) ? MAX_DESTINATIONS : rng.int(MAX_DESTINATIONS + 1);
      const destinations = Array.from({ length: n }, () => {
        const d: Record<string, unknown> = {
          id: randomText(rng, 64), url: url(rng), state: rng.pick(STATES.slice(0, 5)),
          bytes: nonNegative(rng), dropped: nonNegative(rng), bufferedBytes: nonNegative(rng),
        };
        if (rng.oneIn(2)) d['reason'] = randomText(rng, MAX_REASON_LENGTH);
        if (rng.oneIn(2)) d['retryInMs'] = nonNegative(rng);
        if (rng.oneIn(4)) d['movedTo'] = url(rng);
        if (rng.oneIn(4)) d['moves'] = nonNegative(rng);
        if (rng.oneIn(4)) d['droppedGops'] = nonNegative(rng);
        return d;
      });
      return { type: 'status', destinations, received: { bytes: nonNegative(rng), tags: nonNegative(rng) }, gaps: { count: nonNegative(rng), frames: nonNegative(rng), ms: nonNegative(rng) } };
    }
  }
}

function watchServer(rng: Rng): Record<string, unknown> {
  switch (rng.int(4)) {
    case 0:
      return { type: 'welcome', version: 1, source: url(rng) };
    case 1:
      return { type: 'error', code: randomText(rng, 64), message: randomText(rng, MAX_REASON_LENGTH) };
    case 2:
      return { type: 'reconnect', reason: randomText(rng, MAX_REASON_LENGTH) };
    default: {
      const m: Record<string, unknown> = { type: 'status', state: rng.pick(['connecting', 'live', 'waiting', 'failed']), viewers: nonNegative(rng) };
      if (rng.oneIn(2)) m['reason'] = randomText(rng, MAX_REASON_LENGTH);
      if (rng.oneIn(2)) m['retryInMs'] = nonNegative(rng);
      return m;
    }
  }
}

/** One change to a value tree: a field removed, retyped, replaced, or an unknown one added. */
function mutateValue(rng: Rng, v: unknown): unknown {
  if (Array.isArray(v)) {
    if (v.length === 0 || rng.oneIn(4)) return rng.oneIn(2) ? [...v, randomJson(rng, 2)] : v.slice(1);
    const i = rng.int(v.length);
    return v.map((x, k) => (k === i ? mutateValue(rng, x) : x));
  }
  if (v !== null && typeof v === 'object') {
    const obj = { ...(v as Record<string, unknown>) };
    const keys = Object.keys(obj);
    const key = keys.length && !rng.oneIn(5) ? rng.pick(keys) : rng.pick(KEYS);
    switch (rng.int(4)) {
      case 0:
        delete obj[key];
        break;
      case 1:
        obj[key] = randomJson(rng, 2);
        break;
      default:
        obj[key] = key in obj ? mutateValue(rng, obj[key]) : randomJson(rng, 1);
    }
    return obj;
  }
  return rng.oneIn(2) ? randomJson(rng, 1) : v;
}

/** Text-level damage: a character changed, inserted or removed, a cut, a duplicated key. */
function mutateText(rng: Rng, text: string): string {
  const i = rng.int(text.length + 1);
  switch (rng.int(5)) {
    case 0:
      return text.slice(0, i) + rng.pick(['"', ',', '}', ']', ':', '\\', '\ud800', '1e400', '-0', '{"type":"stop"}']) + text.slice(i + 1);
    case 1:
      return text.slice(0, i);
    case 2:
      return text.slice(0, i) + text.slice(i + 1 + rng.int(8));
    case 3:
      // JSON.parse keeps the last of duplicated keys: the validator must judge that one.
      return text.replace(/^\{/, `{"type":${JSON.stringify(rng.pick(TYPES))},`);
    default:
      return ` \n${text}\t `;
  }
}

/** JSON text as JSON.stringify writes it, or with the lone surrogates it escapes written raw. */
function write(rng: Rng, value: unknown): string {
  const text = JSON.stringify(value);
  return rng.oneIn(2) ? text : text.replace(/(?<!\\)((?:\\\\)*)\\u(d[89a-f][0-9a-f]{2})/g, (_, pairs: string, code: string) => pairs + String.fromCharCode(parseInt(code, 16)));
}

function input(rng: Rng, valid: (rng: Rng) => Record<string, unknown>, max: number): string {
  atLimits = rng.oneIn(20) ? rng.pick(CHARS) : undefined;
  try {
    // As a WebSocket delivers text: UTF-8 decoded, so a lone surrogate (which UTF-8 cannot
    // carry) arrives as U+FFFD.
    return decoder.decode(encoder.encode(anyInput(rng, valid, max)));
  } finally {
    atLimits = undefined;
  }
}

function anyInput(rng: Rng, valid: (rng: Rng) => Record<string, unknown>, max: number): string {
  switch (rng.int(6)) {
    case 0:
      return write(rng, randomJson(rng, 4));
    case 1:
      return mutateText(rng, write(rng, valid(rng)));
    case 2:
      return write(rng, mutateValue(rng, mutateValue(rng, valid(rng))));
    case 3:
      // Just over or under the size limit, padded with spaces (valid JSON) or with a long field.
      return rng.oneIn(2) ? write(rng, valid(rng)).padEnd(max + rng.int(3) - 1, ' ') : write(rng, { ...valid(rng), x: 'y'.repeat(max) });
    default:
      return write(rng, valid(rng));
  }
}

// ---- what an accepted message may hold ------------------------------------------------------

const SESSION = /^[A-Za-z0-9_-]+$/;
const isCount = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const isText = (v: unknown, max: number): boolean => typeof v === 'string' && v.length <= max;
const hasOnly = (obj: object, keys: readonly string[]): boolean => Object.keys(obj).every((k) => keys.includes(k));

function clientOk(m: StudioClientMessage): boolean {
  switch (m.type) {
    case 'start':
      return (
        hasOnly(m, ['type', 'destinations']) && m.destinations.length >= 1 && m.destinations.length <= MAX_DESTINATIONS &&
        new Set(m.destinations.map((d) => d.id)).size === m.destinations.length &&
        m.destinations.every((d) => hasOnly(d, ['id', 'url']) && isText(d.id, 64) && d.id !== '' && isText(d.url, 2048) && /^rtmps?:\/\//i.test(d.url))
      );
    case 'resume':
      return hasOnly(m, ['type', 'session', 'token']) && isText(m.session, 64) && SESSION.test(m.session) && isText(m.token, 128) && SESSION.test(m.token);
    case 'gap':
      return hasOnly(m, ['type', 'frames', 'ms']) && isCount(m.frames) && isCount(m.ms);
    case 'stop':
      return hasOnly(m, ['type']);
  }
}

function serverOk(m: StudioServerMessage): boolean {
  switch (m.type) {
    case 'welcome':
      return hasOnly(m, ['type', 'version', 'maxBinaryBytes', 'graceMs', 'resendBufferMs']) && [m.version, m.maxBinaryBytes, m.graceMs, m.resendBufferMs].every(isCount);
    case 'session':
      return hasOnly(m, ['type', 'id', 'token']) && isText(m.id, 64) && SESSION.test(m.id) && isText(m.token, 128) && SESSION.test(m.token);
    case 'resumed':
    case 'ack':
      return hasOnly(m, ['type', 'received']) && isCount(m.received);
    case 'error':
      return hasOnly(m, ['type', 'code', 'message']) && isText(m.code, 64) && isText(m.message, MAX_REASON_LENGTH);
    case 'status':
      return (
        hasOnly(m, ['type', 'destinations', 'received', 'gaps']) && m.destinations.length <= MAX_DESTINATIONS &&
        hasOnly(m.received, ['bytes', 'tags']) && isCount(m.received.bytes) && isCount(m.received.tags) &&
        hasOnly(m.gaps, ['count', 'frames', 'ms']) && isCount(m.gaps.count) && isCount(m.gaps.frames) && isCount(m.gaps.ms) &&
        m.destinations.every(
          (d) =>
            hasOnly(d, ['id', 'url', 'state', 'reason', 'retryInMs', 'bytes', 'dropped', 'bufferedBytes', 'movedTo', 'moves', 'droppedGops']) &&
            isText(d.id, 64) && isText(d.url, 2048) && STATES.slice(0, 5).includes(d.state) &&
            [d.bytes, d.dropped, d.bufferedBytes].every(isCount) &&
            (d.reason === undefined || isText(d.reason, MAX_REASON_LENGTH)) && (d.retryInMs === undefined || isCount(d.retryInMs)) &&
            (d.movedTo === undefined || isText(d.movedTo, 2048)) && (d.moves === undefined || isCount(d.moves)) && (d.droppedGops === undefined || isCount(d.droppedGops)),
        )
      );
  }
}

function watchOk(m: WatchServerMessage): boolean {
  switch (m.type) {
    case 'welcome':
      return hasOnly(m, ['type', 'version', 'source']) && isCount(m.version) && isText(m.source, 2048);
    case 'error':
      return hasOnly(m, ['type', 'code', 'message']) && isText(m.code, 64) && isText(m.message, MAX_REASON_LENGTH);
    case 'status':
      return (
        hasOnly(m, ['type', 'state', 'reason', 'retryInMs', 'viewers']) && ['connecting', 'live', 'waiting', 'failed'].includes(m.state) &&
        isCount(m.viewers) && (m.reason === undefined || isText(m.reason, MAX_REASON_LENGTH)) && (m.retryInMs === undefined || isCount(m.retryInMs))
      );
    case 'reconnect':
      return hasOnly(m, ['type', 'reason']) && isText(m.reason, MAX_REASON_LENGTH);
  }
}

/** Values as JSON sees them (-0 is 0). */
const jsonValue = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

function validator<T extends object>(
  name: string,
  seed: number,
  parse: (text: string) => T,
  valid: (rng: Rng) => Record<string, unknown>,
  ok: (m: T) => boolean,
  max: number,
): void {
  let accepted = 0;
  const run = fuzz(name, seed, (rng) => {
    const text = input(rng, valid, max);
    const msg = attempt(name, text, () => parse(text));
    if (msg instanceof OnairError) {
      if (msg.code !== 'BAD_MESSAGE') throw fuzzFailure(`${name} threw ${msg.code}`, text);
      return;
    }
    accepted++;
    if (text.length > max) throw fuzzFailure(`${name} accepted ${text.length} characters (limit ${max})`, text);
    if (!ok(msg)) throw fuzzFailure(`${name} accepted ${JSON.stringify(msg)}`, text);
    // What was accepted is sent on as JSON (a relay, a log, the page's own state): it must come back the same.
    const again = JSON.stringify(msg);
    const back = attempt(`${name} of its re-serialised output`, again, () => parse(again));
    if (back instanceof OnairError) throw fuzzFailure(`${name} refuses its own accepted value re-serialised (${back.message}), from`, text);
    expectSame(`${name} round trip`, text, jsonValue(back), jsonValue(msg));
  });
  expect(accepted).toBeGreaterThan(run.cases / 5);
  expect(accepted).toBeLessThan(run.cases * 0.9);
}

describe('fuzz: wire validators', () => {
  it('parseStudioClientMessage: BAD_MESSAGE or a message within its limits that round-trips', { timeout: FUZZ_TIMEOUT_MS }, () => {
    validator('wire parseStudioClientMessage', 0x57c1, parseStudioClientMessage, studioClient, clientOk, MAX_STUDIO_TEXT_BYTES);
  });

  it('parseStudioServerMessage: BAD_MESSAGE or a message within its limits that round-trips', { timeout: FUZZ_TIMEOUT_MS }, () => {
    validator('wire parseStudioServerMessage', 0x57c2, parseStudioServerMessage, studioServer, serverOk, MAX_STUDIO_TEXT_BYTES);
  });

  it('parseWatchServerMessage: BAD_MESSAGE or a message within its limits that round-trips', { timeout: FUZZ_TIMEOUT_MS }, () => {
    validator('wire parseWatchServerMessage', 0x3a7c, parseWatchServerMessage, watchServer, watchOk, MAX_WATCH_TEXT_BYTES);
  });

  it('parseWatchTarget: a target within its limits that watchTargetPath names again, or undefined', { timeout: FUZZ_TIMEOUT_MS }, () => {
    const hex = '0123456789ABCDEF';
    // What a URL parser hands over: ASCII, with any byte percent-encoded (valid UTF-8 or not).
    const part = (rng: Rng): string => {
      let s = '';
      for (let n = rng.oneIn(10) ? 130 : rng.int(12); n > 0; n--) {
        s += rng.oneIn(4) ? `%${hex[rng.int(16)]}${hex[rng.int(16)]}` : rng.pick(['a', 'Z', '0', '.', '~', '-', '_', '/', '+', '=', '&', '?', '%', ':', '@']);
      }
      return s;
    };
    let found = 0;
    const run = fuzz('wire parseWatchTarget', 0x7a2e, (rng) => {
      const prefix = rng.pick(['/watch', '/watch-ws', '']);
      const pathname = rng.int(3)
        ? `${prefix}${rng.pick(['', '/', `/${part(rng)}/${part(rng)}`, `/${part(rng)}`, `/live/${part(rng)}`, `/${part(rng)}/${part(rng)}/${part(rng)}`])}`
        : rng.pick(['/', '/watchx', `/${part(rng)}`]);
      const src = rng.oneIn(2) ? encodeURIComponent(`rtmp://${part(rng)}`) : part(rng);
      const search = rng.pick(['', `?src=${src}`, `?x=1&src=${src}`, `src=${src}`, `?src=${src}&src=rtmp://b/c`, '?src']);
      const replay = (): string => JSON.stringify([prefix, pathname, search]);
      const target = attempt('parseWatchTarget', replay, () => parseWatchTarget(prefix, pathname, search));
      if (target === undefined) return;
      if (target instanceof OnairError) throw fuzzFailure(`parseWatchTarget threw ${target.code}`, replay);
      found++;
      const segment = (s: string): boolean => /^[A-Za-z0-9_.~-]{1,128}$/.test(s) && !/^\.+$/.test(s);
      const fits = target.kind === 'src' ? target.url.length <= 2048 && /^rtmps?:\/\/[^/]/i.test(target.url) : segment(target.app) && segment(target.stream);
      if (!fits) throw fuzzFailure(`parseWatchTarget accepted ${JSON.stringify(target)}`, replay);
      const path = watchTargetPath(prefix, target);
      const q = path.indexOf('?');
      const back = q < 0 ? parseWatchTarget(prefix, path, '') : parseWatchTarget(prefix, path.slice(0, q), path.slice(q));
      expectSame('parseWatchTarget of watchTargetPath', replay, back, target);
    });
    expect(found).toBeGreaterThan(run.cases / 20);
  });

  it('closeReason and capReason: any text cut to its limit, never half a character', { timeout: FUZZ_TIMEOUT_MS }, () => {
    fuzz('wire closeReason, capReason', 0xc105e, (rng) => {
      let text = '';
      for (let n = rng.int(rng.oneIn(3) ? 700 : 130); n > 0; n--) text += rng.pick(CHARS);
      const reason = attempt('closeReason', text, () => closeReason(text));
      if (reason instanceof OnairError) throw fuzzFailure(`closeReason threw ${reason.code}`, text);
      if (encoder.encode(reason).length > MAX_CLOSE_REASON_BYTES) throw fuzzFailure(`closeReason gave ${encoder.encode(reason).length} bytes`, text);
      if (reason !== text && !(reason.endsWith('...') && text.startsWith(reason.slice(0, -3)))) throw fuzzFailure(`closeReason gave ${JSON.stringify(reason)}`, text);
      const capped = capReason(text);
      if (capped.length > MAX_REASON_LENGTH || (capped !== text && !text.startsWith(capped.slice(0, -1)))) throw fuzzFailure(`capReason gave ${capped.length} characters`, text);
    });
  });
});

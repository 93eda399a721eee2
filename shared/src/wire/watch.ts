import { MAX_REASON_LENGTH } from './close.js';
import { fail, shown, nonNegative, parseJsonObject, str } from './validate.js';

/**
 * The watch WebSocket protocol (docs/ws-protocol.md, "Watch"). Bridge → page only: binary frames
 * carry exactly one FLV tag in file form (11-byte header, body, 4-byte PreviousTagSize), text
 * frames the JSON messages below. The page sends nothing; the bridge closes a socket that does.
 *
 * Tag timestamps form one timeline per bridge stream: when the upstream publisher restarts, the
 * bridge shifts the new session's timestamps to continue after the last tag it relayed, so a page
 * never sees time go backwards on one socket. A new socket may start anywhere on that timeline.
 */

export const WATCH_WS_PATH = '/watch-ws';
/** HTTP-FLV of any source the policy allows: `/flv?src=<rtmp URL>`. */
export const FLV_SRC_PATH = '/flv';
/** HTTP-FLV of a stream on the embedded server (app `live`): `/live/<stream>.flv`. */
export const LOCAL_FLV_PATH = /^\/live\/([^/]+)\.flv$/;
/** The bridge's counters in the Prometheus text format (docs/operations.md). */
export const METRICS_PATH = '/metrics';
/** The watch side's counters and per-stream stats as JSON. */
export const METRICS_JSON_PATH = '/metrics.json';
export const WATCH_PROTOCOL_VERSION = 1;
/** Largest text frame either side accepts. */
export const MAX_WATCH_TEXT_BYTES = 16 * 1024;
/** Largest binary frame: one FLV tag. */
export const MAX_WATCH_BINARY_BYTES = 16 * 1024 * 1024;

const MAX_URL_LENGTH = 2048;
const MAX_SEGMENT_LENGTH = 128;

/**
 * `connecting`: the bridge is opening the upstream RTMP play session.
 * `live`: tags are flowing. `waiting`: the upstream ended or failed; the bridge retries and the
 * page keeps showing the last frame. `failed`: the source was refused; the bridge gives up.
 */
export type WatchState = 'connecting' | 'live' | 'waiting' | 'failed';
const WATCH_STATES: readonly WatchState[] = ['connecting', 'live', 'waiting', 'failed'];

export interface WatchWelcomeMessage {
  type: 'welcome';
  version: number;
  /** The source RTMP URL with the stream key redacted. */
  source: string;
}

export interface WatchStatusMessage {
  type: 'status';
  state: WatchState;
  /** Why the stream is waiting or failed; never contains a stream key. */
  reason?: string;
  /** Milliseconds until the next upstream attempt, while waiting. */
  retryInMs?: number;
  /** Viewers of this stream on this bridge, this one included. */
  viewers: number;
}

export interface WatchErrorMessage {
  type: 'error';
  code: string;
  message: string;
}

/**
 * The bridge is draining (shutting down): the page should open a new socket to the same URL now,
 * where a load balancer sends it to another bridge. The bridge closes this socket right after.
 */
export interface WatchReconnectMessage {
  type: 'reconnect';
  reason: string;
}

export type WatchServerMessage = WatchWelcomeMessage | WatchStatusMessage | WatchErrorMessage | WatchReconnectMessage;

/** What a watch URL points at: any RTMP URL, or a stream on the bridge's embedded server. */
export type WatchTarget = { kind: 'src'; url: string } | { kind: 'local'; app: string; stream: string };

/** Parses and validates a bridge → page text frame; throws OnairError BAD_MESSAGE. */
export function parseWatchServerMessage(text: string): WatchServerMessage {
  const obj = parseJsonObject(text, MAX_WATCH_TEXT_BYTES);
  switch (obj['type']) {
    case 'welcome':
      return { type: 'welcome', version: nonNegative(obj, 'version'), source: str(obj, 'source', MAX_URL_LENGTH) };
    case 'error':
      return { type: 'error', code: str(obj, 'code', 64), message: str(obj, 'message', MAX_REASON_LENGTH) };
    case 'reconnect':
      return { type: 'reconnect', reason: str(obj, 'reason', MAX_REASON_LENGTH) };
    case 'status': {
      const state = obj['state'];
      if (!WATCH_STATES.includes(state as WatchState)) fail(`state ${shown(state)} unknown`);
      const msg: WatchStatusMessage = { type: 'status', state: state as WatchState, viewers: nonNegative(obj, 'viewers') };
      if (obj['reason'] !== undefined) msg.reason = str(obj, 'reason', MAX_REASON_LENGTH);
      if (obj['retryInMs'] !== undefined) msg.retryInMs = nonNegative(obj, 'retryInMs');
      return msg;
    }
    default:
      return fail(`unknown message type ${shown(obj['type'])}`);
  }
}

// App and stream names of the embedded server: one path segment each, no key material beyond
// what the user typed, nothing that could climb out of the path.
const SEGMENT = /^[A-Za-z0-9_.~-]+$/;

function segment(s: string | undefined): string | undefined {
  if (s === undefined || s.length === 0 || s.length > MAX_SEGMENT_LENGTH || !SEGMENT.test(s) || /^\.+$/.test(s)) return undefined;
  return s;
}

// URLSearchParams is a WHATWG API outside the ES library shared/ compiles against.
function queryParam(search: string, name: string): string | undefined {
  for (const pair of search.replace(/^\?/, '').split('&')) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (key !== name) continue;
    try {
      return decodeURIComponent((eq < 0 ? '' : pair.slice(eq + 1)).replace(/\+/g, ' '));
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * Reads a watch target from a path below `prefix` (`/watch` for the page, WATCH_WS_PATH for the
 * socket): `prefix?src=<rtmp URL>` or `prefix/<app>/<stream>`. Undefined when the path is not one.
 */
export function parseWatchTarget(prefix: string, pathname: string, search: string): WatchTarget | undefined {
  if (pathname === prefix || pathname === `${prefix}/`) {
    const src = queryParam(search, 'src');
    if (src === undefined || src.length > MAX_URL_LENGTH || !/^rtmps?:\/\/[^/]/i.test(src)) return undefined;
    return { kind: 'src', url: src };
  }
  if (!pathname.startsWith(`${prefix}/`)) return undefined;
  const parts = pathname.slice(prefix.length + 1).split('/');
  if (parts.length !== 2) return undefined;
  let app: string | undefined;
  let stream: string | undefined;
  try {
    app = segment(decodeURIComponent(parts[0] ?? ''));
    stream = segment(decodeURIComponent(parts[1] ?? ''));
  } catch {
    return undefined;
  }
  if (app === undefined || stream === undefined) return undefined;
  return { kind: 'local', app, stream };
}

/** The path and query that name `target` below `prefix`; the inverse of parseWatchTarget. */
export function watchTargetPath(prefix: string, target: WatchTarget): string {
  if (target.kind === 'src') return `${prefix}?src=${encodeURIComponent(target.url)}`;
  return `${prefix}/${encodeURIComponent(target.app)}/${encodeURIComponent(target.stream)}`;
}

import { MAX_REASON_LENGTH } from './close.js';
import { fail, shown, nonNegative, parseJsonObject, record, str } from './validate.js';

/**
 * The studio WebSocket protocol, version 2 (docs/ws-protocol.md). Binary frames carry exactly one
 * FLV tag in file form (11-byte header, body, 4-byte PreviousTagSize), page → bridge, and are
 * numbered implicitly: the first binary frame of a session is 1, every next one +1, across every
 * socket of the session. The bridge acknowledges by number; a page that lost its socket resumes the
 * same session on a new one and resends what the bridge did not get. Text frames carry the JSON
 * messages below, validated on both sides by the parsers in this file.
 */

export const STUDIO_WS_PATH = '/studio-ws';
/**
 * A page resuming a session names it in the socket URL too (`/studio-ws?session=<id>`, the id is
 * not secret): a draining bridge accepts that upgrade and refuses new sessions before any message.
 */
export const STUDIO_SESSION_PARAM = 'session';
/**
 * The query parameter of the studio socket's URL that a load balancer routes on (nginx:
 * `hash $arg_affinity consistent`): a random id the page makes once per broadcast and puts on
 * every socket of it, the first included, so a resuming page reaches the bridge that holds its
 * session. Not a secret, and never the resume token: URLs land in access logs.
 */
export const STUDIO_AFFINITY_PARAM = 'affinity';
export const STUDIO_PROTOCOL_VERSION = 2;

/** Largest binary frame: one FLV tag (a 1080p60 keyframe at high bitrate stays far below). */
export const MAX_STUDIO_BINARY_BYTES = 4 * 1024 * 1024;
/** Largest text frame. */
export const MAX_STUDIO_TEXT_BYTES = 64 * 1024;
export const MAX_DESTINATIONS = 8;
const MAX_URL_LENGTH = 2048;
const MAX_ID_LENGTH = 64;
const MAX_TOKEN_LENGTH = 128;
/** Session ids and resume tokens: URL-safe base64 or hex. */
const SESSION_TEXT = /^[A-Za-z0-9_-]+$/;

export interface StudioDestination {
  /** Chosen by the page; echoed in status messages. */
  id: string;
  /** Full RTMP/RTMPS URL including the stream key (never echoed back). */
  url: string;
}

/** A new session: the bridge publishes to every destination. */
export interface StudioStartMessage {
  type: 'start';
  destinations: StudioDestination[];
}

/**
 * The same session on a new socket. `session` is the id (not secret: a load balancer may route on
 * it), `token` the secret that proves the page owns it.
 */
export interface StudioResumeMessage {
  type: 'resume';
  session: string;
  token: string;
}

/**
 * The page no longer holds every frame after what the bridge acknowledged: the frames that follow
 * start with the headers and a keyframe, and the bridge continues the timeline from there. The
 * page says how much it lost, for the streamer's report.
 */
export interface StudioGapMessage {
  type: 'gap';
  /** Encoded video frames lost. */
  frames: number;
  /** Media time lost, ms. */
  ms: number;
}

export interface StudioStopMessage {
  type: 'stop';
}

export type StudioClientMessage = StudioStartMessage | StudioResumeMessage | StudioGapMessage | StudioStopMessage;

export type DestinationState = 'connecting' | 'live' | 'retrying' | 'failed' | 'stopped';
const DESTINATION_STATES: readonly DestinationState[] = ['connecting', 'live', 'retrying', 'failed', 'stopped'];

export interface DestinationStatus {
  id: string;
  /** URL with the stream key redacted. */
  url: string;
  state: DestinationState;
  /** Why the destination is retrying or failed; never contains a stream key. */
  reason?: string;
  /** Milliseconds until the next attempt, while retrying. */
  retryInMs?: number;
  /** Bytes of FLV tag bodies written to this destination since the session started. */
  bytes: number;
  /** Tags dropped for this destination (backpressure, waiting for a keyframe). */
  dropped: number;
  /** Bytes queued in the RTMP connection, not yet sent. */
  bufferedBytes: number;
  /**
   * Where the destination publishes now, when a server sent it elsewhere (a redirect at connect,
   * a reconnect request); its key redacted like `url`.
   */
  movedTo?: string;
  /** Times a server asked the destination to reconnect and it moved without losing a frame. */
  moves?: number;
  /**
   * Whole GOPs dropped because the destination fell behind (a slow server or path); while it
   * happens, `reason` says so on a live destination.
   */
  droppedGops?: number;
}

export interface StudioWelcomeMessage {
  type: 'welcome';
  version: number;
  maxBinaryBytes: number;
  /** How long the bridge keeps a session whose socket dropped, waiting for the page to resume it. */
  graceMs: number;
  /** How much media the page should keep for resending (at least; it may keep one GOP more). */
  resendBufferMs: number;
}

/** The answer to `start`: what the page needs to resume this session later. */
export interface StudioSessionMessage {
  type: 'session';
  id: string;
  token: string;
}

/** The answer to `resume`: binary frames 1..received arrived; the next one the bridge takes is received + 1. */
export interface StudioResumedMessage {
  type: 'resumed';
  received: number;
}

/** Binary frames 1..received arrived; the page may forget them. */
export interface StudioAckMessage {
  type: 'ack';
  received: number;
}

export interface StudioGaps {
  count: number;
  frames: number;
  ms: number;
}

export interface StudioStatusMessage {
  type: 'status';
  destinations: DestinationStatus[];
  /** Bytes and tags received from the page since the session started. */
  received: { bytes: number; tags: number };
  /** Media the page could not resend after losing its socket (each gap closed at a keyframe). */
  gaps: StudioGaps;
}

export interface StudioErrorMessage {
  type: 'error';
  code: string;
  message: string;
}

export type StudioServerMessage =
  | StudioWelcomeMessage
  | StudioSessionMessage
  | StudioResumedMessage
  | StudioAckMessage
  | StudioStatusMessage
  | StudioErrorMessage;

function sessionText(obj: Record<string, unknown>, key: string, max: number): string {
  const v = str(obj, key, max);
  if (!SESSION_TEXT.test(v)) fail(`"${key}" must be 1-${max} characters of A-Z a-z 0-9 _ -`);
  return v;
}

/** Parses and validates a page → bridge text frame; throws OnairError BAD_MESSAGE. */
export function parseStudioClientMessage(text: string): StudioClientMessage {
  const obj = parseJsonObject(text, MAX_STUDIO_TEXT_BYTES);
  switch (obj['type']) {
    case 'stop':
      return { type: 'stop' };
    case 'resume':
      return { type: 'resume', session: sessionText(obj, 'session', MAX_ID_LENGTH), token: sessionText(obj, 'token', MAX_TOKEN_LENGTH) };
    case 'gap':
      return { type: 'gap', frames: nonNegative(obj, 'frames'), ms: nonNegative(obj, 'ms') };
    case 'start': {
      const list = obj['destinations'];
      if (!Array.isArray(list)) fail('"destinations" must be an array');
      if (list.length === 0) fail('"destinations" is empty');
      if (list.length > MAX_DESTINATIONS) fail(`${list.length} destinations exceed ${MAX_DESTINATIONS}`);
      const ids = new Set<string>();
      const destinations = list.map((item, i) => {
        const d = record(item, `destinations[${i}]`);
        const id = str(d, 'id', MAX_ID_LENGTH);
        if (id === '') fail(`destinations[${i}].id is empty`);
        if (ids.has(id)) fail(`destination id "${id}" appears twice`);
        ids.add(id);
        const url = str(d, 'url', MAX_URL_LENGTH);
        if (!/^rtmps?:\/\//i.test(url)) fail(`destinations[${i}].url is not an rtmp:// or rtmps:// URL`);
        return { id, url };
      });
      return { type: 'start', destinations };
    }
    default:
      return fail(`unknown message type ${shown(obj['type'])}`);
  }
}

/** Parses and validates a bridge → page text frame; throws OnairError BAD_MESSAGE. */
export function parseStudioServerMessage(text: string): StudioServerMessage {
  const obj = parseJsonObject(text, MAX_STUDIO_TEXT_BYTES);
  switch (obj['type']) {
    case 'welcome':
      return {
        type: 'welcome',
        version: nonNegative(obj, 'version'),
        maxBinaryBytes: nonNegative(obj, 'maxBinaryBytes'),
        graceMs: nonNegative(obj, 'graceMs'),
        resendBufferMs: nonNegative(obj, 'resendBufferMs'),
      };
    case 'session':
      return { type: 'session', id: sessionText(obj, 'id', MAX_ID_LENGTH), token: sessionText(obj, 'token', MAX_TOKEN_LENGTH) };
    case 'resumed':
      return { type: 'resumed', received: nonNegative(obj, 'received') };
    case 'ack':
      return { type: 'ack', received: nonNegative(obj, 'received') };
    case 'error':
      return { type: 'error', code: str(obj, 'code', 64), message: str(obj, 'message', MAX_REASON_LENGTH) };
    case 'status': {
      const list = obj['destinations'];
      if (!Array.isArray(list) || list.length > MAX_DESTINATIONS) fail(`"destinations" must be an array of at most ${MAX_DESTINATIONS}`);
      const received = record(obj['received'], '"received"');
      const gaps = record(obj['gaps'], '"gaps"');
      return {
        type: 'status',
        received: { bytes: nonNegative(received, 'bytes'), tags: nonNegative(received, 'tags') },
        gaps: { count: nonNegative(gaps, 'count'), frames: nonNegative(gaps, 'frames'), ms: nonNegative(gaps, 'ms') },
        destinations: list.map((item, i) => {
          const d = record(item, `destinations[${i}]`);
          const state = d['state'];
          if (!DESTINATION_STATES.includes(state as DestinationState)) fail(`destinations[${i}].state ${shown(state)} unknown`);
          const status: DestinationStatus = {
            id: str(d, 'id', MAX_ID_LENGTH),
            url: str(d, 'url', MAX_URL_LENGTH),
            state: state as DestinationState,
            bytes: nonNegative(d, 'bytes'),
            dropped: nonNegative(d, 'dropped'),
            bufferedBytes: nonNegative(d, 'bufferedBytes'),
          };
          if (d['reason'] !== undefined) status.reason = str(d, 'reason', MAX_REASON_LENGTH);
          if (d['retryInMs'] !== undefined) status.retryInMs = nonNegative(d, 'retryInMs');
          if (d['movedTo'] !== undefined) status.movedTo = str(d, 'movedTo', MAX_URL_LENGTH);
          if (d['moves'] !== undefined) status.moves = nonNegative(d, 'moves');
          if (d['droppedGops'] !== undefined) status.droppedGops = nonNegative(d, 'droppedGops');
          return status;
        }),
      };
    }
    default:
      return fail(`unknown message type ${shown(obj['type'])}`);
  }
}

/**
 * Joins a server URL and a stream key the way streaming software does: the key becomes the last
 * path segment. A key that is empty leaves the server URL unchanged (the key is already in it).
 */
export function joinStreamUrl(server: string, key: string): string {
  const s = server.trim();
  const k = key.trim().replace(/^\/+/, '');
  if (k === '') return s;
  return `${s.replace(/\/+$/, '')}/${k}`;
}

/**
 * The studio socket's URL: the affinity id (STUDIO_AFFINITY_PARAM) on every socket of a broadcast,
 * and the session id (STUDIO_SESSION_PARAM) on a socket that resumes one.
 */
export function studioSocketUrl(base: string, affinity: string, resuming?: string): string {
  for (const [what, id] of [['affinity', affinity], ['session', resuming]] as const) {
    if (id !== undefined && (!SESSION_TEXT.test(id) || id.length > MAX_ID_LENGTH)) fail(`${what} id ${shown(id)} is not 1-${MAX_ID_LENGTH} URL-safe characters`);
  }
  const query = `${STUDIO_AFFINITY_PARAM}=${affinity}${resuming === undefined ? '' : `&${STUDIO_SESSION_PARAM}=${resuming}`}`;
  return `${base}${base.includes('?') ? '&' : '?'}${query}`;
}

import { MAX_REASON_LENGTH } from './close.js';
import { fail, nonNegative, parseJsonObject, record, str } from './validate.js';

/**
 * The studio WebSocket protocol (docs/ws-protocol.md). Binary frames carry exactly one FLV tag in
 * file form (11-byte header, body, 4-byte PreviousTagSize), page → bridge. Text frames carry the
 * JSON messages below, validated on both sides by the parsers in this file.
 */

export const STUDIO_WS_PATH = '/studio-ws';
export const STUDIO_PROTOCOL_VERSION = 1;

/** Largest binary frame: one FLV tag (a 1080p60 keyframe at high bitrate stays far below). */
export const MAX_STUDIO_BINARY_BYTES = 4 * 1024 * 1024;
/** Largest text frame. */
export const MAX_STUDIO_TEXT_BYTES = 64 * 1024;
export const MAX_DESTINATIONS = 8;
const MAX_URL_LENGTH = 2048;
const MAX_ID_LENGTH = 64;

export interface StudioDestination {
  /** Chosen by the page; echoed in status messages. */
  id: string;
  /** Full RTMP/RTMPS URL including the stream key (never echoed back). */
  url: string;
}

export interface StudioStartMessage {
  type: 'start';
  destinations: StudioDestination[];
}

export interface StudioStopMessage {
  type: 'stop';
}

export type StudioClientMessage = StudioStartMessage | StudioStopMessage;

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
}

export interface StudioWelcomeMessage {
  type: 'welcome';
  version: number;
  maxBinaryBytes: number;
}

export interface StudioStatusMessage {
  type: 'status';
  destinations: DestinationStatus[];
  /** Bytes and tags received from the page since the session started. */
  received: { bytes: number; tags: number };
}

export interface StudioErrorMessage {
  type: 'error';
  code: string;
  message: string;
}

export type StudioServerMessage = StudioWelcomeMessage | StudioStatusMessage | StudioErrorMessage;

/** Parses and validates a page → bridge text frame; throws OnairError BAD_MESSAGE. */
export function parseStudioClientMessage(text: string): StudioClientMessage {
  const obj = parseJsonObject(text, MAX_STUDIO_TEXT_BYTES);
  switch (obj['type']) {
    case 'stop':
      return { type: 'stop' };
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
      return fail(`unknown message type ${JSON.stringify(obj['type'])}`);
  }
}

/** Parses and validates a bridge → page text frame; throws OnairError BAD_MESSAGE. */
export function parseStudioServerMessage(text: string): StudioServerMessage {
  const obj = parseJsonObject(text, MAX_STUDIO_TEXT_BYTES);
  switch (obj['type']) {
    case 'welcome':
      return { type: 'welcome', version: nonNegative(obj, 'version'), maxBinaryBytes: nonNegative(obj, 'maxBinaryBytes') };
    case 'error':
      return { type: 'error', code: str(obj, 'code', 64), message: str(obj, 'message', MAX_REASON_LENGTH) };
    case 'status': {
      const list = obj['destinations'];
      if (!Array.isArray(list) || list.length > MAX_DESTINATIONS) fail('"destinations" must be an array of at most 8');
      const received = record(obj['received'], '"received"');
      return {
        type: 'status',
        received: { bytes: nonNegative(received, 'bytes'), tags: nonNegative(received, 'tags') },
        destinations: list.map((item, i) => {
          const d = record(item, `destinations[${i}]`);
          const state = d['state'];
          if (!DESTINATION_STATES.includes(state as DestinationState)) fail(`destinations[${i}].state ${JSON.stringify(state)} unknown`);
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
          return status;
        }),
      };
    }
    default:
      return fail(`unknown message type ${JSON.stringify(obj['type'])}`);
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

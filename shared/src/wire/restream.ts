import type { DestinationStatus } from './studio.js';
import { fail, record, str } from './validate.js';

/**
 * The Restream view's HTTP API (JSON). `GET` the state; every change is a `POST` or `DELETE`
 * answered with the new state (or `{ error }` and a 4xx status). Routes, below RESTREAM_API_PATH:
 *
 * | method | path | body | does |
 * | --- | --- | --- | --- |
 * | GET | `` | | RestreamState |
 * | POST | `/inputs` | RestreamInputInit | adds an input (an ingest key, or a source URL) |
 * | DELETE | `/inputs/:id` | | removes it (its destinations unpublish) |
 * | POST | `/inputs/:id/start` | | starts every destination of the input |
 * | POST | `/inputs/:id/stop` | | stops every destination of the input |
 * | POST | `/inputs/:id/destinations` | RestreamDestinationInit | adds a destination (stopped) |
 * | POST | `/inputs/:id/destinations/:did` | RestreamDestinationChange | changes autoStart |
 * | DELETE | `/inputs/:id/destinations/:did` | | removes it (unpublishes first) |
 * | POST | `/inputs/:id/destinations/:did/start` | | starts one destination |
 * | POST | `/inputs/:id/destinations/:did/stop` | | stops one destination |
 */
export const RESTREAM_API_PATH = '/api/restream';

/** Inputs one bridge restreams at once. */
export const MAX_RESTREAM_INPUTS = 16;
/** Destinations per input. */
export const MAX_RESTREAM_DESTINATIONS = 8;
export const MAX_RESTREAM_NAME_CHARS = 64;
export const MAX_RESTREAM_URL_CHARS = 2048;

/**
 * - `waiting`: nothing is publishing yet (ingest) or the source is not playing yet (URL).
 * - `live`: media arrives.
 * - `reconnecting`: the input dropped; destinations stay published for the grace period.
 * - `ended`: the input dropped longer than the grace period; destinations were unpublished and
 *   restart (those with autoStart) when it is live again.
 */
export type RestreamInputState = 'waiting' | 'live' | 'reconnecting' | 'ended';

/** What the input carries, measured over the last few seconds of media. */
export interface RestreamInputStats {
  /** kbit/s of FLV tag bodies. */
  bitrateKbps: number;
  /** Video frames per second. */
  fps: number;
  /** Seconds between the last two keyframes (0 until two were seen). */
  keyframeIntervalS: number;
  /** e.g. `avc1.64001f`, `hvc1`, `av01`, or '' before the sequence header. */
  videoCodec: string;
  /** e.g. `mp4a.40.2`, or ''. */
  audioCodec: string;
  width: number;
  height: number;
  /** Times the input came back after a drop. */
  reconnects: number;
}

export interface RestreamDestinationStatus extends DestinationStatus {
  /** Start this destination whenever its input goes live. */
  autoStart: boolean;
}

export interface RestreamInputStatus {
  id: string;
  name: string;
  /**
   * `ingest`: an encoder publishes to the embedded server with `streamKey`;
   * `url`: the bridge plays `source`.
   */
  kind: 'ingest' | 'url';
  /** The publish key for the encoder (ingest inputs only; the page masks it until asked). */
  streamKey?: string;
  /** The source URL with its key redacted (URL inputs only). */
  source?: string;
  /** Where the page plays a preview of the input (`/watch/live/<key>` or `/watch?src=…`). */
  watchPath: string;
  state: RestreamInputState;
  /** Why the input is not live (e.g. "the encoder disconnected 3.2 s ago"). */
  reason?: string;
  /** While reconnecting: ms left before the destinations are unpublished. */
  graceLeftMs?: number;
  stats: RestreamInputStats;
  destinations: RestreamDestinationStatus[];
}

export interface RestreamState {
  /**
   * The embedded RTMP server as an encoder reaches it: `host` null when it listens on every
   * address (the page then uses its own host name); `open` true when it accepts any stream key
   * (loopback only), false when only the ingest keys listed here may publish. Null when the
   * embedded server is off.
   */
  ingest: { host: string | null; port: number; app: string; open: boolean } | null;
  /** How long destinations stay published while an input is away, ms. */
  graceMs: number;
  inputs: RestreamInputStatus[];
  /**
   * Streams publishing on the embedded server right now that are no input (the studio's own
   * broadcast, an encoder using a key of its own while the ingest is open): POST one's key as
   * RestreamInputInit.key to restream it.
   */
  unclaimed: { key: string; watchPath: string }[];
}

/**
 * POST /inputs: a name, and a source URL for a URL input, or the key of a stream already
 * publishing on the embedded server (RestreamState.unclaimed); with neither, an ingest key is made.
 */
export interface RestreamInputInit {
  name: string;
  source?: string;
  key?: string;
}

/** POST /inputs/:id/destinations. `url` holds the stream key (rtmp[s]://host/app/key). */
export interface RestreamDestinationInit {
  url: string;
  autoStart: boolean;
}

export interface RestreamDestinationChange {
  autoStart: boolean;
}

/** An API failure: the status code says what kind, `error` says what to do in plain words. */
export interface RestreamError {
  error: string;
}

export function parseRestreamInputInit(body: unknown): RestreamInputInit {
  const o = record(body, 'body');
  const name = str(o, 'name', MAX_RESTREAM_NAME_CHARS).trim();
  if (name === '') fail('"name" must not be empty');
  if (o['source'] !== undefined && o['key'] !== undefined) fail('give "source" or "key", not both');
  if (o['key'] !== undefined) {
    const key = str(o, 'key', 256);
    if (!/^[A-Za-z0-9_-]+$/.test(key)) fail('"key" must be a stream key of letters, digits, _ and -');
    return { name, key };
  }
  if (o['source'] === undefined) return { name };
  const source = str(o, 'source', MAX_RESTREAM_URL_CHARS).trim();
  return { name, source };
}

export function parseRestreamDestinationInit(body: unknown): RestreamDestinationInit {
  const o = record(body, 'body');
  const url = str(o, 'url', MAX_RESTREAM_URL_CHARS).trim();
  const autoStart = o['autoStart'] ?? false;
  if (typeof autoStart !== 'boolean') fail('"autoStart" must be true or false');
  return { url, autoStart };
}

export function parseRestreamDestinationChange(body: unknown): RestreamDestinationChange {
  const o = record(body, 'body');
  if (typeof o['autoStart'] !== 'boolean') fail('"autoStart" must be true or false');
  return { autoStart: o['autoStart'] };
}

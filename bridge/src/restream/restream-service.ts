import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  MAX_RESTREAM_DESTINATIONS,
  MAX_RESTREAM_INPUTS,
  OnairError,
  RESTREAM_API_PATH,
  parseRestreamDestinationChange,
  parseRestreamDestinationInit,
  parseRestreamInputInit,
  type RestreamError,
  type RestreamInputStatus,
  type RestreamState,
} from '@onair/shared';
import type { DestinationPolicy } from '../relay/destination-relay.js';
import { READ_BATCH_MS, RtmpPlayer } from '../rtmp/player.js';
import { parseRtmpUrl, redactUrl } from '../rtmp/url.js';
import { pullInput } from './input-pull.js';
import { Restream } from './restream.js';
import type { RestreamStore, StoredInput } from './restream-store.js';

/** The embedded RTMP server as inputs see it. */
export interface IngestServer {
  /** Where the bridge plays ingest streams from: `rtmp://127.0.0.1:<port>/live`. */
  playUrl: string;
  /** As encoders reach it (RestreamState.ingest). */
  host: string | null;
  port: number;
  /** True when any key may publish (loopback only); false when only ingest keys may. */
  open: boolean;
}

export interface RestreamServiceOptions {
  store: RestreamStore;
  /** Where destinations and URL inputs may point. */
  policy: DestinationPolicy;
  ingest: IngestServer | undefined;
  graceMs: number;
  /** The ingest keys changed (created, removed): the embedded server's gate follows. */
  onKeys?: (keys: string[]) => void;
  log?: (line: string) => void;
}

interface Input {
  stored: StoredInput;
  restream: Restream;
  abort: AbortController;
  pulling: Promise<void>;
}

const MAX_BODY_BYTES = 16 * 1024;
const INGEST_APP = 'live';

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function newId(): string {
  return randomBytes(6).toString('hex');
}

/** A stream key an encoder types: letters and digits only, 128 bits. */
function newKey(): string {
  return `live_${randomBytes(16).toString('hex')}`;
}

/**
 * The restream side of `onair serve`: inputs (an encoder publishing to the embedded server with an
 * ingest key, or any RTMP source URL), each relayed by a Restream to its destinations, the setup
 * kept in the RestreamStore, and the HTTP API the Restream view uses (shared/src/wire/restream.ts).
 * One owner per input: this service creates and ends its pull and its Restream.
 */
export class RestreamService {
  readonly #opts: RestreamServiceOptions;
  readonly #inputs = new Map<string, Input>();
  /** Stream names publishing on the embedded server's ingest application now. */
  readonly #published = new Set<string>();
  #closed = false;

  private constructor(opts: RestreamServiceOptions) {
    this.#opts = opts;
  }

  /** Loads the stored setup and starts pulling every input. */
  static async start(opts: RestreamServiceOptions): Promise<RestreamService> {
    const service = new RestreamService(opts);
    for (const stored of await opts.store.load()) {
      if (stored.key !== undefined && opts.ingest === undefined) opts.log?.(`restream input "${stored.name}": the embedded RTMP server is off; its encoder cannot publish`);
      service.#open(stored);
    }
    service.#keysChanged();
    return service;
  }

  /**
   * A stream started publishing on the embedded server (LocalRtmp's publish events); returns
   * the release for when it stops.
   */
  published(app: string, stream: string): () => void {
    if (app !== INGEST_APP) return () => undefined;
    this.#published.add(stream);
    return () => void this.#published.delete(stream);
  }

  /** Ingest keys that may publish to the embedded server. */
  keys(): string[] {
    return [...this.#inputs.values()].flatMap((i) => (i.stored.key === undefined ? [] : [i.stored.key]));
  }

  state(): RestreamState {
    const ingest = this.#opts.ingest;
    return {
      ingest: ingest === undefined ? null : { host: ingest.host, port: ingest.port, app: INGEST_APP, open: ingest.open },
      graceMs: this.#opts.graceMs,
      inputs: [...this.#inputs.values()].map((i) => this.#status(i)),
      unclaimed: [...this.#published]
        .filter((key) => ![...this.#inputs.values()].some((i) => i.stored.key === key))
        .map((key) => ({ key, watchPath: `/watch/${INGEST_APP}/${encodeURIComponent(key)}` })),
    };
  }

  #status(input: Input): RestreamInputStatus {
    const { stored } = input;
    const s = input.restream.status();
    const out: RestreamInputStatus = {
      id: stored.id,
      name: stored.name,
      kind: stored.key !== undefined ? 'ingest' : 'url',
      watchPath: stored.key !== undefined ? `/watch/${INGEST_APP}/${encodeURIComponent(stored.key)}` : `/watch?src=${encodeURIComponent(stored.source ?? '')}`,
      state: s.state,
      stats: s.stats,
      destinations: s.destinations,
    };
    if (stored.key !== undefined) out.streamKey = stored.key;
    if (stored.source !== undefined) out.source = redactUrl(stored.source);
    if (s.reason !== undefined) out.reason = s.reason;
    if (s.graceLeftMs !== undefined) out.graceLeftMs = s.graceLeftMs;
    return out;
  }

  #open(stored: StoredInput): Input {
    const name = stored.key !== undefined ? `restream input "${stored.name}"` : `restream input "${stored.name}" (${redactUrl(stored.source ?? '')})`;
    const restream = new Restream({
      name,
      graceMs: this.#opts.graceMs,
      policy: this.#opts.policy,
      onChange: () => undefined,
      ...(this.#opts.log !== undefined ? { log: this.#opts.log } : {}),
    });
    for (const d of stored.destinations) restream.add(d.id, d.url, d.autoStart);
    const abort = new AbortController();
    const source = stored.source;
    const ingest = this.#opts.ingest;
    const playUrl = source ?? (ingest === undefined ? undefined : `${ingest.playUrl}/${stored.key ?? ''}`);
    const policy = this.#opts.policy;
    const pulling =
      playUrl === undefined
        ? Promise.resolve()
        : pullInput(restream, {
            shown: name,
            follow: true,
            signal: abort.signal,
            ...(this.#opts.log !== undefined ? { log: this.#opts.log } : {}),
            connect: async (signal) => {
              // The embedded server is ours; any other source passes the destination rules.
              if (source === undefined) return RtmpPlayer.connect(playUrl, { signal, readBatchMs: READ_BATCH_MS });
              await policy.isAllowed(source);
              return RtmpPlayer.connect(source, { ...policy.connectOptions(), signal, readBatchMs: READ_BATCH_MS });
            },
          }).catch((err: unknown) => this.#opts.log?.(`${name}: stopped pulling (${err instanceof Error ? err.message : String(err)})`));
    const input: Input = { stored, restream, abort, pulling };
    this.#inputs.set(stored.id, input);
    return input;
  }

  async #close(input: Input): Promise<void> {
    input.abort.abort();
    await input.restream.close();
    await input.pulling;
  }

  #keysChanged(): void {
    this.#opts.onKeys?.(this.keys());
  }

  async #save(): Promise<void> {
    try {
      await this.#opts.store.save([...this.#inputs.values()].map((i) => i.stored));
    } catch (err) {
      throw new ApiError(500, `the change is live but could not be saved to ${this.#opts.store.path}: ${(err as Error).message}`);
    }
  }

  /** Handles `req` when it is for the restream API; false otherwise. */
  handleRequest(req: IncomingMessage, res: ServerResponse, checkSite: (req: IncomingMessage) => { ok: true } | { ok: false; status: number; reason: string }): boolean {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path !== RESTREAM_API_PATH && !path.startsWith(`${RESTREAM_API_PATH}/`)) return false;
    const send = (status: number, body: RestreamState | RestreamError): void => {
      if (res.headersSent) return;
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      // A change must come from this server's own page: never from another site's form or script.
      const site = checkSite(req);
      if (!site.ok) {
        send(site.status, { error: site.reason });
        return true;
      }
    }
    const parts = path.slice(RESTREAM_API_PATH.length).split('/').filter(Boolean);
    this.#route(req, parts).then(
      (status) => send(status, this.state()),
      (err: unknown) => {
        if (err instanceof ApiError) send(err.status, { error: err.message });
        else if (err instanceof OnairError) send(400, { error: err.message });
        else {
          this.#opts.log?.(`restream API ${req.method ?? '?'} ${path.split('/').slice(0, 5).join('/')}: ${err instanceof Error ? err.message : String(err)}`);
          send(500, { error: 'the bridge failed to handle this request; see its log' });
        }
      },
    );
    return true;
  }

  /** Runs one API request; resolves with the HTTP status of the state sent back. */
  async #route(req: IncomingMessage, parts: string[]): Promise<number> {
    const method = req.method ?? 'GET';
    if (this.#closed) throw new ApiError(503, 'the bridge is shutting down');
    const [inputs, id, sub, did, action] = parts;
    if (inputs === undefined && (method === 'GET' || method === 'HEAD')) return 200;
    if (inputs !== 'inputs') throw new ApiError(404, 'no such restream API path');
    if (id === undefined) {
      if (method !== 'POST') throw new ApiError(405, 'POST a new input here');
      await this.#addInput(await readJson(req));
      return 201;
    }
    const input = this.#inputs.get(id);
    if (input === undefined) throw new ApiError(404, 'no such input (it may have been removed)');
    if (sub === undefined) {
      if (method !== 'DELETE') throw new ApiError(405, 'DELETE removes an input');
      this.#inputs.delete(id);
      this.#keysChanged();
      await this.#save();
      await this.#close(input);
      return 200;
    }
    if (sub === 'start' || sub === 'stop') {
      if (method !== 'POST' || did !== undefined) throw new ApiError(405, `POST …/${sub} with no body`);
      if (sub === 'start') input.restream.startAll();
      else await input.restream.stopAll();
      return 200;
    }
    if (sub !== 'destinations') throw new ApiError(404, 'no such restream API path');
    if (did === undefined) {
      if (method !== 'POST') throw new ApiError(405, 'POST a new destination here');
      await this.#addDestination(input, await readJson(req));
      return 201;
    }
    const stored = input.stored.destinations.find((d) => d.id === did);
    if (stored === undefined) throw new ApiError(404, 'no such destination (it may have been removed)');
    if (action === undefined) {
      if (method === 'DELETE') {
        input.stored.destinations = input.stored.destinations.filter((d) => d !== stored);
        await this.#save();
        await input.restream.remove(did);
        return 200;
      }
      if (method !== 'POST') throw new ApiError(405, 'POST changes a destination, DELETE removes it');
      const change = parseRestreamDestinationChange(await readJson(req));
      stored.autoStart = change.autoStart;
      input.restream.setAutoStart(did, change.autoStart);
      await this.#save();
      return 200;
    }
    if (method !== 'POST' || (action !== 'start' && action !== 'stop')) throw new ApiError(405, 'POST …/start or …/stop');
    if (action === 'start') input.restream.start(did);
    else await input.restream.stop(did);
    return 200;
  }

  async #addInput(body: unknown): Promise<void> {
    const init = parseRestreamInputInit(body);
    if (this.#inputs.size >= MAX_RESTREAM_INPUTS) throw new ApiError(409, `this bridge restreams at most ${MAX_RESTREAM_INPUTS} inputs: remove one first`);
    const stored: StoredInput = { id: newId(), name: init.name, destinations: [] };
    if (init.source === undefined) {
      if (this.#opts.ingest === undefined) throw new ApiError(409, 'the embedded RTMP server is off (--no-local-rtmp): pull from a URL instead');
      if (init.key !== undefined && [...this.#inputs.values()].some((i) => i.stored.key === init.key)) throw new ApiError(409, 'that stream is an input already');
      stored.key = init.key ?? newKey();
    } else {
      parseRtmpUrl(init.source);
      await this.#opts.policy.isAllowed(init.source);
      stored.source = init.source;
    }
    this.#open(stored);
    this.#keysChanged();
    await this.#save();
  }

  async #addDestination(input: Input, body: unknown): Promise<void> {
    const init = parseRestreamDestinationInit(body);
    const destinations = input.stored.destinations;
    if (destinations.length >= MAX_RESTREAM_DESTINATIONS) throw new ApiError(409, `an input has at most ${MAX_RESTREAM_DESTINATIONS} destinations: remove one first`);
    parseRtmpUrl(init.url);
    await this.#opts.policy.isAllowed(init.url);
    if (destinations.some((d) => d.url === init.url)) throw new ApiError(409, 'this input already sends to that server and stream key');
    if (input.stored.source === init.url) throw new ApiError(409, 'a destination cannot be the input itself');
    const d = { id: newId(), url: init.url, autoStart: init.autoStart };
    destinations.push(d);
    input.restream.add(d.id, d.url, d.autoStart);
    await this.#save();
  }

  /** Every destination unpublishes (bounded), every pull stops. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#inputs.values()].map((i) => this.#close(i)));
  }
}

/** The request body as JSON, at most 16 KiB, declared as application/json. */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) throw new ApiError(415, 'send the body as application/json');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ApiError(400, 'the body is not JSON');
  }
}

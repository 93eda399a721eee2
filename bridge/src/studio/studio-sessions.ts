import { randomBytes } from 'node:crypto';
import { OnairError, type DestinationState, type StudioDestination } from '@onair/shared';
import { Admission } from '../server/admission.js';
import { StudioSession, type StudioSessionOptions } from './studio-session.js';

export interface StudioLimits {
  /** Studio sessions at once, attached or in their grace period. */
  maxSessions: number;
  /** Sessions one client address may hold at once (loopback clients are one local user: exempt). */
  maxSessionsPerClient: number;
}

export const DEFAULT_STUDIO_LIMITS: StudioLimits = { maxSessions: 16, maxSessionsPerClient: 4 };

/** What `/metrics` reads of the studio sessions; the totals count ended sessions too. */
export interface StudioStats {
  /** Sessions with their page's socket attached. */
  attached: number;
  /** Sessions in their grace period, waiting for the page to resume. */
  waiting: number;
  /** The state of every destination of every session. */
  destinations: DestinationState[];
  started: number;
  resumes: number;
  /** Bytes of tags received from pages. */
  bytesIn: number;
  /** Bytes of tag bodies written to destinations. */
  bytesOut: number;
  /** Tags dropped for destinations (backpressure, waiting for a keyframe). */
  dropped: number;
  /** Times a destination lost its connection and began retrying. */
  reconnects: number;
}

/**
 * Every studio session of the bridge, by id: the one owner that creates them (within the limits),
 * finds them again for a resuming page, and ends them all when the bridge shuts down.
 */
export class StudioSessions {
  readonly #opts: StudioSessionOptions;
  readonly #limits: StudioLimits;
  readonly #sessions = new Map<string, StudioSession>();
  readonly #admission: Admission;
  /** What sessions that ended had counted, so totals never go down. */
  readonly #ended = { bytesIn: 0, bytesOut: 0, dropped: 0, reconnects: 0 };
  #started = 0;
  #resumes = 0;
  #draining = false;
  readonly #emptied = new Set<() => void>();

  constructor(opts: StudioSessionOptions, limits: Partial<StudioLimits> = {}) {
    this.#opts = opts;
    this.#limits = { ...DEFAULT_STUDIO_LIMITS, ...limits };
    this.#admission = new Admission({ max: this.#limits.maxSessions, perClient: this.#limits.maxSessionsPerClient }, 'SESSION_LIMIT', 'studio sessions');
  }

  get size(): number {
    return this.#sessions.size;
  }

  get graceMs(): number {
    return this.#opts.graceMs;
  }

  /**
   * A new session publishing to `destinations`, and the token that resumes it (given to the page
   * once, never kept in clear); SESSION_LIMIT when a cap is reached.
   */
  create(destinations: readonly StudioDestination[], client: string): { session: StudioSession; token: string } {
    if (this.#draining) throw new OnairError('DRAINING', 'this bridge is shutting down and takes no new sessions; connect again to reach another');
    const release = this.#admission.admit(client);
    const id = randomBytes(8).toString('hex');
    const token = randomBytes(24).toString('base64url');
    const session = new StudioSession({ id, token, client, destinations }, this.#opts, (s) => {
      release();
      if (this.#sessions.get(s.id) !== s) return;
      this.#sessions.delete(s.id);
      const status = s.status();
      this.#ended.bytesIn += status.received.bytes;
      this.#ended.bytesOut += status.destinations.reduce((n, d) => n + d.bytes, 0);
      this.#ended.dropped += status.destinations.reduce((n, d) => n + d.dropped, 0);
      this.#ended.reconnects += s.reconnects;
      this.#opts.onEvent?.({ event: 'studio.session.end', session: s.id, frames: status.received.tags, bytes: status.received.bytes });
      // Once the last one has unpublished and its stop's final status went to the page (a
      // continuation of end(), run before the next macrotask).
      if (this.#sessions.size === 0) {
        void s.done.then(() =>
          setImmediate(() => {
            if (this.#sessions.size === 0) for (const fn of this.#emptied) fn();
          }),
        );
      }
    });
    this.#sessions.set(id, session);
    this.#started++;
    this.#opts.log?.(`studio session ${id}: started with ${destinations.length} destination(s)`);
    this.#opts.onEvent?.({ event: 'studio.session.start', session: id, client, destinations: destinations.length });
    return { session, token };
  }

  /** The session `id` when `token` is its resume token; SESSION_UNKNOWN otherwise (ended, expired, or never here). */
  resume(id: string, token: string): StudioSession {
    const session = this.#sessions.get(id);
    if (session === undefined || session.ended || !session.owns(token)) {
      throw new OnairError('SESSION_UNKNOWN', 'this bridge holds no such studio session (it ended, its grace period ran out, or the bridge restarted)');
    }
    this.#resumes++;
    this.#opts.onEvent?.({ event: 'studio.session.resume', session: id, received: session.received });
    return session;
  }

  /** True while session `id` is here (live or in its grace period): a resume of it may come. */
  has(id: string): boolean {
    return this.#sessions.has(id);
  }

  /** From now on create() refuses (DRAINING); resumes still work. */
  drain(): void {
    this.#draining = true;
  }

  /** Resolves when no session is left and the last one has unpublished (at once when there is none). */
  whenEmpty(): Promise<void> {
    if (this.#sessions.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const fn = (): void => {
        this.#emptied.delete(fn);
        resolve();
      };
      this.#emptied.add(fn);
    });
  }

  stats(): StudioStats {
    const live = [...this.#sessions.values()];
    const statuses = live.map((s) => s.status());
    const destinations = statuses.flatMap((s) => s.destinations);
    const attached = live.filter((s) => s.attached).length;
    return {
      attached,
      waiting: live.length - attached,
      destinations: destinations.map((d) => d.state),
      started: this.#started,
      resumes: this.#resumes,
      bytesIn: this.#ended.bytesIn + statuses.reduce((n, s) => n + s.received.bytes, 0),
      bytesOut: this.#ended.bytesOut + destinations.reduce((n, d) => n + d.bytes, 0),
      dropped: this.#ended.dropped + destinations.reduce((n, d) => n + d.dropped, 0),
      reconnects: this.#ended.reconnects + live.reduce((n, s) => n + s.reconnects, 0),
    };
  }

  /** Retries at once every destination of every session that `matches` (a server known to be back). */
  retryNow(matches: (url: string) => boolean): void {
    for (const s of this.#sessions.values()) s.retryNow(matches);
  }

  /** Ends every session: destinations unpublish. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.#sessions.values()].map((s) => s.end()));
  }
}

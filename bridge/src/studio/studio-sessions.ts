import { randomBytes } from 'node:crypto';
import { OnairError, type StudioDestination } from '@onair/shared';
import { Admission } from '../server/admission.js';
import { StudioSession, type StudioSessionOptions } from './studio-session.js';

export interface StudioLimits {
  /** Studio sessions at once, attached or in their grace period. */
  maxSessions: number;
  /** Sessions one client address may hold at once (loopback clients are one local user: exempt). */
  maxSessionsPerClient: number;
}

export const DEFAULT_STUDIO_LIMITS: StudioLimits = { maxSessions: 16, maxSessionsPerClient: 4 };

/**
 * Every studio session of the bridge, by id: the one owner that creates them (within the limits),
 * finds them again for a resuming page, and ends them all when the bridge shuts down.
 */
export class StudioSessions {
  readonly #opts: StudioSessionOptions;
  readonly #limits: StudioLimits;
  readonly #sessions = new Map<string, StudioSession>();
  readonly #admission: Admission;

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
    const release = this.#admission.admit(client);
    const id = randomBytes(8).toString('hex');
    const token = randomBytes(24).toString('base64url');
    const session = new StudioSession({ id, token, client, destinations }, this.#opts, (s) => {
      release();
      if (this.#sessions.get(s.id) === s) this.#sessions.delete(s.id);
    });
    this.#sessions.set(id, session);
    this.#opts.log?.(`studio session ${id}: started with ${destinations.length} destination(s)`);
    return { session, token };
  }

  /** The session `id` when `token` is its resume token; SESSION_UNKNOWN otherwise (ended, expired, or never here). */
  resume(id: string, token: string): StudioSession {
    const session = this.#sessions.get(id);
    if (session === undefined || session.ended || !session.owns(token)) {
      throw new OnairError('SESSION_UNKNOWN', 'this bridge holds no such studio session (it ended, its grace period ran out, or the bridge restarted)');
    }
    return session;
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

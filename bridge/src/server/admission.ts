import { OnairError, type ErrorCode } from '@onair/shared';
import { isLoopbackHost } from './policy.js';

export interface AdmissionLimits {
  /** At most this many at once. */
  max: number;
  /** At most this many per client address; loopback clients (the local user, a proxy on the same host) are exempt. */
  perClient: number;
}

/**
 * Counts what clients hold at once (studio sessions, viewers) against a global and a per-client
 * limit. `admit` hands back the release, which is idempotent, or throws OnairError `code` saying
 * which limit was met; callers answer "try again later" (WebSocket 1013, HTTP 503).
 */
export class Admission {
  readonly #limits: AdmissionLimits;
  readonly #code: ErrorCode;
  readonly #what: string;
  readonly #perClient = new Map<string, number>();
  #count = 0;

  constructor(limits: AdmissionLimits, code: ErrorCode, what: string) {
    this.#limits = limits;
    this.#code = code;
    this.#what = what;
  }

  get count(): number {
    return this.#count;
  }

  admit(client: string): () => void {
    if (this.#count >= this.#limits.max) {
      throw new OnairError(this.#code, `this bridge carries ${this.#limits.max} ${this.#what} already; try again later`);
    }
    const exempt = isLoopbackHost(client);
    const mine = this.#perClient.get(client) ?? 0;
    if (!exempt && mine >= this.#limits.perClient) {
      throw new OnairError(this.#code, `${this.#limits.perClient} ${this.#what} from one address at once at most; try again later`);
    }
    this.#count++;
    if (!exempt) this.#perClient.set(client, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#count--;
      if (exempt) return;
      const left = (this.#perClient.get(client) ?? 1) - 1;
      if (left <= 0) this.#perClient.delete(client);
      else this.#perClient.set(client, left);
    };
  }
}

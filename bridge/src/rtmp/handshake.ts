import { OnairError } from '@onair/shared';

/** RTMP version byte in C0/S0 (RTMP spec §5.2.2). */
export const RTMP_VERSION = 3;
/** Size of C1/S1/C2/S2 (RTMP spec §5.2.3). */
export const HANDSHAKE_SIZE = 1536;

const enum Phase {
  Start,
  AwaitS0S1,
  AwaitS2,
  Done,
}

export interface HandshakeResult {
  /** Bytes of `data` the handshake took; the rest belong to the chunk stream. */
  consumed: number;
  /** C2, once S1 is in. */
  c2?: Uint8Array;
  done: boolean;
}

/**
 * Client side of the simple handshake: C0+C1 together, C2 (an echo of S1) as soon as S1 is in,
 * done after S2. The digest ("complex") form is only needed by Flash Player playback; servers
 * fall back to this one when C1 carries no digest (zero bytes 4–7).
 */
export class ClientHandshake {
  #phase = Phase.Start;
  readonly #s = new Uint8Array(1 + 2 * HANDSHAKE_SIZE); // S0, S1, S2
  #have = 0;

  /** C0+C1. `fill` supplies C1's random bytes (defaults to crypto.getRandomValues). */
  start(epochMs = 0, fill: (b: Uint8Array) => void = (b) => crypto.getRandomValues(b)): Uint8Array {
    if (this.#phase !== Phase.Start) throw new Error('ClientHandshake.start called twice');
    const out = new Uint8Array(1 + HANDSHAKE_SIZE);
    out[0] = RTMP_VERSION;
    new DataView(out.buffer).setUint32(1, epochMs >>> 0);
    // Bytes 5–8 stay zero: the simple handshake. getRandomValues fills at most 65536 bytes.
    fill(out.subarray(9));
    this.#phase = Phase.AwaitS0S1;
    return out;
  }

  get done(): boolean {
    return this.#phase === Phase.Done;
  }

  push(data: Uint8Array): HandshakeResult {
    if (this.#phase === Phase.Start) throw new Error('ClientHandshake.push before start');
    if (this.#phase === Phase.Done) return { consumed: 0, done: true };
    const take = Math.min(data.length, this.#s.length - this.#have);
    this.#s.set(data.subarray(0, take), this.#have);
    const before = this.#have;
    this.#have += take;
    if (before === 0 && this.#s[0] !== RTMP_VERSION) {
      throw new OnairError(
        'HANDSHAKE_FAILED',
        `server answered the handshake with version ${this.#s[0]}, expected ${RTMP_VERSION}: is this an RTMP server (or RTMPS needing rtmps://)?`,
      );
    }
    const result: HandshakeResult = { consumed: take, done: false };
    if (this.#phase === Phase.AwaitS0S1 && this.#have >= 1 + HANDSHAKE_SIZE) {
      result.c2 = this.#s.slice(1, 1 + HANDSHAKE_SIZE);
      this.#phase = Phase.AwaitS2;
    }
    // S2 should echo C1, but servers differ in what they put there; like FFmpeg's simple
    // handshake, accept it as is.
    if (this.#phase === Phase.AwaitS2 && this.#have === this.#s.length) {
      this.#phase = Phase.Done;
      result.done = true;
    }
    return result;
  }
}

import type { Writable } from 'node:stream';

/**
 * Coalesces the writes each socket gets within one tick into one `writev`: a socket is corked on
 * its first write of the tick and every corked socket is uncorked together when the tick ends, so
 * nothing is held past it. Tags that arrive in one upstream read, and a joiner's GOP burst, then
 * cost each viewer one system call instead of one per tag. One flush per tick, whatever the number
 * of sockets, and no allocation per write.
 */
export class TickCorker {
  readonly #corked = new Set<Writable>();
  #queued = false;
  readonly #flush = (): void => {
    this.#queued = false;
    for (const socket of this.#corked) socket.uncork();
    this.#corked.clear();
  };

  write(socket: Writable, bytes: Uint8Array): void {
    if (!this.#corked.has(socket)) {
      socket.cork();
      this.#corked.add(socket);
      if (!this.#queued) {
        this.#queued = true;
        process.nextTick(this.#flush);
      }
    }
    socket.write(bytes);
  }

  /** Sends whatever the current tick has corked now. */
  close(): void {
    this.#flush();
  }
}

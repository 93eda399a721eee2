/**
 * Window Acknowledgement Size a publisher asks of the server (RTMP spec §5.4.4): small, so that a
 * server that honours it acknowledges often and one that stops reading is noticed within seconds.
 */
export const DEFAULT_PUBLISH_ACK_WINDOW = 128 * 1024;

/**
 * What the server's Acknowledgements (RTMP spec §5.4.3) say about the bytes a publisher sends.
 * nginx-rtmp, SRS, FFmpeg and ZLMediaKit acknowledge every window we announce; node-media-server
 * 4 never does, and old ZLMediaKit versions counted the bytes they sent themselves. So an
 * acknowledgement is owed only once one has accounted for at least half of what went out since
 * the one before: the server's acknowledgements then count our bytes, and their stopping means
 * it stopped reading.
 *
 * Sans-I/O: the caller passes its clock and `sent`, its count of bytes the network has taken
 * (what a server can have read), at each acknowledgement and at each check. The sequence number
 * is only used for how far it moved (modulo 2^32), never compared with `sent` itself: servers
 * count from different origins (with or without the handshake) and restart near the top
 * (nginx-rtmp at 0xF0000000 goes back to 0, SRS to the step it just counted).
 */
export class AckWindow {
  /** The window announced to the server. */
  readonly size: number;
  /** Acknowledgements whose sequence number moved. */
  acks = 0;
  /** Bytes the server acknowledged: the sum of the sequence number's steps, never more than went out. */
  acknowledged = 0;
  #sequence = 0;
  #sentAtAck = 0;
  /** Bytes between acknowledgements: our window, or the larger step a server actually uses. */
  #spacing: number;
  #owedSince: number | undefined;
  #tracking = false;

  constructor(size: number) {
    this.size = size;
    this.#spacing = size;
  }

  /** Bytes acknowledged between two acknowledgements at most so far (at least the announced window). */
  get spacing(): number {
    return this.#spacing;
  }

  /** An acknowledgement accounted for half of what went out since the one before: they count our bytes. */
  get tracking(): boolean {
    return this.#tracking;
  }

  /** An Acknowledgement arrived carrying `sequence`, when `sent` bytes had gone out. */
  received(sequence: number, sent: number): void {
    const seq = sequence >>> 0;
    // A repeated sequence number says the server read nothing more.
    if (this.acks > 0 && seq === this.#sequence) return;
    const since = sent - this.#sentAtAck;
    const outstanding = sent - this.acknowledged;
    const moved = (seq - this.#sequence) >>> 0;
    // A server cannot acknowledge more than went out: a larger step is its counter restarting
    // near the top, and the sequence number then counts from the restart.
    const restarted = moved > outstanding;
    const step = restarted ? Math.min(seq, outstanding) : moved;
    // A server that keeps its own, larger window (the first step shows it too) is owed an
    // acknowledgement only after that many bytes: waiting longer is safe, failing early is not.
    if (!restarted) this.#spacing = Math.max(this.#spacing, step);
    this.acks++;
    this.acknowledged += step;
    this.#sequence = seq;
    this.#sentAtAck = sent;
    this.#owedSince = undefined;
    // Not yet at the first acknowledgement of a connection whose kernel buffers swallowed
    // megabytes at once (it says little then), nor ever for acknowledgements of something else.
    if (step > 0 && step >= since / 2) this.#tracking = true;
  }

  /**
   * How long, in ms, an acknowledgement has been owed at `now`: more than a window (`spacing`)
   * went out since the last one arrived, and none came since that was first seen. 0 while none
   * is owed, and always until the server's acknowledgements are seen to count our bytes.
   */
  overdue(sent: number, now: number): number {
    if (!this.#tracking || sent - this.#sentAtAck <= this.#spacing) {
      this.#owedSince = undefined;
      return 0;
    }
    this.#owedSince ??= now;
    return now - this.#owedSince;
  }
}

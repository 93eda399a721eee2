/**
 * The page's half of the studio protocol's resend contract (docs/ws-protocol.md): every FLV tag
 * sent to the bridge is kept, numbered as the bridge numbers binary frames, until the bridge
 * acknowledges it; after a dropped socket the page resumes the session and resends what the bridge
 * did not get. Bounded by media time and bytes: past the bound the oldest whole GOPs go, so what is
 * left always starts on a keyframe, and a resume that needs them reports a gap instead. Sans-I/O.
 */

export const enum TagClass {
  Header, // onMetaData, AAC and AVC sequence headers
  Keyframe, // a video keyframe: where a GOP, and a restart after a gap, begins
  Frame, // other video frames
  Audio,
}

export interface OutboxLimits {
  /** Media time kept at least (the oldest GOP goes only when what is left still spans this). */
  bufferMs: number;
  /** Bytes kept at most, whatever the media time. */
  maxBytes: number;
}

export const DEFAULT_OUTBOX_LIMITS: OutboxLimits = { bufferMs: 15_000, maxBytes: 48 * 1024 * 1024 };

interface Entry {
  bytes: Uint8Array<ArrayBuffer>;
  cls: TagClass;
  /** Media timestamp (ms on the stream's timeline). */
  ms: number;
}

/** What a resume sends: the frames after the bridge's count, or a restart after a gap. */
export interface ResumePlan {
  /** Frames to send, in order, numbered from the bridge's count + 1. */
  frames: Uint8Array<ArrayBuffer>[];
  /** Set when frames the bridge needs are gone: send `gap` with these figures first. */
  gap: { frames: number; ms: number } | undefined;
}

/** A video frame dropped from the buffer, which the bridge may never have got. */
interface Trimmed {
  seq: number;
  ms: number;
}

/** Trimmed frames remembered for the gap report; older ones are only counted as lost time. */
const MAX_TRIMMED = 64 * 1024;

export class Outbox {
  #limits: OutboxLimits;
  #entries: Entry[] = [];
  #head = 0;
  /** Number of the frame at #entries[#head]. */
  #firstSeq = 1;
  #bytes = 0;
  #acknowledged = 0;
  #trimmed: Trimmed[] = [];
  /** The newest header of each kind, sent again before a restart. */
  readonly #headers = new Map<string, Entry>();

  constructor(limits: OutboxLimits = DEFAULT_OUTBOX_LIMITS) {
    this.#limits = limits;
  }

  get limits(): OutboxLimits {
    return this.#limits;
  }

  set limits(limits: OutboxLimits) {
    this.#limits = limits;
    this.#trim();
  }

  /** Number the next pushed frame gets. */
  get nextSeq(): number {
    return this.#firstSeq + this.#entries.length - this.#head;
  }

  /** Bytes held (sent and not acknowledged, or not sent yet). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Bytes held of the frames numbered after `seq`. */
  bytesAfter(seq: number): number {
    const from = Math.max(this.#head, this.#head + seq + 1 - this.#firstSeq);
    if (from <= this.#head) return this.#bytes;
    let n = 0;
    for (let i = from; i < this.#entries.length; i++) n += this.#entries[i]!.bytes.length;
    return n;
  }

  /** Bytes the bridge acknowledged since the outbox was made: what the link really carried. */
  get acknowledgedBytes(): number {
    return this.#acknowledged;
  }

  /** Frames held. */
  get size(): number {
    return this.#entries.length - this.#head;
  }

  /** Media time the held frames span, ms. */
  get spanMs(): number {
    const first = this.#entries[this.#head];
    const last = this.#entries[this.#entries.length - 1];
    return first === undefined || last === undefined ? 0 : last.ms - first.ms;
  }

  /**
   * Keeps a copy of `bytes` (the muxer reuses its buffer) and returns its frame number. `key`
   * names the header's kind (`'meta'`, `'audio'`, `'video'`) for headers.
   */
  push(bytes: Uint8Array, cls: TagClass, ms: number, key = ''): number {
    const entry: Entry = { bytes: bytes.slice(), cls, ms };
    if (cls === TagClass.Header) this.#headers.set(key, entry);
    this.#entries.push(entry);
    this.#bytes += entry.bytes.length;
    this.#trim();
    return this.nextSeq - 1;
  }

  /** The bridge has frames 1..`received`. */
  ack(received: number): void {
    while (this.#head < this.#entries.length && this.#firstSeq <= received) {
      this.#bytes -= this.#entries[this.#head]!.bytes.length;
      this.#acknowledged += this.#entries[this.#head]!.bytes.length;
      this.#entries[this.#head] = undefined as unknown as Entry;
      this.#head++;
      this.#firstSeq++;
    }
    if (this.#firstSeq <= received) this.#firstSeq = received + 1;
    this.#compact();
    let keep = 0;
    while (keep < this.#trimmed.length && this.#trimmed[keep]!.seq <= received) keep++;
    if (keep > 0) this.#trimmed.splice(0, keep);
  }

  /** The frames numbered `from` and later (to send after the socket opened, say). */
  framesFrom(from: number): Uint8Array<ArrayBuffer>[] {
    const start = this.#head + Math.max(0, from - this.#firstSeq);
    return this.#entries.slice(start).map((e) => e.bytes);
  }

  /**
   * The same session on a new socket: the bridge has frames 1..`received`. Either everything after
   * it is still here, or a gap: the headers and what is held from its oldest keyframe on are
   * renumbered from `received` + 1.
   */
  resume(received: number): ResumePlan {
    if (received + 1 >= this.#firstSeq) {
      this.ack(received);
      return { frames: this.framesFrom(received + 1), gap: undefined };
    }
    return { gap: this.#gap(this.#lost(received)), frames: this.#restartFrom(received + 1) };
  }

  /**
   * A new session (the old one is gone): numbering starts at 1 again with the headers, then what is
   * held from its oldest keyframe on. Returns the frames to send and the media this loses (what
   * was held before that keyframe, and what was trimmed unacknowledged).
   */
  restart(): ResumePlan {
    const lost = this.#lost(0);
    return { gap: lost.length === 0 ? undefined : this.#gap(lost), frames: this.#restartFrom(1) };
  }

  /** Video frames after `received` that a restart at the oldest held keyframe leaves out. */
  #lost(received: number): Trimmed[] {
    const lost = this.#trimmed.filter((t) => t.seq > received);
    for (let i = this.#head; i < this.#entries.length && this.#entries[i]!.cls !== TagClass.Keyframe; i++) {
      const e = this.#entries[i]!;
      const seq = this.#firstSeq + i - this.#head;
      if (e.cls === TagClass.Frame && seq > received) lost.push({ seq, ms: e.ms });
    }
    return lost;
  }

  /** What `lost` frames amount to: their count, and the media time from the first to the keyframe that resumes. */
  #gap(lost: readonly Trimmed[]): { frames: number; ms: number } {
    const resumeMs = this.#entries[this.#nextKeyframe(this.#head) ?? this.#entries.length - 1]?.ms ?? 0;
    const first = lost[0]?.ms ?? resumeMs;
    return { frames: lost.length, ms: Math.max(0, resumeMs - first) };
  }

  /** Headers, then what is held from its oldest keyframe on, numbered from `seq`. */
  #restartFrom(seq: number): Uint8Array<ArrayBuffer>[] {
    const start = this.#nextKeyframe(this.#head) ?? this.#entries.length;
    this.#entries = [...this.#headers.values(), ...this.#entries.slice(start)];
    this.#head = 0;
    this.#firstSeq = seq;
    this.#bytes = this.#entries.reduce((n, e) => n + e.bytes.length, 0);
    this.#trimmed = [];
    return this.framesFrom(seq);
  }

  /** Drops the oldest GOP while what is left still spans the buffer, or while over the byte bound. */
  #trim(): void {
    for (;;) {
      const next = this.#nextKeyframe(this.#head + 1);
      if (next === undefined) return;
      const last = this.#entries[this.#entries.length - 1]!;
      const overBytes = this.#bytes > this.#limits.maxBytes;
      if (!overBytes && last.ms - this.#entries[next]!.ms < this.#limits.bufferMs) return;
      this.#dropTo(next);
    }
  }

  #nextKeyframe(from: number): number | undefined {
    for (let i = from; i < this.#entries.length; i++) if (this.#entries[i]!.cls === TagClass.Keyframe) return i;
    return undefined;
  }

  #dropTo(index: number): void {
    while (this.#head < index) {
      const e = this.#entries[this.#head]!;
      if (e.cls === TagClass.Keyframe || e.cls === TagClass.Frame) this.#trimmed.push({ seq: this.#firstSeq, ms: e.ms });
      this.#bytes -= e.bytes.length;
      this.#entries[this.#head] = undefined as unknown as Entry;
      this.#head++;
      this.#firstSeq++;
    }
    if (this.#trimmed.length > MAX_TRIMMED) this.#trimmed.splice(0, this.#trimmed.length - MAX_TRIMMED);
    this.#compact();
  }

  #compact(): void {
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries.splice(0, this.#head);
      this.#head = 0;
    }
  }
}

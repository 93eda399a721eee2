import { OnairError } from '@onair/shared';
import { MessageType, type RtmpMessage } from './messages.js';

export interface ChunkReaderLimits {
  /** Largest message accepted, in bytes (the header's 24-bit length allows just under 16 MiB). */
  maxMessageSize: number;
  /** Most chunk stream ids a peer may use (nginx-rtmp allows 32). */
  maxChunkStreams: number;
  /** Largest Set Chunk Size accepted from the peer. */
  maxChunkSize: number;
  /**
   * Most bytes held for incomplete messages on all chunk streams together: without it a peer
   * could start a large message on every chunk stream and finish none (64 × 8 MiB).
   */
  maxPartialBytes: number;
}

export const DEFAULT_CHUNK_READER_LIMITS: Readonly<ChunkReaderLimits> = {
  maxMessageSize: 8 * 1024 * 1024,
  maxChunkStreams: 64,
  maxChunkSize: 16 * 1024 * 1024,
  maxPartialBytes: 16 * 1024 * 1024,
};

/** The chunk size every RTMP connection starts with (RTMP spec §5.4.1). */
export const DEFAULT_CHUNK_SIZE = 128;

/** Message header sizes for fmt 0–3 (RTMP spec §5.3.1.2). */
const MESSAGE_HEADER_SIZE = [11, 7, 3, 0] as const;
/** 3-byte basic header + 11-byte message header + 4-byte extended timestamp. */
const MAX_HEADER_SIZE = 18;
const EXTENDED = 0xffffff;
/** First allocation for a message split over chunks; grows by doubling up to its length. */
const INITIAL_BUFFER = 16 * 1024;

interface ChunkStreamState {
  readonly csid: number;
  timestamp: number;
  delta: number;
  /** The last header's timestamp field was 0xFFFFFF: continuation chunks may repeat it. */
  extended: boolean;
  extendedValue: number;
  length: number;
  type: number;
  streamId: number;
  /** A message has started on this chunk stream and is not complete yet. */
  active: boolean;
  buf: Uint8Array | undefined;
  received: number;
  /** Bytes of `buf` counted against maxPartialBytes (0 for a message read in one piece). */
  held: number;
}

function u24(b: Uint8Array, at: number): number {
  return (b[at]! << 16) | (b[at + 1]! << 8) | b[at + 2]!;
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

function u32le(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

/** Where complete messages go: the array push returns, or the caller's callback. */
interface MessageSink {
  push(message: RtmpMessage): unknown;
}

function protocolError(message: string): OnairError {
  return new OnairError('RTMP_PROTOCOL', message);
}

/**
 * Push parser for the RTMP chunk stream (RTMP spec §5.3): feed bytes split anywhere, get back
 * the messages they complete. Only a header split across pushes is copied into a small scratch
 * buffer; payload bytes are copied once, into a per-message buffer that grows as chunks arrive
 * (never sized from the announced length up front). Set Chunk Size and Abort from the peer are
 * applied here, in stream order, and still returned to the caller.
 */
export class ChunkReader {
  readonly #limits: ChunkReaderLimits;
  readonly #streams = new Map<number, ChunkStreamState>();
  readonly #scratch = new Uint8Array(MAX_HEADER_SIZE);
  #scratchLen = 0;
  #chunkSize = DEFAULT_CHUNK_SIZE;
  /** The chunk stream whose payload is being read, or undefined while a header is expected. */
  #current: ChunkStreamState | undefined;
  #chunkLeft = 0;
  #failed: OnairError | undefined;
  /** Buffer bytes allocated for incomplete messages, on all chunk streams. */
  #partialBytes = 0;

  constructor(limits: Partial<ChunkReaderLimits> = {}) {
    this.#limits = { ...DEFAULT_CHUNK_READER_LIMITS, ...limits };
  }

  get chunkSize(): number {
    return this.#chunkSize;
  }

  /** Bytes allocated right now for messages whose chunks have not all arrived. */
  get partialBytes(): number {
    return this.#partialBytes;
  }

  /** Sets the incoming chunk size; the reader does this itself when it reads Set Chunk Size. */
  setChunkSize(size: number): void {
    if (!Number.isInteger(size) || size < 1 || size > this.#limits.maxChunkSize) {
      throw new OnairError('RTMP_BAD_CHUNK_SIZE', `chunk size ${size} outside 1..${this.#limits.maxChunkSize}`);
    }
    this.#chunkSize = size;
  }

  /**
   * Parses `data` and returns the messages it completes. With `each`, every message is handed to
   * it as soon as it is complete instead: a fault later in `data` then leaves the messages before
   * it delivered, so what the caller sees does not depend on how the network cut the bytes.
   */
  push(data: Uint8Array, each?: (message: RtmpMessage) => void): RtmpMessage[] {
    if (this.#failed) throw this.#failed;
    const out: RtmpMessage[] = [];
    try {
      this.#feed(data, each === undefined ? out : { push: each });
    } catch (err) {
      if (err instanceof OnairError) this.#failed = err;
      throw err;
    }
    return out;
  }

  #feed(data: Uint8Array, out: MessageSink): void {
    let pos = 0;
    while (pos < data.length) {
      if (this.#current) {
        pos += this.#payload(data, pos, out);
      } else if (this.#scratchLen > 0) {
        const had = this.#scratchLen;
        const take = Math.min(MAX_HEADER_SIZE - had, data.length - pos);
        this.#scratch.set(data.subarray(pos, pos + take), had);
        const used = this.#header(this.#scratch, 0, had + take, out);
        if (used < 0) {
          this.#scratchLen = had + take;
          return;
        }
        this.#scratchLen = 0;
        if (used >= had) {
          pos += used - had;
        } else {
          // A fmt3 header peeked 4 bytes that were not an extended timestamp: what was held
          // beyond the header comes first in the stream, before data[pos].
          this.#feed(this.#scratch.slice(used, had), out);
        }
      } else {
        const used = this.#header(data, pos, data.length - pos, out);
        if (used < 0) {
          this.#scratch.set(data.subarray(pos), 0);
          this.#scratchLen = data.length - pos;
          return;
        }
        pos += used;
      }
    }
  }

  /** Parses one chunk header at b[off..off+avail); returns its length, or -1 if incomplete. */
  #header(b: Uint8Array, off: number, avail: number, out: MessageSink): number {
    const b0 = b[off]!;
    const fmt = b0 >> 6;
    let csid = b0 & 0x3f;
    let n = 1;
    if (csid === 0) {
      if (avail < 2) return -1;
      csid = 64 + b[off + 1]!;
      n = 2;
    } else if (csid === 1) {
      if (avail < 3) return -1;
      csid = 64 + b[off + 1]! + b[off + 2]! * 256;
      n = 3;
    }
    const mh = MESSAGE_HEADER_SIZE[fmt as 0 | 1 | 2 | 3];
    if (avail < n + mh) return -1;
    let cs = this.#streams.get(csid);
    if (!cs) {
      if (fmt !== 0) throw protocolError(`chunk stream ${csid} starts with a fmt ${fmt} header, not fmt 0`);
      if (this.#streams.size >= this.#limits.maxChunkStreams) {
        throw new OnairError(
          'RTMP_TOO_MANY_CHUNK_STREAMS',
          `peer opened chunk stream ${csid}, more than ${this.#limits.maxChunkStreams} chunk streams`,
        );
      }
      cs = {
        csid, timestamp: 0, delta: 0, extended: false, extendedValue: 0,
        length: 0, type: 0, streamId: 0, active: false, buf: undefined, received: 0, held: 0,
      };
      this.#streams.set(csid, cs);
    }
    const p = off + n;
    if (fmt === 3) {
      let used = n;
      if (cs.extended) {
        // Writers disagree on repeating the extended timestamp after a fmt3 header; like SRS,
        // take the 4 bytes as one only if they equal the last extended timestamp.
        if (avail < n + 4) return -1;
        if (u32(b, p) === cs.extendedValue) used += 4;
      }
      if (!cs.active) {
        cs.timestamp = (cs.timestamp + cs.delta) >>> 0;
        this.#begin(cs, out);
      } else {
        this.#startChunk(cs, out);
      }
      return used;
    }
    const field = u24(b, p);
    let used = n + mh;
    let ts = field;
    if (field === EXTENDED) {
      if (avail < used + 4) return -1;
      ts = u32(b, off + used);
      used += 4;
    }
    if (cs.active) {
      throw protocolError(
        `fmt ${fmt} header on chunk stream ${csid} before its message (${cs.received} of ${cs.length} bytes) was complete`,
      );
    }
    if (fmt === 0) {
      cs.timestamp = ts;
      // A fmt3 header that starts a new message after a fmt0 one repeats this as its delta.
      cs.delta = ts;
      cs.streamId = u32le(b, p + 7);
    } else {
      cs.delta = ts;
      cs.timestamp = (cs.timestamp + ts) >>> 0;
    }
    if (fmt <= 1) {
      cs.length = u24(b, p + 3);
      cs.type = b[p + 6]!;
    }
    cs.extended = field === EXTENDED;
    cs.extendedValue = ts;
    if (cs.length > this.#limits.maxMessageSize) {
      throw new OnairError(
        'RTMP_MESSAGE_TOO_LARGE',
        `message of ${cs.length} bytes (type ${cs.type}) on chunk stream ${csid}, limit ${this.#limits.maxMessageSize}`,
      );
    }
    this.#begin(cs, out);
    return used;
  }

  #begin(cs: ChunkStreamState, out: MessageSink): void {
    cs.active = true;
    this.#release(cs);
    this.#startChunk(cs, out);
  }

  /** Drops a chunk stream's message buffer and what it counted against maxPartialBytes. */
  #release(cs: ChunkStreamState): void {
    this.#partialBytes -= cs.held;
    cs.held = 0;
    cs.buf = undefined;
    cs.received = 0;
  }

  #startChunk(cs: ChunkStreamState, out: MessageSink): void {
    const left = Math.min(this.#chunkSize, cs.length - cs.received);
    if (left === 0) {
      this.#complete(cs, out);
      return;
    }
    this.#current = cs;
    this.#chunkLeft = left;
  }

  #payload(b: Uint8Array, off: number, out: MessageSink): number {
    const cs = this.#current!;
    const n = Math.min(this.#chunkLeft, b.length - off);
    if (cs.received === 0 && n === cs.length) {
      cs.buf = b.slice(off, off + n);
    } else {
      const need = cs.received + n;
      let buf = cs.buf;
      if (!buf || buf.length < need) {
        const cap = Math.min(cs.length, Math.max(need, buf ? buf.length * 2 : INITIAL_BUFFER));
        const total = this.#partialBytes - cs.held + cap;
        if (total > this.#limits.maxPartialBytes) {
          const partial = [...this.#streams.values()].filter((s) => s.held > 0 || s === cs).length;
          throw new OnairError(
            'RTMP_MESSAGE_TOO_LARGE',
            `incomplete messages on ${partial} chunk streams would hold ${total} bytes, more than maxPartialBytes ${this.#limits.maxPartialBytes}`,
          );
        }
        this.#partialBytes = total;
        cs.held = cap;
        const grown = new Uint8Array(cap);
        if (buf) grown.set(buf.subarray(0, cs.received));
        cs.buf = buf = grown;
      }
      buf.set(b.subarray(off, off + n), cs.received);
    }
    cs.received += n;
    this.#chunkLeft -= n;
    if (this.#chunkLeft === 0) {
      this.#current = undefined;
      if (cs.received === cs.length) this.#complete(cs, out);
    }
    return n;
  }

  #complete(cs: ChunkStreamState, out: MessageSink): void {
    const payload = cs.buf ? cs.buf.subarray(0, cs.length) : new Uint8Array(0);
    cs.active = false;
    this.#release(cs);
    this.#current = undefined;
    const msg: RtmpMessage = { csid: cs.csid, type: cs.type, timestamp: cs.timestamp, streamId: cs.streamId, payload };
    if (msg.type === MessageType.SetChunkSize) {
      if (payload.length < 4) throw protocolError(`Set Chunk Size of ${payload.length} bytes`);
      // The spec reserves the top bit (always 0); a value with it set is refused, not masked,
      // so the error names what the peer actually sent.
      this.setChunkSize(u32(payload, 0));
    } else if (msg.type === MessageType.Abort && payload.length >= 4) {
      const aborted = this.#streams.get(u32(payload, 0));
      if (aborted && aborted !== this.#current) {
        aborted.active = false;
        this.#release(aborted);
      }
    }
    out.push(msg);
  }
}

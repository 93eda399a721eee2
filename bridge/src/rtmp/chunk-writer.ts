import { OnairError, assert } from '@onair/shared';
import type { RtmpMessage } from './messages.js';

/** Outgoing chunk size onair uses (OBS uses 4096 too). */
export const DEFAULT_OUT_CHUNK_SIZE = 4096;
/** Largest outgoing chunk size we will set; readers commonly refuse more than 16 MiB. */
export const MAX_OUT_CHUNK_SIZE = 16 * 1024 * 1024;

const EXTENDED = 0xffffff;
/** encode() carves messages out of blocks this big instead of allocating one buffer each. */
const BLOCK_BYTES = 256 * 1024;
/** Messages larger than this get a buffer of their own: they would waste most of a block. */
const OWN_BUFFER_BYTES = 32 * 1024;

interface LastHeader {
  streamId: number;
  type: number;
  length: number;
  timestamp: number;
}

/**
 * Serializes messages into chunks (RTMP spec §5.3). A new message starts with fmt0 when it is
 * the first on its chunk stream, changes message stream id or goes back in time; with fmt2 when
 * only the timestamp moves; else fmt1. fmt3 is used only for continuation chunks, which repeat
 * the extended timestamp when there is one (modern FFmpeg and nginx-rtmp expect it).
 * Each message becomes one Uint8Array (or is written into the caller's buffer).
 */
export class ChunkWriter {
  #chunkSize = 128;
  readonly #last: (LastHeader | undefined)[] = [];
  #block: Uint8Array | undefined;
  #blockUsed = 0;

  get chunkSize(): number {
    return this.#chunkSize;
  }

  /** Call after queueing the Set Chunk Size message that announces `size` to the peer. */
  setChunkSize(size: number): void {
    if (!Number.isInteger(size) || size < 1 || size > MAX_OUT_CHUNK_SIZE) {
      throw new OnairError('RTMP_BAD_CHUNK_SIZE', `chunk size ${size} outside 1..${MAX_OUT_CHUNK_SIZE}`);
    }
    this.#chunkSize = size;
  }

  /**
   * Encodes one message. Small messages share a block, each returned as a view of its own bytes;
   * a block is never written again once handed out, so views stay valid however long a socket
   * queues them. The payload is copied: the caller may reuse it as soon as this returns.
   */
  encode(msg: RtmpMessage): Uint8Array {
    const plan = this.#plan(msg);
    if (plan.size > OWN_BUFFER_BYTES) {
      const out = new Uint8Array(plan.size);
      this.#write(msg, plan, out, 0);
      return out;
    }
    let block = this.#block;
    if (block === undefined || block.length - this.#blockUsed < plan.size) {
      block = this.#block = new Uint8Array(BLOCK_BYTES);
      this.#blockUsed = 0;
    }
    const start = this.#blockUsed;
    this.#write(msg, plan, block, start);
    this.#blockUsed += plan.size;
    return block.subarray(start, this.#blockUsed);
  }

  /** Bytes `encodeInto` will write for `msg` given the writer's current state. */
  encodedSize(msg: RtmpMessage): number {
    return this.#plan(msg).size;
  }

  /** Writes one message at out[offset..]; returns the bytes written. */
  encodeInto(msg: RtmpMessage, out: Uint8Array, offset: number): number {
    const plan = this.#plan(msg);
    if (out.length - offset < plan.size) throw new RangeError(`encodeInto needs ${plan.size} bytes at ${offset}`);
    this.#write(msg, plan, out, offset);
    return plan.size;
  }

  #plan(msg: RtmpMessage): Plan {
    const { csid, payload } = msg;
    // 2–8 keeps every basic header one byte and under nginx-rtmp's max_streams.
    assert(Number.isInteger(csid) && csid >= 2 && csid <= 8, `chunk stream id ${csid} outside 2..8`);
    if (payload.length > 0xffffff) {
      throw new OnairError('RTMP_MESSAGE_TOO_LARGE', `message of ${payload.length} bytes exceeds the 24-bit length field`);
    }
    const ts = msg.timestamp >>> 0;
    const last = this.#last[csid];
    let fmt = 0;
    let field = ts;
    if (last && last.streamId === msg.streamId && ts >= last.timestamp) {
      field = ts - last.timestamp;
      fmt = last.type === msg.type && last.length === payload.length ? 2 : 1;
    }
    const ext = field >= EXTENDED ? 4 : 0;
    const chunks = Math.max(1, Math.ceil(payload.length / this.#chunkSize));
    const first = 1 + (fmt === 0 ? 11 : fmt === 1 ? 7 : 3) + ext;
    return { fmt, field, ext, size: first + (chunks - 1) * (1 + ext) + payload.length };
  }

  #write(msg: RtmpMessage, plan: Plan, out: Uint8Array, offset: number): void {
    const { csid, payload } = msg;
    const { fmt, field, ext } = plan;
    const ts = msg.timestamp >>> 0;
    let p = offset;
    out[p++] = (fmt << 6) | csid;
    const f = ext ? EXTENDED : field;
    out[p++] = f >>> 16;
    out[p++] = (f >>> 8) & 0xff;
    out[p++] = f & 0xff;
    if (fmt <= 1) {
      const len = payload.length;
      out[p++] = len >>> 16;
      out[p++] = (len >>> 8) & 0xff;
      out[p++] = len & 0xff;
      out[p++] = msg.type;
      if (fmt === 0) {
        const sid = msg.streamId >>> 0;
        out[p++] = sid & 0xff;
        out[p++] = (sid >>> 8) & 0xff;
        out[p++] = (sid >>> 16) & 0xff;
        out[p++] = sid >>> 24;
      }
    }
    if (ext) p = writeU32(out, p, field);
    const size = this.#chunkSize;
    let at = 0;
    const end = payload.length;
    for (;;) {
      const n = Math.min(size, end - at);
      out.set(n === end ? payload : payload.subarray(at, at + n), p);
      p += n;
      at += n;
      if (at >= end) break;
      out[p++] = 0xc0 | csid;
      if (ext) p = writeU32(out, p, field);
    }
    const last = this.#last[csid];
    if (last) {
      last.streamId = msg.streamId;
      last.type = msg.type;
      last.length = payload.length;
      last.timestamp = ts;
    } else {
      this.#last[csid] = { streamId: msg.streamId, type: msg.type, length: payload.length, timestamp: ts };
    }
  }
}

interface Plan {
  fmt: number;
  field: number;
  ext: number;
  size: number;
}

function writeU32(out: Uint8Array, p: number, v: number): number {
  out[p] = v >>> 24;
  out[p + 1] = (v >>> 16) & 0xff;
  out[p + 2] = (v >>> 8) & 0xff;
  out[p + 3] = v & 0xff;
  return p + 4;
}

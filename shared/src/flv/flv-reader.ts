import { OnairError, assert } from '../errors.js';
import { FLV_HEADER_SIZE, FLV_PREVIOUS_TAG_SIZE, FLV_TAG_HEADER_SIZE, type FlvTag } from './flv-tag.js';

export interface FlvReaderOptions {
  /**
   * The input is bare tags (11-byte header, body, PreviousTagSize each) with no FLV file
   * header, as on the onair WebSocket where each binary frame carries one such tag.
   */
  headerless?: boolean;
  /** Largest tag body accepted, in bytes. */
  maxTagSize?: number;
}

export const DEFAULT_FLV_MAX_TAG_SIZE = 16 * 1024 * 1024;
/** A DataOffset larger than this is not a real FLV header (every writer uses 9). */
const MAX_DATA_OFFSET = 1024;

const enum State {
  FileHeader,
  FileHeaderRest, // rest of DataOffset, then PreviousTagSize0
  TagHeader,
  TagBody, // body, then PreviousTagSize
}

const enum TagFlag {
  Filter = 0x20, // Filter: 1 = encrypted (FLV spec §E.4.1)
  TypeMask = 0x1f, // TagType
}

function malformed(message: string): OnairError {
  return new OnairError('FLV_MALFORMED', message);
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}

function readU32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/**
 * Incremental FLV parser: push bytes split anywhere, get back the tags they complete.
 * A tag whose bytes arrive in one chunk is returned as a view into that chunk (the reader
 * never writes to it); only a unit split across chunks is copied.
 */
export class FlvReader {
  /** The file header's flags, once read (always undefined for a headerless stream). */
  header: { audio: boolean; video: boolean } | undefined;
  readonly #maxTagSize: number;
  #state: State;
  #need: number;
  #parts: Uint8Array[] = [];
  #partLen = 0;
  #type = 0;
  #timestamp = 0;
  #size = 0;
  #offset = 0;
  #failed: OnairError | undefined;
  #closed = false;

  constructor(options: FlvReaderOptions = {}) {
    this.#maxTagSize = options.maxTagSize ?? DEFAULT_FLV_MAX_TAG_SIZE;
    this.#state = options.headerless ? State.TagHeader : State.FileHeader;
    this.#need = options.headerless ? FLV_TAG_HEADER_SIZE : FLV_HEADER_SIZE;
  }

  /** Bytes held from an incomplete unit. */
  get buffered(): number {
    return this.#partLen;
  }

  push(chunk: Uint8Array): FlvTag[] {
    assert(!this.#closed, 'FlvReader.push after close()');
    if (this.#failed) throw this.#failed;
    const tags: FlvTag[] = [];
    let pos = 0;
    try {
      for (;;) {
        let unit: Uint8Array;
        let at: number;
        if (this.#partLen === 0 && chunk.length - pos >= this.#need) {
          unit = chunk;
          at = pos;
          pos += this.#need;
        } else {
          const take = Math.min(this.#need - this.#partLen, chunk.length - pos);
          if (take > 0) {
            this.#parts.push(chunk.slice(pos, pos + take));
            this.#partLen += take;
            pos += take;
          }
          if (this.#partLen < this.#need) break;
          unit = concat(this.#parts, this.#partLen);
          at = 0;
          this.#parts = [];
          this.#partLen = 0;
        }
        this.#offset += this.#need;
        this.#unit(unit, at, tags);
      }
    } catch (err) {
      if (err instanceof OnairError) this.#failed = err;
      throw err;
    }
    return tags;
  }

  /** Declares the end of input: throws if it stopped inside a header or tag. */
  end(): void {
    if (this.#failed) throw this.#failed;
    const midTag = this.#state !== State.TagHeader || this.#partLen > 0;
    if (midTag) {
      throw malformed(`FLV input ends inside a ${this.#state === State.TagBody ? 'tag' : 'header'}: ${this.#partLen} of ${this.#need} bytes`);
    }
  }

  close(): void {
    this.#closed = true;
    this.#parts = [];
    this.#partLen = 0;
  }

  #unit(b: Uint8Array, at: number, tags: FlvTag[]): void {
    switch (this.#state) {
      case State.FileHeader: {
        if (b[at] !== 0x46 || b[at + 1] !== 0x4c || b[at + 2] !== 0x56) {
          throw malformed(`bad FLV signature ${hex(b.subarray(at, at + 3))}, expected 46 4c 56 ("FLV")`);
        }
        const flags = b[at + 4]!;
        this.header = { audio: (flags & 0x04) !== 0, video: (flags & 0x01) !== 0 };
        const dataOffset = readU32(b, at + 5);
        if (dataOffset < FLV_HEADER_SIZE || dataOffset > MAX_DATA_OFFSET) {
          throw malformed(`FLV DataOffset ${dataOffset} outside ${FLV_HEADER_SIZE}..${MAX_DATA_OFFSET}`);
        }
        this.#state = State.FileHeaderRest;
        this.#need = dataOffset - FLV_HEADER_SIZE + FLV_PREVIOUS_TAG_SIZE;
        return;
      }
      case State.FileHeaderRest: {
        const prev0 = readU32(b, at + this.#need - FLV_PREVIOUS_TAG_SIZE);
        if (prev0 !== 0) throw malformed(`bad PreviousTagSize0 ${prev0}, expected 0`);
        this.#state = State.TagHeader;
        this.#need = FLV_TAG_HEADER_SIZE;
        return;
      }
      case State.TagHeader: {
        const t = b[at]!;
        if (t & TagFlag.Filter) throw malformed(`encrypted FLV tag (Filter bit set, byte 0x${t.toString(16)}) not supported`);
        const size = (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!;
        if (size > this.#maxTagSize) {
          throw new OnairError('FLV_TOO_LARGE', `FLV tag body of ${size} bytes exceeds the limit of ${this.#maxTagSize}`);
        }
        this.#type = t & TagFlag.TypeMask;
        this.#size = size;
        this.#timestamp = ((b[at + 4]! << 16) | (b[at + 5]! << 8) | b[at + 6]!) + b[at + 7]! * 0x1000000;
        this.#state = State.TagBody;
        this.#need = size + FLV_PREVIOUS_TAG_SIZE;
        return;
      }
      case State.TagBody: {
        const prev = readU32(b, at + this.#size);
        const expected = FLV_TAG_HEADER_SIZE + this.#size;
        if (prev !== expected) {
          throw malformed(`bad PreviousTagSize ${prev} after a tag of type ${this.#type} with ${this.#size} body bytes (expected ${expected}, at stream offset ${this.#offset - FLV_PREVIOUS_TAG_SIZE})`);
        }
        tags.push({ type: this.#type, timestamp: this.#timestamp, data: b.subarray(at, at + this.#size) });
        this.#state = State.TagHeader;
        this.#need = FLV_TAG_HEADER_SIZE;
        return;
      }
    }
  }
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Parses exactly one tag in FLV tag format (11-byte header, body, PreviousTagSize): the
 * framing of one onair WebSocket binary message. `data` is a view into `bytes`.
 */
export function parseFlvTag(bytes: Uint8Array, maxTagSize = DEFAULT_FLV_MAX_TAG_SIZE): FlvTag {
  const min = FLV_TAG_HEADER_SIZE + FLV_PREVIOUS_TAG_SIZE;
  if (bytes.length < min) throw malformed(`FLV tag of ${bytes.length} bytes is shorter than its header and PreviousTagSize (${min})`);
  const size = (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!;
  // A frame that lies about its size is malformed, whatever size it claims: FLV_TOO_LARGE is for
  // a tag that really is that large.
  if (bytes.length !== size + min) {
    throw malformed(`FLV tag of ${bytes.length} bytes does not match its DataSize ${size} (expected ${size + min} bytes)`);
  }
  const tag = new FlvReader({ headerless: true, maxTagSize }).push(bytes)[0];
  assert(tag, 'one whole tag yields one FlvTag');
  return tag;
}

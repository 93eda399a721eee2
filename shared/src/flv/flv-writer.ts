import type { ByteWriter } from '../bytes/byte-writer.js';
import { OnairError } from '../errors.js';
import { FLV_HEADER_SIZE, FLV_MAX_BODY_SIZE, FLV_PREVIOUS_TAG_SIZE, FLV_TAG_HEADER_SIZE, type FlvTag } from './flv-tag.js';

const enum FlvHeaderFlag {
  Video = 0x01, // TypeFlagsVideo
  Audio = 0x04, // TypeFlagsAudio
}

/** The 9-byte FLV file header followed by PreviousTagSize0 (13 bytes). */
export function flvHeader(has: { audio: boolean; video: boolean }): Uint8Array {
  const out = new Uint8Array(FLV_HEADER_SIZE + FLV_PREVIOUS_TAG_SIZE);
  out.set([0x46, 0x4c, 0x56, 0x01]); // "FLV", version 1
  out[4] = (has.audio ? FlvHeaderFlag.Audio : 0) | (has.video ? FlvHeaderFlag.Video : 0);
  out[8] = FLV_HEADER_SIZE; // DataOffset
  return out;
}

function checkTag(tag: FlvTag): void {
  if (tag.data.length > FLV_MAX_BODY_SIZE) {
    throw new OnairError('FLV_TOO_LARGE', `FLV tag body of ${tag.data.length} bytes exceeds ${FLV_MAX_BODY_SIZE}`);
  }
  if (!Number.isInteger(tag.timestamp) || tag.timestamp < 0 || tag.timestamp > 0xffffffff) {
    throw new OnairError('FLV_BAD_TIMESTAMP', `FLV timestamp ${tag.timestamp} outside 0..4294967295`);
  }
  if (!Number.isInteger(tag.type) || tag.type < 0 || tag.type > 0x1f) {
    throw new OnairError('FLV_MALFORMED', `FLV tag type ${tag.type} outside 0..31`);
  }
}

function writeHeader(out: Uint8Array, at: number, tag: FlvTag): void {
  const n = tag.data.length;
  const ts = tag.timestamp;
  out[at] = tag.type;
  out[at + 1] = n >>> 16;
  out[at + 2] = (n >>> 8) & 0xff;
  out[at + 3] = n & 0xff;
  out[at + 4] = (ts >>> 16) & 0xff;
  out[at + 5] = (ts >>> 8) & 0xff;
  out[at + 6] = ts & 0xff;
  out[at + 7] = (ts >>> 24) & 0xff; // TimestampExtended: the upper 8 bits
  // StreamID (3 bytes) is always 0.
}

/** One tag in FLV tag format: 11-byte header, body, PreviousTagSize. */
export function flvTag(tag: FlvTag): Uint8Array {
  checkTag(tag);
  const n = tag.data.length;
  const out = new Uint8Array(FLV_TAG_HEADER_SIZE + n + FLV_PREVIOUS_TAG_SIZE);
  writeHeader(out, 0, tag);
  out.set(tag.data, FLV_TAG_HEADER_SIZE);
  new DataView(out.buffer).setUint32(FLV_TAG_HEADER_SIZE + n, FLV_TAG_HEADER_SIZE + n);
  return out;
}

/** Appends the same bytes as `flvTag(tag)` to `w`, to batch many tags into one buffer. */
export function writeFlvTagInto(w: ByteWriter, tag: FlvTag): void {
  checkTag(tag);
  const ts = tag.timestamp;
  w.u8(tag.type).u24(tag.data.length).u24(ts & 0xffffff).u8(ts >>> 24).u24(0);
  w.bytes(tag.data).u32(FLV_TAG_HEADER_SIZE + tag.data.length);
}

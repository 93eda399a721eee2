import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { OnairError } from '../errors.js';

/** AMF0 type markers (AMF0 spec §2.1). */
export const enum Amf0Marker {
  Number = 0x00,
  Boolean = 0x01,
  String = 0x02,
  Object = 0x03,
  MovieClip = 0x04, // reserved, not supported
  Null = 0x05,
  Undefined = 0x06,
  Reference = 0x07,
  EcmaArray = 0x08,
  ObjectEnd = 0x09,
  StrictArray = 0x0a,
  Date = 0x0b,
  LongString = 0x0c,
  Unsupported = 0x0d,
  RecordSet = 0x0e, // reserved, not supported
  XmlDocument = 0x0f,
  TypedObject = 0x10,
  AvmPlus = 0x11,
}

export type Amf0Value =
  | number
  | boolean
  | string
  | null
  | undefined
  | Date
  | Amf0Value[]
  | Amf0Object
  | Amf0EcmaArray;

export interface Amf0Object {
  [key: string]: Amf0Value;
}

/**
 * An ECMA (associative) array. It is kept apart from a plain object because onMetaData is
 * conventionally sent as one, and a relay must re-encode what it read unchanged.
 */
export class Amf0EcmaArray {
  readonly entries: Amf0Object;
  constructor(entries: Amf0Object = {}) {
    this.entries = entries;
  }
}

/** The properties of an object or ECMA array, else undefined. */
export function amf0Props(value: Amf0Value): Amf0Object | undefined {
  if (value instanceof Amf0EcmaArray) return value.entries;
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Date)) {
    return value;
  }
  return undefined;
}

export interface Amf0Limits {
  /** Deepest nesting of objects and arrays accepted. */
  maxDepth: number;
}

export const DEFAULT_AMF0_LIMITS: Amf0Limits = { maxDepth: 16 };

const utf8 = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

function amfError(message: string): OnairError {
  return new OnairError('AMF0_MALFORMED', message);
}

/** Decodes every value in `bytes` (a command or data message body). */
export function decodeAmf0(bytes: Uint8Array, limits: Amf0Limits = DEFAULT_AMF0_LIMITS): Amf0Value[] {
  const r = new ByteReader(bytes);
  const values: Amf0Value[] = [];
  while (r.left > 0) values.push(readValue(r, 0, limits));
  return values;
}

/** Decodes one value at the reader's position. */
export function readAmf0Value(r: ByteReader, limits: Amf0Limits = DEFAULT_AMF0_LIMITS): Amf0Value {
  return readValue(r, 0, limits);
}

function readString(r: ByteReader, len: number): string {
  return utf8.decode(r.bytesView(len, 'AMF0 string'));
}

function readProps(r: ByteReader, depth: number, limits: Amf0Limits): Amf0Object {
  const out: Amf0Object = {};
  for (;;) {
    const keyLen = r.u16();
    if (keyLen === 0) {
      const end = r.u8();
      if (end !== Amf0Marker.ObjectEnd) throw amfError(`AMF0 empty key followed by marker ${end}, not object end`);
      return out;
    }
    const key = readString(r, keyLen);
    // Own-property assignment: a key such as "__proto__" must stay data.
    Object.defineProperty(out, key, { value: readValue(r, depth, limits), enumerable: true, writable: true, configurable: true });
  }
}

function readValue(r: ByteReader, depth: number, limits: Amf0Limits): Amf0Value {
  const marker = r.u8();
  switch (marker) {
    case Amf0Marker.Number:
      return r.f64();
    case Amf0Marker.Boolean:
      return r.u8() !== 0;
    case Amf0Marker.String:
      return readString(r, r.u16());
    case Amf0Marker.LongString:
    case Amf0Marker.XmlDocument:
      return readString(r, r.u32());
    case Amf0Marker.Null:
      return null;
    case Amf0Marker.Undefined:
    case Amf0Marker.Unsupported:
      return undefined;
    case Amf0Marker.Date: {
      const ms = r.f64();
      r.i16(); // time zone: reserved, senders write 0
      return new Date(ms);
    }
    case Amf0Marker.Object:
    case Amf0Marker.TypedObject:
    case Amf0Marker.EcmaArray:
    case Amf0Marker.StrictArray: {
      if (depth + 1 > limits.maxDepth) throw amfError(`AMF0 nesting deeper than ${limits.maxDepth}`);
      if (marker === Amf0Marker.Object) return readProps(r, depth + 1, limits);
      if (marker === Amf0Marker.TypedObject) {
        readString(r, r.u16()); // class name: nothing in RTMP depends on it
        return readProps(r, depth + 1, limits);
      }
      if (marker === Amf0Marker.EcmaArray) {
        r.u32(); // count is a hint only; the entries end with the object-end marker
        return new Amf0EcmaArray(readProps(r, depth + 1, limits));
      }
      const count = r.u32();
      // Each value takes at least one byte: reject counts the input cannot hold before looping.
      if (count > r.left) throw amfError(`AMF0 strict array of ${count} values with ${r.left} bytes left`);
      const arr: Amf0Value[] = [];
      for (let i = 0; i < count; i++) arr.push(readValue(r, depth + 1, limits));
      return arr;
    }
    default:
      throw amfError(`AMF0 type marker 0x${marker.toString(16).padStart(2, '0')} not supported`);
  }
}

/** Encodes values one after another (a command: name, transaction id, command object, args…). */
export function encodeAmf0(values: readonly Amf0Value[]): Uint8Array {
  const w = new ByteWriter(128);
  for (const v of values) writeAmf0Value(w, v);
  return w.finish();
}

function writeKey(w: ByteWriter, key: string): void {
  const b = utf8Encoder.encode(key);
  if (b.length > 0xffff) throw new OnairError('AMF0_TOO_LONG', `AMF0 property name of ${b.length} bytes`);
  w.u16(b.length).bytes(b);
}

function writeProps(w: ByteWriter, props: Amf0Object): void {
  for (const [k, v] of Object.entries(props)) {
    writeKey(w, k);
    writeAmf0Value(w, v);
  }
  w.u16(0).u8(Amf0Marker.ObjectEnd);
}

export function writeAmf0Value(w: ByteWriter, v: Amf0Value): void {
  if (v === null) {
    w.u8(Amf0Marker.Null);
  } else if (v === undefined) {
    w.u8(Amf0Marker.Undefined);
  } else if (typeof v === 'number') {
    w.u8(Amf0Marker.Number).f64(v);
  } else if (typeof v === 'boolean') {
    w.u8(Amf0Marker.Boolean).u8(v ? 1 : 0);
  } else if (typeof v === 'string') {
    const b = utf8Encoder.encode(v);
    if (b.length > 0xffff) w.u8(Amf0Marker.LongString).u32(b.length).bytes(b);
    else w.u8(Amf0Marker.String).u16(b.length).bytes(b);
  } else if (v instanceof Date) {
    w.u8(Amf0Marker.Date).f64(v.getTime()).i16(0);
  } else if (Array.isArray(v)) {
    w.u8(Amf0Marker.StrictArray).u32(v.length);
    for (const item of v) writeAmf0Value(w, item);
  } else if (v instanceof Amf0EcmaArray) {
    w.u8(Amf0Marker.EcmaArray).u32(Object.keys(v.entries).length);
    writeProps(w, v.entries);
  } else {
    w.u8(Amf0Marker.Object);
    writeProps(w, v);
  }
}

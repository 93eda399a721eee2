export { OnairError, ShortInputError, assert } from './errors.js';
export { ByteReader } from './bytes/byte-reader.js';
export { ByteWriter } from './bytes/byte-writer.js';
export {
  Amf0EcmaArray,
  DEFAULT_AMF0_LIMITS,
  amf0Props,
  decodeAmf0,
  encodeAmf0,
  readAmf0Value,
  writeAmf0Value,
} from './amf/amf0.js';
export type { Amf0Limits, Amf0Object, Amf0Value } from './amf/amf0.js';

import { amf0Props } from '../amf/amf0.js';
import { OnairError } from '../errors.js';
import { onMetaDataBody, parseScriptBody } from './flv-media.js';

/**
 * The onMetaData fields a publisher may send through onair, with their AMF0 type. Servers parse
 * metadata with their own AMF decoders (node-media-server's threw on a malformed strict array and
 * took its process down), so a studio's script tag never reaches one as it came: it is decoded
 * with our limits and written again with only these fields.
 */
const METADATA_FIELDS: Readonly<Record<string, 'number' | 'boolean' | 'string'>> = {
  duration: 'number',
  width: 'number',
  height: 'number',
  framerate: 'number',
  videocodecid: 'number',
  videodatarate: 'number',
  audiocodecid: 'number',
  audiodatarate: 'number',
  audiosamplerate: 'number',
  audiosamplesize: 'number',
  audiochannels: 'number',
  stereo: 'boolean',
  hasVideo: 'boolean',
  hasAudio: 'boolean',
  filesize: 'number',
  encoder: 'string',
};
const MAX_STRING = 256;

function refused(message: string): OnairError {
  return new OnairError('FLV_SCRIPT_REFUSED', message);
}

/**
 * A SCRIPTDATA body (`onMetaData` + object, with or without `@setDataFrame`) decoded and encoded
 * again as `onMetaData` + ECMA array of the known fields only. Throws FLV_SCRIPT_REFUSED for any
 * other script, or metadata that does not decode; fields of an unknown name or a wrong type, NaN
 * and infinities are dropped.
 */
export function sanitizeMetadata(body: Uint8Array): Uint8Array {
  let script: ReturnType<typeof parseScriptBody>;
  try {
    script = parseScriptBody(body);
  } catch (err) {
    throw refused(`script tag does not decode: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (script.name !== 'onMetaData') throw refused(`script tag "${script.name.slice(0, 64)}" refused: only onMetaData is relayed`);
  const props = amf0Props(script.value);
  if (props === undefined) throw refused('onMetaData without an object or ECMA array');
  const clean: Record<string, number | string | boolean> = {};
  for (const [key, type] of Object.entries(METADATA_FIELDS)) {
    const v = props[key];
    if (typeof v !== type) continue;
    if (typeof v === 'number' && !Number.isFinite(v)) continue;
    clean[key] = typeof v === 'string' ? v.slice(0, MAX_STRING) : (v as number | boolean);
  }
  return onMetaDataBody(clean, false);
}

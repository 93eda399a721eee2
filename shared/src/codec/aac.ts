import { BitReader, BitWriter } from '../bytes/bitstream.js';
import { OnairError } from '../errors.js';

/** MPEG-4 Audio Object Types used with FLV/RTMP (ISO/IEC 14496-3 Table 1.1). */
export const enum AacObjectType {
  Main = 1, // AAC Main
  Lc = 2, // AAC LC
  Sbr = 5, // SBR (HE-AAC)
  Ps = 29, // PS (HE-AAC v2)
  Escape = 31, // audioObjectTypeExt follows
}

/** samplingFrequencyIndex 0..12 (ISO/IEC 14496-3 Table 1.18); 15 = explicit 24-bit frequency. */
const SAMPLE_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350] as const;
const EXPLICIT_RATE = 15;

export interface AudioSpecificConfig {
  objectType: number;
  /** samplingFrequencyIndex; 15 when the frequency is explicit. */
  samplingIndex: number;
  sampleRate: number;
  /** From channelConfiguration; 0 means the layout is in a program_config_element. */
  channels: number;
}

function malformed(message: string): OnairError {
  return new OnairError('AAC_MALFORMED', message);
}

/**
 * Parses the head of an AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1): object type (with
 * the 31 escape), sampling frequency (index or explicit), channel configuration.
 */
export function parseAudioSpecificConfig(bytes: Uint8Array): AudioSpecificConfig {
  const r = new BitReader(bytes);
  try {
    let objectType = r.bits(5);
    if (objectType === AacObjectType.Escape) objectType = 32 + r.bits(6);
    // Object type 0 is "Null" (Table 1.1): no decoder, and no valid 'mp4a.40.x' codec string.
    if (objectType === 0) throw malformed('AudioSpecificConfig audioObjectType 0 (Null)');
    const samplingIndex = r.bits(4);
    let sampleRate: number;
    if (samplingIndex === EXPLICIT_RATE) {
      sampleRate = r.bits(24);
    } else {
      const rate = SAMPLE_RATES[samplingIndex];
      if (rate === undefined) throw malformed(`AudioSpecificConfig samplingFrequencyIndex ${samplingIndex} is reserved`);
      sampleRate = rate;
    }
    if (sampleRate === 0) throw malformed('AudioSpecificConfig sampling frequency 0');
    const channels = r.bits(4);
    if (channels > 7) throw malformed(`AudioSpecificConfig channelConfiguration ${channels} is reserved`);
    return { objectType, samplingIndex, sampleRate, channels: channels === 7 ? 8 : channels };
  } catch (err) {
    if (err instanceof OnairError && err.code === 'SHORT_INPUT') {
      throw malformed(`AudioSpecificConfig of ${bytes.length} bytes is truncated`);
    }
    throw err;
  }
}

/** Builds an AudioSpecificConfig with a plain GASpecificConfig (1024-sample frames, no core coder). */
export function buildAudioSpecificConfig(init: { objectType: number; sampleRate: number; channels: number }): Uint8Array {
  const { objectType, sampleRate, channels } = init;
  if (!Number.isInteger(objectType) || objectType < 1 || objectType > 95) throw malformed(`audio object type ${objectType} outside 1..95`);
  if (!Number.isInteger(sampleRate) || sampleRate < 1 || sampleRate > 0xffffff) throw malformed(`sample rate ${sampleRate} outside 1..16777215`);
  const channelConfig = channels === 8 ? 7 : channels;
  if (!Number.isInteger(channelConfig) || channelConfig < 1 || channelConfig > 7 || channels === 7) {
    throw malformed(`${channels} channels have no channelConfiguration (1..6 or 8)`);
  }
  const w = new BitWriter(6);
  if (objectType < AacObjectType.Escape) w.bits(5, objectType);
  else w.bits(5, AacObjectType.Escape).bits(6, objectType - 32);
  const index = (SAMPLE_RATES as readonly number[]).indexOf(sampleRate);
  if (index >= 0) w.bits(4, index);
  else w.bits(4, EXPLICIT_RATE).bits(24, sampleRate);
  w.bits(4, channelConfig);
  w.bits(3, 0); // frameLengthFlag, dependsOnCoreCoder, extensionFlag
  return w.finish();
}

/** The RFC 6381 codec string, e.g. 'mp4a.40.2', from an AudioSpecificConfig or its parsed form. */
export function aacCodecString(asc: Uint8Array | Pick<AudioSpecificConfig, 'objectType'>): string {
  const c = asc instanceof Uint8Array ? parseAudioSpecificConfig(asc) : asc;
  return `mp4a.40.${c.objectType}`;
}

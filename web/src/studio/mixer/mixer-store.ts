import type { KeyValueStore } from '../compositor/scene-store.js';

/** The mixer's settings across reloads, in localStorage. Sans-DOM: any Storage-like object. */

export const MIXER_STORAGE_KEY = 'onair.mixer.v1';

/** Every source the mixer takes, in strip order. */
export type SourceId = 'mic' | 'screen' | 'file';
export const SOURCE_IDS: readonly SourceId[] = ['mic', 'screen', 'file'];

/** Fader range: silence-ish at the bottom, some make-up gain at the top. */
export const MIN_GAIN_DB = -60;
export const MAX_GAIN_DB = 12;

export interface StripSettings {
  gainDb: number;
  muted: boolean;
}

/** The microphone's processing, asked for as getUserMedia constraints. */
export interface MicProcessing {
  noiseSuppression: boolean;
  echoCancellation: boolean;
  autoGainControl: boolean;
}
export const MIC_PROCESSING_KEYS: readonly (keyof MicProcessing)[] = ['noiseSuppression', 'echoCancellation', 'autoGainControl'];

export interface MixerSettings {
  strips: Record<SourceId, StripSettings>;
  master: StripSettings;
  /** The sound file plays again from the start when it ends. */
  loop: boolean;
  micProcessing: MicProcessing;
}

export const DEFAULT_MIXER: MixerSettings = {
  strips: { mic: { gainDb: 0, muted: false }, screen: { gainDb: 0, muted: false }, file: { gainDb: -12, muted: false } },
  master: { gainDb: 0, muted: false },
  loop: true,
  // What the studio always asked for; auto gain off, since it fights the fader.
  micProcessing: { noiseSuppression: true, echoCancellation: true, autoGainControl: false },
};

/** A gain in dB kept within the fader's range, to 0.1 dB. */
export function clampGain(db: number): number {
  if (!Number.isFinite(db)) return 0;
  return Math.round(Math.min(MAX_GAIN_DB, Math.max(MIN_GAIN_DB, db)) * 10) / 10;
}

function readStrip(value: unknown, fallback: StripSettings): StripSettings {
  if (typeof value !== 'object' || value === null) return fallback;
  const v = value as Record<string, unknown>;
  return {
    gainDb: typeof v['gainDb'] === 'number' ? clampGain(v['gainDb']) : fallback.gainDb,
    muted: typeof v['muted'] === 'boolean' ? v['muted'] : fallback.muted,
  };
}

/** Settings from anything (a saved entry), field by field; what is missing or malformed is the default. */
export function readMixer(value: unknown): MixerSettings {
  if (typeof value !== 'object' || value === null) return DEFAULT_MIXER;
  const v = value as Record<string, unknown>;
  const strips = (typeof v['strips'] === 'object' && v['strips'] !== null ? v['strips'] : {}) as Record<string, unknown>;
  const mp = (typeof v['micProcessing'] === 'object' && v['micProcessing'] !== null ? v['micProcessing'] : {}) as Record<string, unknown>;
  const micProcessing = { ...DEFAULT_MIXER.micProcessing };
  for (const key of MIC_PROCESSING_KEYS) {
    const on = mp[key];
    if (typeof on === 'boolean') micProcessing[key] = on;
  }
  return {
    strips: {
      mic: readStrip(strips['mic'], DEFAULT_MIXER.strips.mic),
      screen: readStrip(strips['screen'], DEFAULT_MIXER.strips.screen),
      file: readStrip(strips['file'], DEFAULT_MIXER.strips.file),
    },
    master: readStrip(v['master'], DEFAULT_MIXER.master),
    loop: typeof v['loop'] === 'boolean' ? v['loop'] : DEFAULT_MIXER.loop,
    micProcessing,
  };
}

export function loadMixer(store: KeyValueStore | undefined): MixerSettings {
  try {
    const saved = store?.getItem(MIXER_STORAGE_KEY);
    if (saved) return readMixer(JSON.parse(saved) as unknown);
  } catch {
    // A corrupt entry or storage refused: the defaults.
  }
  return DEFAULT_MIXER;
}

/** Saves the settings; false when storage refused them (they still apply to this page). */
export function saveMixer(store: KeyValueStore | undefined, settings: MixerSettings): boolean {
  if (store === undefined) return false;
  try {
    store.setItem(MIXER_STORAGE_KEY, JSON.stringify(settings));
    return true;
  } catch {
    return false;
  }
}

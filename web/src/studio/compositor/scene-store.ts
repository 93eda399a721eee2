import { DEFAULT_PROGRAM, readProgram, type Program } from './program.js';

/** Scenes, layout and overlays across reloads, in localStorage. Sans-DOM: any Storage-like object. */

export const SCENES_STORAGE_KEY = 'onair.scenes.v1';
export const LOGO_STORAGE_KEY = 'onair.logo.v1';
/**
 * The largest logo remembered, as a data URL (characters). localStorage holds about 5 MB per
 * origin and the destinations live there too; a logo is a small picture.
 */
export const MAX_LOGO_DATA_URL = 512 * 1024;

export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface SavedScenes {
  program: Program;
  /** The logo as a `data:image/…` URL, when one was remembered. */
  logo: string | undefined;
}

export function isStorableLogo(dataUrl: string): boolean {
  return dataUrl.length <= MAX_LOGO_DATA_URL && /^data:image\/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=]+$/.test(dataUrl);
}

/** What was saved, each part checked; anything missing or malformed gives the defaults. */
export function loadScenes(store: KeyValueStore | undefined): SavedScenes {
  let program = DEFAULT_PROGRAM;
  let logo: string | undefined;
  try {
    const saved = store?.getItem(SCENES_STORAGE_KEY);
    if (saved) program = readProgram(JSON.parse(saved) as unknown);
  } catch {
    // A corrupt entry: start from the defaults.
  }
  try {
    const url = store?.getItem(LOGO_STORAGE_KEY);
    if (url && isStorableLogo(url)) logo = url;
  } catch {
    // Storage refused (private mode): no logo.
  }
  return { program, logo };
}

/**
 * Saves the program, and the logo when it fits the cap (`null`: forget it; `undefined`: leave it).
 * Returns false when the logo was too large or storage refused it.
 */
export function saveScenes(store: KeyValueStore | undefined, program: Program, logo?: string | null): boolean {
  if (store === undefined) return false;
  try {
    store.setItem(SCENES_STORAGE_KEY, JSON.stringify(program));
    if (logo === null) store.removeItem(LOGO_STORAGE_KEY);
    else if (logo !== undefined) {
      if (!isStorableLogo(logo)) {
        store.removeItem(LOGO_STORAGE_KEY);
        return false;
      }
      store.setItem(LOGO_STORAGE_KEY, logo);
    }
    return true;
  } catch {
    return false;
  }
}

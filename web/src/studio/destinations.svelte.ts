import { joinStreamUrl } from '@onair/shared';
import { PLATFORMS } from './presets.js';

export interface DestinationEntry {
  id: string;
  /** A PLATFORMS id, or 'local' for the embedded server. */
  platform: string;
  server: string;
  key: string;
  rememberKey: boolean;
  enabled: boolean;
}

const STORAGE_KEY = 'onair.destinations.v1';

let counter = 0;
function newId(): string {
  counter++;
  return `d${Date.now().toString(36)}${counter}`;
}

/**
 * The studio's destinations, remembered in localStorage. A stream key is stored only when its
 * "remember key" box is ticked; otherwise it lives in this page only.
 */
export class Destinations {
  list = $state<DestinationEntry[]>([]);
  readonly #storage: Storage | undefined;

  constructor(storage: Storage | undefined = globalThis.localStorage) {
    this.#storage = storage;
  }

  /** Loads what was saved; with nothing saved, starts with the embedded server when there is one. */
  load(local: { url: string; key: string } | null): void {
    let saved: DestinationEntry[] = [];
    try {
      const raw = this.#storage?.getItem(STORAGE_KEY);
      if (raw) saved = (JSON.parse(raw) as DestinationEntry[]).filter((d) => typeof d.server === 'string' && typeof d.key === 'string');
    } catch {
      saved = [];
    }
    if (saved.length === 0 && local !== null) {
      saved = [{ id: newId(), platform: 'local', server: local.url, key: local.key, rememberKey: false, enabled: true }];
    }
    for (const d of saved) {
      d.id = newId();
      if (d.platform === 'local' && local !== null && d.key === '') {
        d.server = local.url;
        d.key = local.key;
      }
    }
    this.list = saved;
  }

  add(platform = 'custom'): DestinationEntry {
    const preset = PLATFORMS.find((p) => p.id === platform);
    const entry: DestinationEntry = { id: newId(), platform, server: preset?.server ?? '', key: '', rememberKey: false, enabled: true };
    this.list.push(entry);
    this.save();
    return entry;
  }

  remove(id: string): void {
    this.list = this.list.filter((d) => d.id !== id);
    this.save();
  }

  setPlatform(entry: DestinationEntry, platform: string, local: { url: string; key: string } | null): void {
    entry.platform = platform;
    const preset = PLATFORMS.find((p) => p.id === platform);
    if (preset !== undefined && preset.server !== '') entry.server = preset.server;
    if (platform === 'local' && local !== null) {
      entry.server = local.url;
      if (entry.key === '') entry.key = local.key;
    }
    this.save();
  }

  save(): void {
    const stored = this.list.map((d) => ({ ...d, key: d.rememberKey ? d.key : '' }));
    try {
      this.#storage?.setItem(STORAGE_KEY, JSON.stringify(stored));
    } catch {
      // Private mode or a full quota: the list still works for this page.
    }
  }

  /** The enabled, complete destinations as the bridge wants them. */
  forStart(): { id: string; url: string }[] {
    return this.list.filter((d) => d.enabled && d.server.trim() !== '').map((d) => ({ id: d.id, url: joinStreamUrl(d.server, d.key) }));
  }
}

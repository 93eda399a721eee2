import { MAX_DESTINATIONS, joinStreamUrl } from '@onair/shared';
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

/**
 * `server` without the secrets it holds when the Stream key field is empty: the last path segment
 * (with its query) is then the stream key, as the bridge splits a URL (bridge/src/rtmp/url.ts
 * parseRtmpUrl: an app, then the stream name after the last `/`), and `user:password@` is a
 * credential. Anything else comes back as it was.
 */
export function serverWithoutKey(server: string): string {
  const m = /^(rtmps?:\/\/)(?:[^/?#]*@)?([^/?#]*)(.*)$/i.exec(server.trim());
  if (m === null) return server;
  const [, scheme = '', authority = '', rest = ''] = m;
  const slash = rest.lastIndexOf('/');
  const named = slash > 0 && slash < rest.length - 1;
  return `${scheme}${authority}${named ? rest.slice(0, slash) : rest}`;
}

/** What localStorage gets of an entry: no key unless "Remember key" is ticked, wherever it was typed. */
export function storedEntry(d: DestinationEntry): DestinationEntry {
  if (d.rememberKey) return { ...d };
  const server = d.key.trim() === '' ? serverWithoutKey(d.server) : d.server.replace(/^(\s*rtmps?:\/\/)[^/?#]*@/i, '$1');
  return { ...d, server, key: '' };
}

/** Switches `entry` to a platform: its preset server, or the embedded server and its key for 'local'. */
export function applyPlatform(entry: DestinationEntry, platform: string, local: { url: string; key: string } | null): void {
  entry.platform = platform;
  const preset = PLATFORMS.find((p) => p.id === platform);
  if (preset !== undefined && preset.server !== '') entry.server = preset.server;
  if (platform === 'local' && local !== null) {
    entry.server = local.url;
    if (entry.key === '') entry.key = local.key;
  }
}

let counter = 0;
function newId(): string {
  counter++;
  return `d${Date.now().toString(36)}${counter}`;
}

/**
 * The studio's destinations, remembered in localStorage. A stream key is stored only when its
 * "remember key" box is ticked, whether it was typed in the key field or as the end of the server
 * URL; otherwise it lives in this page only.
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
    const stale = saved.some((d) => storedEntry(d).server !== d.server || storedEntry(d).key !== d.key);
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
    // Earlier versions stored a key typed into the server URL: this page keeps it, storage not.
    if (stale) this.save();
  }

  /** The bridge takes no more than MAX_DESTINATIONS in one session: the page offers no more. */
  get full(): boolean {
    return this.list.length >= MAX_DESTINATIONS;
  }

  /** A new destination, or undefined when the list is full. */
  add(platform = 'custom'): DestinationEntry | undefined {
    if (this.full) return undefined;
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
    applyPlatform(entry, platform, local);
    this.save();
  }

  save(): void {
    const stored = this.list.map(storedEntry);
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

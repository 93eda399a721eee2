import { storedEntry, type DestinationEntry } from '../studio/destinations.svelte.js';

const STORAGE_KEY = 'onair.restream.destinations.v1';
/** Destinations remembered per input name: the newest first, the oldest forgotten. */
const MAX_SAVED_PER_INPUT = 8;

let counter = 0;
export function newEntry(platform = 'custom', server = ''): DestinationEntry {
  counter++;
  return { id: `r${Date.now().toString(36)}${counter}`, platform, server, key: '', rememberKey: false, enabled: true };
}

/**
 * The destinations added in the Restream view, by input name (names outlive a bridge restart,
 * ids do not), so the form can be filled again with one click. Stored as the studio stores its
 * own (storedEntry): a stream key only when "Remember key" was ticked.
 */
export class SavedDestinations {
  byInput = $state.raw<Record<string, DestinationEntry[]>>({});
  readonly #storage: Storage | undefined;

  constructor(storage: Storage | undefined = globalThis.localStorage) {
    this.#storage = storage;
    try {
      const raw = this.#storage?.getItem(STORAGE_KEY);
      const parsed: unknown = raw ? JSON.parse(raw) : {};
      if (typeof parsed === 'object' && parsed !== null) {
        for (const [name, list] of Object.entries(parsed as Record<string, unknown>)) {
          if (!Array.isArray(list)) continue;
          const entries = (list as DestinationEntry[]).filter((d) => typeof d?.server === 'string' && typeof d.key === 'string' && typeof d.platform === 'string');
          if (entries.length > 0) this.byInput[name] = entries.map((d) => storedEntry({ ...d, id: newEntry().id, enabled: true }));
        }
      }
    } catch {
      this.byInput = {};
    }
  }

  for(inputName: string): DestinationEntry[] {
    return this.byInput[inputName] ?? [];
  }

  /** After a destination was added: remember it (its key only with Remember key). */
  remember(inputName: string, entry: DestinationEntry): void {
    const stored = storedEntry({ ...entry, id: newEntry().id });
    const others = this.for(inputName).filter((d) => d.server !== stored.server || d.key !== stored.key);
    this.byInput = { ...this.byInput, [inputName]: [stored, ...others].slice(0, MAX_SAVED_PER_INPUT) };
    this.#save();
  }

  forget(inputName: string, id: string): void {
    const rest = this.for(inputName).filter((d) => d.id !== id);
    const { [inputName]: _old, ...others } = this.byInput;
    this.byInput = rest.length > 0 ? { ...others, [inputName]: rest } : others;
    this.#save();
  }

  #save(): void {
    try {
      this.#storage?.setItem(STORAGE_KEY, JSON.stringify(this.byInput));
    } catch {
      // Private mode or a full quota: the list still works for this page.
    }
  }
}

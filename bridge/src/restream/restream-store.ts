import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { MAX_RESTREAM_DESTINATIONS, MAX_RESTREAM_INPUTS, OnairError } from '@onair/shared';

/** One input as kept across restarts. Holds stream keys: the file is readable by its owner only. */
export interface StoredInput {
  id: string;
  name: string;
  /** Ingest inputs: the key an encoder publishes with. */
  key?: string;
  /** URL inputs: the source, key included. */
  source?: string;
  destinations: { id: string; url: string; autoStart: boolean }[];
}

interface StoreFile {
  version: 1;
  inputs: readonly StoredInput[];
}

export const STORE_FILE = 'restream.json';

/** `$XDG_CONFIG_HOME/onair`, else `~/.config/onair` (`onair serve --config-dir` overrides it). */
export function defaultConfigDir(env: NodeJS.ProcessEnv): string {
  const xdg = env['XDG_CONFIG_HOME'];
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.config'), 'onair');
}

function isStoredInput(v: unknown): v is StoredInput {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  const str = (x: unknown): boolean => typeof x === 'string' && x.length > 0 && x.length <= 4096;
  if (!str(o['id']) || typeof o['name'] !== 'string') return false;
  if ((o['key'] === undefined) === (o['source'] === undefined)) return false;
  if (o['key'] !== undefined && !str(o['key'])) return false;
  if (o['source'] !== undefined && !str(o['source'])) return false;
  const ds = o['destinations'];
  return (
    Array.isArray(ds) &&
    ds.length <= MAX_RESTREAM_DESTINATIONS &&
    ds.every((d: unknown) => typeof d === 'object' && d !== null && str((d as Record<string, unknown>)['id']) && str((d as Record<string, unknown>)['url']) && typeof (d as Record<string, unknown>)['autoStart'] === 'boolean')
  );
}

/**
 * The restream setup (inputs, ingest keys, destinations with their keys) in one small JSON file
 * in the user's config directory, mode 0600, replaced atomically on every change so a crash
 * never leaves half a file. Writes are serialised; the last state always wins.
 */
export class RestreamStore {
  readonly path: string;
  readonly #dir: string;
  #writing: Promise<void> = Promise.resolve();

  constructor(dir: string) {
    this.#dir = dir;
    this.path = join(dir, STORE_FILE);
  }

  /** The stored inputs; none when there is no file yet. A file that is not ours is an error, never overwritten silently. */
  async load(): Promise<StoredInput[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new OnairError('CONFIG_UNREADABLE', `cannot read ${this.path}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new OnairError('CONFIG_UNREADABLE', `${this.path} is not JSON: fix or remove it`);
    }
    const file = parsed as Partial<StoreFile>;
    if (file.version !== 1 || !Array.isArray(file.inputs) || file.inputs.length > MAX_RESTREAM_INPUTS || !file.inputs.every(isStoredInput)) {
      throw new OnairError('CONFIG_UNREADABLE', `${this.path} is not a restream setup this version understands: fix or remove it`);
    }
    return file.inputs;
  }

  /** Replaces the file with `inputs`; resolves once it is on disk. */
  save(inputs: readonly StoredInput[]): Promise<void> {
    const text = `${JSON.stringify({ version: 1, inputs } satisfies StoreFile, null, 2)}\n`;
    const next = this.#writing.then(async () => {
      await mkdir(this.#dir, { recursive: true, mode: 0o700 });
      const temp = `${this.path}.${process.pid}.tmp`;
      await writeFile(temp, text, { mode: 0o600 });
      await rename(temp, this.path);
    });
    this.#writing = next.catch(() => undefined);
    return next;
  }
}

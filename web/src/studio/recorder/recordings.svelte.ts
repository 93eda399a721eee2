import { playableLength } from './fmp4-recording.js';
import { isRecordingName, recordingsDir, UNFINISHED_SUFFIX } from './opfs.js';

/** A recording kept in the origin private file system. */
export interface StoredRecording {
  name: string;
  bytes: number;
  /** Its recording never ended cleanly (the tab closed, the browser crashed, the disk filled). */
  unfinished: boolean;
  modified: number;
}

interface SaveFilePickerWindow {
  showSaveFilePicker?: (options: { suggestedName: string; types: { description: string; accept: Record<string, string[]> }[] }) => Promise<FileSystemFileHandle>;
}

/** Room the browser gives this site, for the UI: free bytes, or undefined when unknown. */
export async function freeStorage(): Promise<number | undefined> {
  const { usage, quota } = (await navigator.storage?.estimate?.()) ?? {};
  return usage !== undefined && quota !== undefined ? quota - usage : undefined;
}

/**
 * The recordings on disk, on the page: listed at load (an unfinished one is what a closed tab
 * or a crash left: its whole fragments make a playable file), saved where the user chooses
 * (`showSaveFilePicker`, else a download of the OPFS file), deleted to free the room.
 */
export class Recordings {
  list = $state.raw<StoredRecording[]>([]);
  error = $state<string | null>(null);
  /** The name being saved. */
  saving = $state<string | null>(null);
  /** The recording being written now: not offered until it ends. */
  active: string | undefined;
  readonly supported = typeof navigator !== 'undefined' && typeof navigator.storage?.getDirectory === 'function';

  /** Lists what is stored, leaving out the recording being written now. */
  async refresh(): Promise<void> {
    const active = this.active;
    if (!this.supported) return;
    try {
      const dir = await recordingsDir();
      const names = new Set<string>();
      for await (const key of dir.keys()) names.add(key);
      const list: StoredRecording[] = [];
      for (const name of names) {
        if (!isRecordingName(name) || name === active) continue;
        const file = await (await dir.getFileHandle(name)).getFile().catch(() => undefined);
        // Another tab is writing it (its sync access handle holds the file).
        if (file === undefined) continue;
        list.push({ name, bytes: file.size, unfinished: names.has(name + UNFINISHED_SUFFIX), modified: file.lastModified });
      }
      this.list = list.sort((a, b) => b.modified - a.modified);
    } catch (err) {
      this.error = `recordings: ${(err as Error).message}`;
    }
  }

  /** Offers the file to the user: a save dialog where there is one (then it leaves OPFS), else a download. */
  async save(r: StoredRecording): Promise<void> {
    this.error = null;
    this.saving = r.name;
    try {
      const dir = await recordingsDir();
      const file = await (await dir.getFileHandle(r.name)).getFile();
      // An unfinished file may end inside a fragment: offer it up to its last whole one.
      const length = r.unfinished ? await playableLength(file.size, async (offset, n) => new Uint8Array(await file.slice(offset, offset + n).arrayBuffer())) : file.size;
      if (length === 0) throw new Error('nothing playable was written before it stopped');
      const blob = file.slice(0, length, 'video/mp4');
      const picker = (globalThis as SaveFilePickerWindow).showSaveFilePicker;
      if (picker !== undefined) {
        let handle: FileSystemFileHandle;
        try {
          handle = await picker({ suggestedName: r.name, types: [{ description: 'MP4 video', accept: { 'video/mp4': ['.mp4'] } }] });
        } catch (err) {
          if ((err as Error).name === 'AbortError') return;
          throw err;
        }
        await blob.stream().pipeTo(await handle.createWritable());
        await this.discard(r);
      } else {
        const url = URL.createObjectURL(blob);
        const a = document.createElement('a');
        a.href = url;
        a.download = r.name;
        a.click();
        // The download holds the blob once it has started.
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
      }
    } catch (err) {
      this.error = `saving ${r.name}: ${(err as Error).message}`;
    } finally {
      this.saving = null;
    }
  }

  async discard(r: StoredRecording): Promise<void> {
    try {
      const dir = await recordingsDir();
      await dir.removeEntry(r.name);
      await dir.removeEntry(r.name + UNFINISHED_SUFFIX).catch(() => undefined);
    } catch (err) {
      this.error = `deleting ${r.name}: ${(err as Error).message}`;
    }
    await this.refresh();
  }
}

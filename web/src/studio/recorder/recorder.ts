import { Fmp4Recording, type RecordingFormat } from './fmp4-recording.js';
import { isRecordingName, recordingsDir, UNFINISHED_SUFFIX } from './opfs.js';

export interface RecorderLimits {
  /** Below this much free quota the UI warns. */
  warnFreeBytes: number;
  /** Below this much the recording stops, before the browser refuses a write. */
  stopFreeBytes: number;
  /** How often the quota is read again, ms. */
  checkEveryMs: number;
}

export const DEFAULT_RECORDER_LIMITS: RecorderLimits = { warnFreeBytes: 512 * 1024 * 1024, stopFreeBytes: 64 * 1024 * 1024, checkEveryMs: 2000 };

export interface RecorderStatus {
  name: string;
  bytes: number;
  durationMs: number;
  videoFrames: number;
  /** Free space left in the origin's quota, bytes, as last read. */
  freeBytes: number;
  /** The quota is near: the UI says so. */
  quotaLow: boolean;
}

export interface RecorderEvents {
  /** The recording stopped by itself (disk full, a write failed): what happened, in words. */
  fail(message: string): void;
}

/**
 * One recording in the encode worker: the encoders' chunks as fragmented MP4 (`Fmp4Recording`)
 * appended to a file in the origin private file system through a sync access handle, flushed
 * after every fragment, so what is on disk is a playable file at any moment (the File System
 * Access API's writable only commits on close). A marker file beside it says it is unfinished
 * until it ends cleanly; the page offers both kinds on its next load.
 */
export class Recorder {
  readonly name: string;
  readonly #mp4: Fmp4Recording;
  readonly #handle: FileSystemSyncAccessHandle;
  readonly #dir: FileSystemDirectoryHandle;
  readonly #limits: RecorderLimits;
  readonly #events: RecorderEvents;
  #at = 0;
  #free = Number.POSITIVE_INFINITY;
  #checked = 0;
  #closed = false;

  private constructor(name: string, dir: FileSystemDirectoryHandle, handle: FileSystemSyncAccessHandle, mp4: Fmp4Recording, limits: RecorderLimits, events: RecorderEvents) {
    this.name = name;
    this.#dir = dir;
    this.#handle = handle;
    this.#mp4 = mp4;
    this.#limits = limits;
    this.#events = events;
  }

  /** Opens `name` for writing (in a dedicated worker: sync access handles exist only there). */
  static async open(name: string, format: RecordingFormat, avcC: Uint8Array | undefined, events: RecorderEvents, limits: RecorderLimits = DEFAULT_RECORDER_LIMITS): Promise<Recorder> {
    if (!isRecordingName(name)) throw new Error(`bad recording name ${JSON.stringify(name)}`);
    if (typeof FileSystemFileHandle === 'undefined' || !('createSyncAccessHandle' in FileSystemFileHandle.prototype)) {
      throw new Error('this browser cannot write files in the background (no OPFS sync access handle)');
    }
    const dir = await recordingsDir();
    await dir.getFileHandle(name + UNFINISHED_SUFFIX, { create: true });
    const file = await dir.getFileHandle(name, { create: true });
    const handle = await file.createSyncAccessHandle();
    handle.truncate(0);
    const r = new Recorder(name, dir, handle, new Fmp4Recording(format, avcC), limits, events);
    await r.#readQuota();
    if (r.#free < limits.stopFreeBytes) {
      await r.close(true);
      throw new Error(`not enough room to record: ${Math.round(r.#free / 1e6)} MB left in this site's storage`);
    }
    return r;
  }

  status(): RecorderStatus {
    return {
      name: this.name,
      bytes: this.#at,
      durationMs: Math.round(this.#mp4.durationUs / 1000),
      videoFrames: this.#mp4.videoFrames,
      freeBytes: this.#free,
      quotaLow: this.#free < this.#limits.warnFreeBytes,
    };
  }

  video(data: Uint8Array, key: boolean, ptsUs: number, avcC: Uint8Array | undefined): void {
    if (!this.#closed) this.#write(this.#mp4.video(data, key, ptsUs, avcC));
  }

  audio(data: Uint8Array, timestampUs: number): void {
    if (!this.#closed) this.#write(this.#mp4.audio(data, timestampUs));
  }

  /** Ends the recording: what is held goes to disk, the file is closed and marked finished (unless `discard`, which removes it). */
  async close(discard = false): Promise<void> {
    if (this.#closed) return;
    if (!discard) this.#write(this.#mp4.finish());
    this.#closed = true;
    this.#handle.close();
    await this.#dir.removeEntry(this.name + UNFINISHED_SUFFIX).catch(() => undefined);
    if (discard) await this.#dir.removeEntry(this.name).catch(() => undefined);
  }

  #write(parts: Uint8Array[]): void {
    if (parts.length === 0 || this.#closed) return;
    try {
      for (const p of parts) {
        const n = this.#handle.write(p, { at: this.#at });
        if (n !== p.length) throw new Error(`wrote ${n} of ${p.length} bytes`);
        this.#at += n;
      }
      this.#handle.flush();
    } catch (err) {
      // A full disk ends the recording, never the broadcast: what was flushed before stays playable.
      const quota = err instanceof DOMException && err.name === 'QuotaExceededError';
      this.#stop(quota ? "the recording stopped: this site's storage is full" : `the recording stopped: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    const now = performance.now();
    if (now - this.#checked >= this.#limits.checkEveryMs) {
      this.#checked = now;
      this.#readQuota().then(
        () => {
          if (this.#free < this.#limits.stopFreeBytes) this.#stop(`the recording stopped: only ${Math.round(this.#free / 1e6)} MB left in this site's storage`);
        },
        () => undefined,
      );
    }
  }

  async #readQuota(): Promise<void> {
    const { usage, quota } = await navigator.storage.estimate();
    if (usage !== undefined && quota !== undefined) this.#free = quota - usage;
  }

  #stop(message: string): void {
    if (this.#closed) return;
    // The file keeps what was flushed; no final write is tried.
    this.#closed = true;
    try {
      this.#handle.close();
    } catch {
      // Already closed with the worker.
    }
    // The marker stays: the page trims a torn last fragment when the file is saved.
    this.#events.fail(message);
  }
}

/** Where recordings live in the origin private file system, shared by the worker and the page. */
export const RECORDINGS_DIR = 'recordings';
/** Beside a recording while it is being written; gone once it ended cleanly. */
export const UNFINISHED_SUFFIX = '.recording';

export async function recordingsDir(): Promise<FileSystemDirectoryHandle> {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle(RECORDINGS_DIR, { create: true });
}

/** A file name for a recording started at `at`: `onair-2026-11-29_10-15-02.mp4`. */
export function recordingName(at: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `onair-${at.getFullYear()}-${p(at.getMonth() + 1)}-${p(at.getDate())}_${p(at.getHours())}-${p(at.getMinutes())}-${p(at.getSeconds())}.mp4`;
}

/** Only names this studio makes: a name from a message never reaches outside the directory. */
export function isRecordingName(name: string): boolean {
  return /^onair-[0-9_-]{19}(-\d+)?\.mp4$/.test(name);
}

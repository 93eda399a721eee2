import { spawnTracked } from '../../bridge/test/harness/proc.js';

/**
 * Plays `url` with ffmpeg into `file` (`-c copy -copyts`: packets and timestamps as the server
 * sent them). RTMP servers do not end a player when the publisher leaves, so ffmpeg stops on its
 * read timeout, `idleMs` after the last byte. Resolves when the file is complete.
 */
export function ffmpegPull(url: string, file: string, idleMs: number): Promise<void> {
  const child = spawnTracked('ffmpeg', [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
    '-rw_timeout', String(idleMs * 1000),
    '-i', url, '-map', '0', '-c', 'copy', '-copyts', '-f', 'flv', file,
  ]);
  const done = child.exited.then((exit) => {
    // The read timeout ends ffmpeg with an error status after a complete file.
    if (exit.signal !== null) throw new Error(`ffmpeg pulling ${url} was killed (${exit.signal}):\n${child.tail()}`);
  });
  done.catch(() => undefined);
  return done;
}

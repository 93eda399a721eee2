import { runChecked } from './proc.js';

export interface FfmpegPublishOptions {
  /** `-re`: send at the file's pace instead of as fast as possible. */
  realtime?: boolean;
  /** `-copyts`: keep the file's timestamps instead of starting them at 0. */
  copyts?: boolean;
}

/** Publishes an FLV with `ffmpeg -c copy` (an independent publisher); resolves when ffmpeg exits 0. */
export async function ffmpegPublish(file: string, url: string, options: FfmpegPublishOptions = {}): Promise<void> {
  await runChecked('ffmpeg', [
    '-hide_banner', '-nostdin', '-loglevel', 'error',
    ...(options.realtime === true ? ['-re'] : []),
    ...(options.copyts === true ? ['-copyts'] : []),
    '-i', file, '-map', '0', '-c', 'copy', '-f', 'flv', url,
  ], { timeoutMs: 60_000 });
}

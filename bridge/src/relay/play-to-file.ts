import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import { flvHeader, flvTag } from '@onair/shared';
import { RtmpPlayer } from '../rtmp/player.js';
import { redactUrl } from '../rtmp/url.js';

export interface PlaySummary {
  url: string;
  tags: number;
  bytes: number;
}

async function write(out: Writable, bytes: Uint8Array): Promise<void> {
  if (!out.write(bytes)) await once(out, 'drain');
}

/**
 * Pulls a live stream into FLV on `path` (stdout when undefined) until the publisher ends it, or
 * until `idleEndMs` pass without media once media has started (0: never).
 * The tags are written as the server sent them (the player already gives metadata in the file
 * form, `onMetaData` without the RTMP `@setDataFrame` wrapper).
 */
export async function playToStream(url: string, path: string | undefined, idleEndMs = 0): Promise<PlaySummary> {
  const summary: PlaySummary = { url: redactUrl(url), tags: 0, bytes: 0 };
  const player = await RtmpPlayer.connect(url, idleEndMs > 0 ? { idleEndMs } : {});
  const out: Writable = path === undefined ? process.stdout : createWriteStream(path);
  const stop = (): void => player.destroy();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // A reader that goes away (`onair play URL | ffprobe -`) ends the session, not the process.
  out.on('error', stop);
  try {
    await write(out, flvHeader({ audio: true, video: true }));
    for await (const tag of player) {
      await write(out, flvTag(tag));
      summary.tags++;
      summary.bytes += tag.data.length;
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    player.destroy();
    if (out !== process.stdout) {
      out.end();
      await once(out, 'close');
    }
  }
  return summary;
}

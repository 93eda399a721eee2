import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { OnairError, flvHeader, flvTag } from '@onair/shared';
import { RtmpPlayer } from '../rtmp/player.js';
import { redactUrl } from '../rtmp/url.js';

export interface PlaySummary {
  url: string;
  tags: number;
  bytes: number;
}

function outputError(path: string | undefined, err: unknown): OnairError {
  const code = (err as { code?: string }).code;
  const why = err instanceof Error ? err.message : String(err);
  if (path === undefined) {
    return new OnairError('OUTPUT_CLOSED', code === 'EPIPE' ? 'stdout was closed by the reader' : `cannot write to stdout: ${why}`, { cause: err });
  }
  return new OnairError('OUTPUT_UNWRITABLE', `cannot write ${path}: ${why}`, { cause: err });
}

async function openFile(path: string): Promise<Writable> {
  const out = createWriteStream(path);
  try {
    await once(out, 'open');
  } catch (err) {
    throw outputError(path, err);
  }
  return out;
}

/**
 * Pulls a live stream into FLV on `path` (stdout when undefined) until the publisher ends it, or
 * until `idleEndMs` pass without media once media has started (0: never).
 * The tags are written as the server sent them (the player already gives metadata in the file
 * form, `onMetaData` without the RTMP `@setDataFrame` wrapper). Rejects with INTERRUPTED on
 * SIGINT/SIGTERM and OUTPUT_CLOSED / OUTPUT_UNWRITABLE when the output fails; what was written
 * before stays a valid FLV file.
 */
export interface PlayOptions {
  /** End after this long without media once media has started (0: never). */
  idleEndMs?: number;
  connectTimeoutMs?: number;
}

export async function playToStream(url: string, path: string | undefined, options: PlayOptions = {}): Promise<PlaySummary> {
  const { idleEndMs = 0, connectTimeoutMs } = options;
  const summary: PlaySummary = { url: redactUrl(url), tags: 0, bytes: 0 };
  // The file first: a bad path should not cost a connection to the server.
  const out: Writable = path === undefined ? process.stdout : await openFile(path);
  const abort = new AbortController();
  let failure: OnairError | undefined;
  const stop = (err: OnairError): void => {
    failure ??= err;
    abort.abort();
  };
  const onSignal = (): void => stop(new OnairError('INTERRUPTED', `${summary.url}: interrupted`));
  // A reader that goes away (`onair play URL | ffprobe -`) ends the session, not the process.
  const onOutputError = (err: unknown): void => stop(outputError(path, err));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  out.on('error', onOutputError);
  let player: RtmpPlayer | undefined;
  try {
    player = await RtmpPlayer.connect(url, {
      signal: abort.signal,
      ...(idleEndMs > 0 ? { idleEndMs } : {}),
      ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
    });
    await write(out, flvHeader({ audio: true, video: true }), abort.signal);
    for await (const tag of player) {
      await write(out, flvTag(tag), abort.signal);
      summary.tags++;
      summary.bytes += tag.data.length;
    }
    // The stream ended: let the goodbye (deleteStream) go out and the server close.
    await player.closed.catch(() => undefined);
  } catch (err) {
    // Aborting surfaces as ABORTED from the session; the reason we aborted says more.
    throw failure ?? err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    player?.destroy();
    if (out !== process.stdout) {
      out.end();
      await finished(out).catch(() => undefined);
    }
  }
  if (failure) throw failure;
  return summary;
}

/** Writes with backpressure; gives up (the caller reports why) when `signal` aborts. */
async function write(out: Writable, bytes: Uint8Array, signal: AbortSignal): Promise<void> {
  if (signal.aborted || out.destroyed) throw new OnairError('ABORTED', 'output stopped');
  if (!out.write(bytes)) await once(out, 'drain', { signal });
}

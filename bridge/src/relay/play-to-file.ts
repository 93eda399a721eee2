import { createWriteStream, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { ByteWriter, FLV_PREVIOUS_TAG_SIZE, FLV_TAG_HEADER_SIZE, OnairError, flvHeader, writeFlvTagInto, type FlvTag } from '@onair/shared';
import { READ_BATCH_MS, RtmpPlayer } from '../rtmp/player.js';
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

/** Where the FLV goes. `write` throws (or rejects) with why the output failed or stopped. */
interface FlvOutput {
  /** Returns a promise only when the caller must wait (backpressure). */
  write(bytes: Uint8Array): Promise<void> | undefined;
  /** write() is done with the bytes when it returns: the caller may reuse them. */
  readonly inPlace: boolean;
  close(): Promise<void>;
}

/**
 * A regular file or a character device (`-o /dev/null`) is written in place, on this thread:
 * a write that lands in the page cache takes microseconds, while a write through libuv's
 * thread pool costs two thread wake-ups, which at a live stream's few writes a second were most
 * of `onair play`'s CPU. Anything else (a FIFO, a socket) can block, and gets a stream.
 */
async function openFile(path: string, signal: AbortSignal, onError: (err: unknown) => void): Promise<FlvOutput> {
  let handle: FileHandle | undefined;
  let inPlace: boolean;
  try {
    handle = await open(path, 'w');
    const stat = await handle.stat();
    inPlace = stat.isFile() || stat.isCharacterDevice();
  } catch (err) {
    await handle?.close().catch(() => undefined);
    throw outputError(path, err);
  }
  if (!inPlace) return streamOutput(createWriteStream('', { fd: handle }), signal, onError);
  const fd = handle.fd;
  return {
    write: (bytes) => {
      try {
        for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at);
      } catch (err) {
        throw outputError(path, err);
      }
      return undefined;
    },
    inPlace: true,
    close: () => handle.close(),
  };
}

/**
 * A stream written with backpressure; a write gives up (the caller reports why) when `signal`
 * aborts. `onError` hears the stream's errors (a reader that went away: EPIPE).
 */
function streamOutput(out: Writable, signal: AbortSignal, onError: (err: unknown) => void): FlvOutput {
  out.on('error', onError);
  return {
    write: (bytes) => {
      if (signal.aborted || out.destroyed) throw new OnairError('ABORTED', 'output stopped');
      return out.write(bytes) ? undefined : once(out, 'drain', { signal }).then(() => undefined);
    },
    inPlace: false,
    close: async () => {
      if (out === process.stdout) return;
      out.end();
      await finished(out).catch(() => undefined);
    },
  };
}

/**
 * The tags in FLV file form, in one buffer: one write for what one or more socket reads
 * brought. `reuse` (for an output that writes in place) serves every batch; else each batch
 * gets its own, which a stream may hold until it drains.
 */
function flvTags(tags: FlvTag[], reuse: ByteWriter | undefined): Uint8Array {
  let w = reuse?.reset();
  if (w === undefined) {
    let size = 0;
    for (const tag of tags) size += FLV_TAG_HEADER_SIZE + tag.data.length + FLV_PREVIOUS_TAG_SIZE;
    w = new ByteWriter(size);
  }
  for (const tag of tags) writeFlvTagInto(w, tag);
  return w.finish();
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
  const abort = new AbortController();
  let failure: OnairError | undefined;
  const stop = (err: OnairError): void => {
    failure ??= err;
    abort.abort();
  };
  // A reader that goes away (`onair play URL | ffprobe -`) ends the session, not the process.
  const onOutputError = (err: unknown): void => stop(outputError(path, err));
  // The file first: a bad path should not cost a connection to the server.
  const out = path === undefined ? streamOutput(process.stdout, abort.signal, onOutputError) : await openFile(path, abort.signal, onOutputError);
  const onSignal = (): void => stop(new OnairError('INTERRUPTED', `${summary.url}: interrupted`));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let player: RtmpPlayer | undefined;
  try {
    player = await RtmpPlayer.connect(url, {
      signal: abort.signal,
      readBatchMs: READ_BATCH_MS,
      ...(idleEndMs > 0 ? { idleEndMs } : {}),
      ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
    });
    await out.write(flvHeader({ audio: true, video: true }));
    const reuse = out.inPlace ? new ByteWriter(64 * 1024) : undefined;
    for await (const tags of player.batches()) {
      const pending = out.write(flvTags(tags, reuse));
      if (pending) await pending;
      summary.tags += tags.length;
      for (const tag of tags) summary.bytes += tag.data.length;
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
    await out.close();
  }
  if (failure) throw failure;
  return summary;
}

import { OnairError, type DestinationState, type DestinationStatus } from '@onair/shared';
import { READ_BATCH_MS, RtmpPlayer } from '../rtmp/player.js';
import { redactUrl } from '../rtmp/url.js';
import { pullInput } from './input-pull.js';
import { Restream } from './restream.js';

export interface RestreamCommandOptions {
  /** Wait through the input's ends and failures instead of finishing with the first end. */
  follow: boolean;
  /** How long destinations stay published while the input is away. */
  graceMs: number;
  /** Without follow: the input has ended after this long without media once it started (0: never). */
  idleEndMs: number;
  connectTimeoutMs: number;
  /** A destination's state changed (its URL is redacted). */
  onEvent: (status: DestinationStatus) => void;
  /** Lines about the input. */
  log: (line: string) => void;
}

/**
 * `onair restream SRC DEST…`: plays SRC and relays it to every destination at once, payloads
 * byte for byte. Without `follow` it finishes when the input ends (each destination unpublishes)
 * and rejects when the input cannot be played; with it, it waits through input drops (grace
 * period, then unpublish and publish again when the input is back) until SIGINT/SIGTERM.
 * A destination refused for good fails alone; when every destination failed it finishes early.
 * Resolves with each destination's last status, in the order given, and whether a signal ended it.
 */
export async function runRestream(source: string, urls: readonly string[], opts: RestreamCommandOptions): Promise<{ results: DestinationStatus[]; interrupted: boolean }> {
  const stop = new AbortController();
  let interrupted = false;
  const seen = new Map<string, DestinationState>();
  const restream: Restream = new Restream({
    name: redactUrl(source),
    graceMs: opts.graceMs,
    policy: { isAllowed: () => undefined, connectOptions: () => ({ connectTimeoutMs: opts.connectTimeoutMs }) },
    log: opts.log,
    onChange: () => {
      const statuses = restream.results();
      for (const s of statuses) {
        if (seen.get(s.id) === s.state) continue;
        seen.set(s.id, s.state);
        opts.onEvent(s);
      }
      // Nothing left to relay to: stop reading.
      if (statuses.length > 0 && statuses.every((s) => s.state === 'failed')) stop.abort();
    },
  });
  urls.forEach((url, i) => restream.add(String(i), url, true));
  // Connect now: a wrong key shows before the input starts, and nothing waits on a handshake.
  restream.startAll();
  const onSignal = (): void => {
    interrupted = true;
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await pullInput(restream, {
      shown: redactUrl(source),
      follow: opts.follow,
      signal: stop.signal,
      log: opts.log,
      connect: (signal) =>
        RtmpPlayer.connect(source, {
          signal,
          readBatchMs: READ_BATCH_MS,
          connectTimeoutMs: opts.connectTimeoutMs,
          ...(!opts.follow && opts.idleEndMs > 0 ? { idleEndMs: opts.idleEndMs } : {}),
        }),
    });
    if (restream.state === 'waiting' && !stop.signal.aborted) throw new OnairError('INPUT_EMPTY', `${redactUrl(source)}: the stream ended before any media came`);
    // A destination still trying to connect when the input ended never got the stream: it failed.
    const unfinished = new Map(restream.results().filter((s) => s.state === 'retrying' || s.state === 'connecting').map((s) => [s.id, s.reason ?? 'never connected']));
    await restream.close();
    const results = restream.results().map((s): DestinationStatus => {
      const reason = unfinished.get(s.id);
      return reason === undefined ? s : { ...s, state: 'failed', reason };
    });
    return { results, interrupted };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    restream.destroy();
  }
}

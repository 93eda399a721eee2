import { setTimeout as sleep } from 'node:timers/promises';
import { backoffMs, capReason, OnairError, type Backoff, type FlvTag } from '@onair/shared';
import type { Restream } from './restream.js';

/** A play session of the input: tags until the publisher ends, then the iteration finishes. */
export interface InputSource extends AsyncIterable<FlvTag> {
  destroy(err?: Error): void;
}

export interface InputPullOptions {
  /** Opens a play session of the input (RtmpPlayer.connect with the policy's address checks). */
  connect: (signal: AbortSignal) => Promise<InputSource>;
  /** The input, key redacted, for messages. */
  shown: string;
  /**
   * Keep playing through the input's ends and failures (reconnect with `retry`); without it the
   * pull resolves when the input ends and rejects when it cannot be played or fails.
   */
  follow: boolean;
  /** Media silence after which the input counts as away (its connection may still be open); DEFAULT_SILENCE_MS unless set. */
  silenceMs?: number;
  /** Reconnects to the input; DEFAULT_INPUT_RETRY unless set. */
  retry?: Backoff;
  signal: AbortSignal;
  log?: (line: string) => void;
}

export const DEFAULT_SILENCE_MS = 1500;
/** Reconnects to the input: quick at first (an encoder coming back), then every 5 s. */
export const DEFAULT_INPUT_RETRY: Backoff = { firstMs: 250, baseMs: 1000, factor: 1.5, maxMs: 5000, jitter: 0.1 };

function describe(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return capReason(err instanceof OnairError ? `${text} [${err.code}]` : text);
}

/**
 * Feeds `restream` from its input: one play session at a time, every tag pushed as it arrives,
 * `away()` when the session ends, fails or goes silent. Resolves when the input ended (without
 * `follow`) or `signal` aborted; rejects when the input cannot be played or fails (without `follow`).
 */
export async function pullInput(restream: Restream, opts: InputPullOptions): Promise<void> {
  const { signal } = opts;
  const silenceMs = opts.silenceMs ?? DEFAULT_SILENCE_MS;
  const retry = opts.retry ?? DEFAULT_INPUT_RETRY;
  let attempt = 0;
  let lastTagAt = 0;
  let silent = false;
  const watchdog = setInterval(() => {
    if (!silent && lastTagAt > 0 && performance.now() - lastTagAt >= silenceMs) {
      silent = true;
      restream.away(`no media from the input for ${(silenceMs / 1000).toFixed(1)} s`);
    }
  }, Math.max(50, Math.min(500, silenceMs / 4)));
  watchdog.unref();
  try {
    while (!signal.aborted) {
      let source: InputSource;
      try {
        source = await opts.connect(signal);
      } catch (err) {
        if (signal.aborted) return;
        if (!opts.follow) throw err;
        restream.away(`cannot play the input: ${describe(err)}`);
        await pause(backoffMs(attempt++, retry), signal);
        continue;
      }
      const onAbort = (): void => source.destroy();
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        for await (const tag of source) {
          lastTagAt = performance.now();
          silent = false;
          attempt = 0;
          restream.push(tag);
        }
        if (signal.aborted) return;
        restream.away('the input ended its stream');
        if (!opts.follow) return;
        opts.log?.(`${opts.shown}: the input ended; waiting for it to come back`);
      } catch (err) {
        if (signal.aborted) return;
        if (!opts.follow) throw err;
        restream.away(`the input failed: ${describe(err)}`);
        opts.log?.(`${opts.shown}: the input failed (${describe(err)}); reconnecting`);
      } finally {
        signal.removeEventListener('abort', onAbort);
        source.destroy();
      }
      lastTagAt = 0;
      await pause(backoffMs(attempt++, retry), signal);
    }
  } finally {
    clearInterval(watchdog);
  }
}

async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal }).catch(() => undefined);
}

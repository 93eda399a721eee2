import type { RestreamState } from '@onair/shared';
import type { WatchMetrics } from '../watch/watch-service.js';
import type { EventLog } from './event-log.js';

/** How often the watch and restream state is read for the log. */
export const SAMPLE_EVERY_MS = 2000;
/** Viewer counts are logged at most this often: a summary, not a line per viewer. */
export const VIEWER_SUMMARY_EVERY_MS = 10_000;

export interface SampledSources {
  watch?: () => WatchMetrics;
  restream?: () => RestreamState;
}

/**
 * Log events read from state instead of told by its owners: viewers (a summary when the counts
 * changed, at most every VIEWER_SUMMARY_EVERY_MS, so ten thousand joins are not ten thousand
 * lines) and restream inputs and destinations (each change of state, seen within SAMPLE_EVERY_MS).
 * Returns the stop.
 */
export function startSampledEvents(src: SampledSources, log: EventLog): () => void {
  let viewers = { ws: 0, flv: 0 };
  let viewersLoggedAt = 0;
  const states = new Map<string, string>();
  const changed = (key: string, state: string): boolean => {
    if (states.get(key) === state) return false;
    states.set(key, state);
    return true;
  };
  const sample = (): void => {
    const watch = src.watch?.();
    if (watch !== undefined && (watch.viewers.ws !== viewers.ws || watch.viewers.flv !== viewers.flv) && Date.now() - viewersLoggedAt >= VIEWER_SUMMARY_EVERY_MS) {
      log.event('watch.viewers', { ws: watch.viewers.ws, flv: watch.viewers.flv, change: watch.viewers.ws + watch.viewers.flv - viewers.ws - viewers.flv, streams: watch.streams.length, upstreams: watch.upstreams });
      viewers = { ...watch.viewers };
      viewersLoggedAt = Date.now();
    }
    const restream = src.restream?.();
    if (restream === undefined) return;
    const seen = new Set<string>();
    for (const input of restream.inputs) {
      seen.add(input.id);
      if (changed(input.id, input.state)) log.event('restream.input', { input: input.id, name: input.name, state: input.state, reason: input.reason });
      for (const d of input.destinations) {
        const key = `${input.id}/${d.id}`;
        seen.add(key);
        if (changed(key, d.state)) log.event('restream.destination', { input: input.id, destination: d.id, url: d.url, state: d.state, reason: d.reason });
      }
    }
    for (const key of states.keys()) {
      if (seen.has(key)) continue;
      states.delete(key);
      if (!key.includes('/')) log.event('restream.input', { input: key, state: 'removed' });
    }
  };
  const timer = setInterval(sample, SAMPLE_EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}

import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { METRICS_PATH, type DestinationState, type RestreamInputState, type RestreamState } from '@onair/shared';
import type { LocalRtmpStatus } from '../local-rtmp/local-rtmp.js';
import type { StudioStats } from '../studio/studio-sessions.js';
import type { WatchCounters, WatchMetrics } from '../watch/watch-service.js';
import { countBy, MetricsRegistry, PROMETHEUS_CONTENT_TYPE } from './metrics.js';
import type { Verdict } from './policy.js';

/** Alive while the process runs: always 200. */
export const HEALTHZ_PATH = '/healthz';
/** Accepting work: 200, or 503 while draining or before the embedded RTMP server is up. */
export const READYZ_PATH = '/readyz';

const DESTINATION_STATES: readonly DestinationState[] = ['connecting', 'live', 'retrying', 'failed', 'stopped'];
const INPUT_STATES: readonly RestreamInputState[] = ['waiting', 'live', 'reconnecting', 'ended'];

/** What the operator routes read; each is sampled at scrape time. */
export interface OpsSources {
  studio: () => StudioStats;
  watch?: { metrics(): WatchMetrics; counters(): WatchCounters } | undefined;
  restream?: (() => RestreamState) | undefined;
  localRtmp?: (() => LocalRtmpStatus) | undefined;
  draining: () => boolean;
}

/** The bridge's metric families (docs/operations.md lists them with their meaning). */
export function bridgeMetrics(src: OpsSources): MetricsRegistry {
  const m = new MetricsRegistry();
  m.gauge('onair_draining', 'The bridge is draining: 1 after SIGTERM until it exits.', () => (src.draining() ? 1 : 0));

  m.gauge('onair_studio_sessions', 'Studio sessions: attached to their page, or waiting for it in the grace period.', () => {
    const s = src.studio();
    return [
      { labels: { state: 'attached' }, value: s.attached },
      { labels: { state: 'waiting' }, value: s.waiting },
    ];
  });
  m.gauge('onair_studio_destinations', 'Destinations of studio sessions by state.', () => countBy('state', DESTINATION_STATES, src.studio().destinations));
  m.counter('onair_studio_sessions_started_total', 'Studio sessions started.', () => src.studio().started);
  m.counter('onair_studio_resumes_total', 'Studio sessions resumed by their page on a new socket.', () => src.studio().resumes);
  m.counter('onair_studio_received_bytes_total', 'Bytes of FLV tags received from studio pages.', () => src.studio().bytesIn);
  m.counter('onair_studio_sent_bytes_total', 'Bytes of tag bodies sent to studio destinations.', () => src.studio().bytesOut);
  m.counter('onair_studio_dropped_tags_total', 'Tags dropped for studio destinations (backpressure, waiting for a keyframe).', () => src.studio().dropped);
  m.counter('onair_studio_destination_reconnects_total', 'Times a studio destination lost its connection and began retrying.', () => src.studio().reconnects);

  const watch = src.watch;
  if (watch !== undefined) {
    m.gauge('onair_watch_viewers', 'Watch viewers by transport.', () => {
      const v = watch.metrics().viewers;
      return [
        { labels: { transport: 'ws' }, value: v.ws },
        { labels: { transport: 'http-flv' }, value: v.flv },
      ];
    });
    m.gauge('onair_watch_upstreams', 'Upstream RTMP play sessions connected (one per watched stream).', () => watch.metrics().upstreams);
    m.gauge('onair_watch_streams', 'Streams relayed to viewers, connected or retrying, warm ones included.', () => watch.metrics().streams.length);
    m.counter('onair_watch_received_bytes_total', 'Bytes of FLV tags received from upstreams.', () => watch.counters().bytesIn);
    m.counter('onair_watch_sent_bytes_total', 'Bytes sent to watch viewers.', () => watch.counters().bytesOut);
    m.counter('onair_watch_dropped_tags_total', 'Tags not sent to a slow viewer (its queue was full).', () => watch.counters().droppedTags);
    m.counter('onair_watch_upstream_reconnects_total', 'Upstream play sessions opened again for a stream after its first.', () => watch.counters().upstreamReconnects);
  }

  const restream = src.restream;
  if (restream !== undefined) {
    m.gauge('onair_restream_inputs', 'Restream inputs by state.', () => countBy('state', INPUT_STATES, restream().inputs.map((i) => i.state)));
    m.gauge('onair_restream_destinations', 'Restream destinations by state.', () =>
      countBy('state', DESTINATION_STATES, restream().inputs.flatMap((i) => i.destinations.map((d) => d.state))),
    );
  }

  const local = src.localRtmp;
  if (local !== undefined) {
    m.gauge('onair_local_rtmp_up', 'The embedded RTMP server is up (1) or starting or restarting (0).', () => (local().state === 'up' ? 1 : 0));
    m.counter('onair_local_rtmp_restarts_total', 'Times the embedded RTMP server was restarted after it exited.', () => local().restarts);
  }
  return m;
}

/** The event-loop delay is summarized over windows of this length. */
export const LOOP_DELAY_WINDOW_MS = 10_000;

/**
 * Process metrics in the names Prometheus client libraries use: memory, CPU, start time, and the
 * event-loop delay. The delay figures are those of the last complete LOOP_DELAY_WINDOW_MS window
 * (of the time so far before the first one ends), the same for every scraper whatever their
 * number or pace. Returns the release of the delay monitor.
 */
export function processMetrics(m: MetricsRegistry): () => void {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const read = (): [number, number, number] => (delay.count === 0 ? [0, 0, 0] : [delay.percentile(50) / 1e9, delay.percentile(99) / 1e9, delay.max / 1e9]);
  let last: [number, number, number] | undefined;
  const window = setInterval(() => {
    last = read();
    delay.reset();
  }, LOOP_DELAY_WINDOW_MS);
  window.unref();
  const started = Date.now() / 1000 - process.uptime();
  m.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', () => process.memoryUsage.rss());
  m.gauge('nodejs_heap_used_bytes', 'V8 heap in use, bytes.', () => process.memoryUsage().heapUsed);
  m.gauge('nodejs_heap_total_bytes', 'V8 heap allocated, bytes.', () => process.memoryUsage().heapTotal);
  m.counter('process_cpu_seconds_total', 'User and system CPU time spent, seconds.', () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  });
  m.gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch, seconds.', () => started);
  m.gauge('nodejs_eventloop_delay_seconds', 'Event-loop delay over the last 10 s (perf_hooks monitorEventLoopDelay), seconds; quantile 1 is the maximum.', () => {
    const [p50, p99, max] = last ?? read();
    return [
      { labels: { quantile: '0.5' }, value: p50 },
      { labels: { quantile: '0.99' }, value: p99 },
      { labels: { quantile: '1' }, value: max },
    ];
  });
  return () => {
    clearInterval(window);
    delay.disable();
  };
}

export interface OpsRoutes {
  registry: MetricsRegistry;
  /** Why the bridge takes no new work right now, or undefined when it does. */
  notReady: () => string | undefined;
  /** A second secret that opens `/metrics` only (`--metrics-token`), for a scraper. */
  metricsToken?: string | undefined;
}

function bearer(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  return auth?.startsWith('Bearer ') ? auth.slice(7).trim() : undefined;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * `/healthz`, `/readyz` and `/metrics`. The two probes answer anyone (a load balancer or an
 * orchestrator holds no token, and they tell nothing but ok or not); `/metrics` takes whoever
 * passes `checkRequest` (the server's own rules: its token when one is set, a loopback Host on a
 * loopback bind), or a `Authorization: Bearer` with the metrics token. Returns false for other paths.
 */
export function serveOps(req: IncomingMessage, res: ServerResponse, ops: OpsRoutes, checkRequest: (req: IncomingMessage) => Verdict): boolean {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  if (path !== HEALTHZ_PATH && path !== READYZ_PATH && path !== METRICS_PATH) return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return true;
  }
  const text = (status: number, body: string, type = 'text/plain; charset=utf-8'): void => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  if (path === HEALTHZ_PATH) {
    text(200, 'ok\n');
    return true;
  }
  if (path === READYZ_PATH) {
    const reason = ops.notReady();
    text(reason === undefined ? 200 : 503, `${reason ?? 'ready'}\n`);
    return true;
  }
  const presented = bearer(req);
  const scraper = ops.metricsToken !== undefined && presented !== undefined && sameSecret(presented, ops.metricsToken);
  const verdict = scraper ? { ok: true as const } : checkRequest(req);
  if (!verdict.ok) {
    text(verdict.status, `${verdict.reason}\n`);
    return true;
  }
  text(200, ops.registry.render(), PROMETHEUS_CONTENT_TYPE);
  return true;
}

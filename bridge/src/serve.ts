import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { OnairError } from '@onair/shared';
import { LocalRtmp, type LocalRtmpStatus } from './local-rtmp/local-rtmp.js';
import { RestreamService } from './restream/restream-service.js';
import { defaultConfigDir, RestreamStore } from './restream/restream-store.js';
import { EventLog, LOG_FORMATS, type LogFormat } from './server/event-log.js';
import { OnairServer } from './server/onair-server.js';
import { bridgeMetrics, processMetrics } from './server/ops.js';
import { startSampledEvents } from './server/sampled-events.js';
import { ServerPolicy, isLoopbackHost, isWildcardHost, urlHost } from './server/policy.js';
import { WatchService } from './watch/index.js';

export const SERVE_HELP = `onair serve — the studio, the watch pages and a local RTMP server

Usage: onair serve [options]

Opens the studio at http://127.0.0.1:8080/: go live from the browser (camera, microphone,
screen) to any RTMP/RTMPS server, several at once. The embedded RTMP server
(node-media-server) is the default destination; watch it at /watch/live/<key>.

Options (environment variable in brackets):
  --host ADDR                   listen address (default 127.0.0.1)                 [ONAIR_HOST]
  --port N                      HTTP/WebSocket port (default 8080; 0 = any free)   [ONAIR_PORT]
  --token SECRET                required on every request and WebSocket; mandatory
                                when --host is not a loopback address; open
                                http://host:port/?token=SECRET once             [ONAIR_TOKEN]
  --allow-private-destinations  allow destinations on loopback, private and
                                link-local addresses (always allowed on loopback) [ONAIR_ALLOW_PRIVATE=1]
  --allow-origin ORIGIN         another page origin allowed to open WebSockets
                                (repeatable; comma-separated in the variable)    [ONAIR_ALLOW_ORIGIN]
  --local-rtmp-port N           port of the embedded RTMP server (default 1935)   [ONAIR_LOCAL_RTMP_PORT]
  --local-rtmp-host ADDR        its listen address (default 127.0.0.1; 0.0.0.0 for
                                encoders on other machines: then only ingest keys
                                may publish and only this machine may play)     [ONAIR_LOCAL_RTMP_HOST]
  --no-local-rtmp               do not start the embedded RTMP server             [ONAIR_NO_LOCAL_RTMP=1]
  --web-root DIR                serve the web app from DIR (default web/dist)     [ONAIR_WEB_ROOT]
  --config-dir DIR              where the restream setup (inputs, ingest keys,
                                destinations with their keys) is kept, mode 0600
                                (default $XDG_CONFIG_HOME/onair or ~/.config/onair) [ONAIR_CONFIG_DIR]

Reliability (docs/studio.md, "What survives what"):
  --resume-grace SECONDS        how long a studio whose connection dropped keeps
                                its destinations live, waiting for the page to
                                resume (default 30)                              [ONAIR_RESUME_GRACE]
  --restream-grace SECONDS      how long restream destinations stay published
                                while their input (an encoder) is away (default 10) [ONAIR_RESTREAM_GRACE]
  --resend-buffer SECONDS       media the page keeps to resend after a drop
                                (default 15; at least 10 is advised)              [ONAIR_RESEND_BUFFER]
  --max-sessions N              studio sessions at once (default 16)              [ONAIR_MAX_SESSIONS]
  --max-sessions-per-client N   studio sessions per client address; loopback
                                clients are exempt (default 4)                    [ONAIR_MAX_SESSIONS_PER_CLIENT]
  --max-viewers N               watch viewers at once, WebSocket and HTTP-FLV
                                (default 2000)                                    [ONAIR_MAX_VIEWERS]
  --max-viewers-per-client N    viewers per client address; loopback clients are
                                exempt (default 20)                               [ONAIR_MAX_VIEWERS_PER_CLIENT]
  --max-upstreams N             streams relayed to viewers at once (default 64)   [ONAIR_MAX_UPSTREAMS]
  --verbose                     log sessions and the embedded server's messages   [ONAIR_VERBOSE=1]
  -h, --help                    show this help

Operations (docs/operations.md):
  --log-format text|json        json: one JSON line per session event on stderr
                                (sessions, destinations, viewers, restream, drain;
                                keys and tokens redacted) (default text)        [ONAIR_LOG_FORMAT]
  --drain-timeout SECONDS       on SIGTERM, how long live studio sessions may go on
                                before the bridge stops anyway (default 300)      [ONAIR_DRAIN_TIMEOUT]
  --metrics-token SECRET        a second secret that opens /metrics only
                                (Authorization: Bearer SECRET), for a scraper     [ONAIR_METRICS_TOKEN]
  GET /healthz answers 200 while the process runs, /readyz 200 while it takes new
  work (503 while draining or before the embedded RTMP server is up), both without
  a token; /metrics is in the Prometheus text format, with the token (or none on a
  loopback bind without one) or the metrics token.

Stream keys are never printed or logged. SIGTERM drains: /readyz fails, new studio
sessions and viewers are refused with 503, viewers are told to reconnect (to another
bridge behind a load balancer), live studio sessions go on until they end or the drain
timeout passes; then the bridge exits 0. Ctrl-C (SIGINT), or a second SIGTERM, stops at
once. Either way live destinations are unpublished cleanly first.
`;

export interface ServeOptions {
  host: string;
  port: number;
  token: string | undefined;
  allowPrivate: boolean | undefined;
  allowOrigins: string[];
  localRtmpPort: number | undefined;
  localRtmpHost: string;
  webRoot: string;
  configDir: string;
  restreamGraceMs: number;
  verbose: boolean;
  resumeGraceMs: number;
  resendBufferMs: number;
  maxSessions: number;
  maxSessionsPerClient: number;
  maxViewers: number;
  maxViewersPerClient: number;
  maxUpstreams: number;
  logFormat: LogFormat;
  drainTimeoutMs: number;
  metricsToken: string | undefined;
}

const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../../web/dist/', import.meta.url));

function portNumber(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new OnairError('USAGE', `${what} "${value}" is not a port number (0-65535)`);
  return n;
}

function seconds(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 86_400) throw new OnairError('USAGE', `${what} "${value}" is not a number of seconds (0-86400)`);
  return Math.round(n * 1000);
}

function count(value: string, what: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new OnairError('USAGE', `${what} "${value}" is not a whole number from 1`);
  return n;
}

function logFormat(value: string): LogFormat {
  if (!(LOG_FORMATS as readonly string[]).includes(value)) throw new OnairError('USAGE', `log format "${value}" is not one of ${LOG_FORMATS.join(', ')}`);
  return value as LogFormat;
}

function flag(value: string | undefined): boolean {
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

/** Parses `onair serve` arguments; options win over environment variables. */
export function parseServeArgs(argv: string[], env: NodeJS.ProcessEnv): ServeOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      token: { type: 'string' },
      'allow-private-destinations': { type: 'boolean' },
      'allow-origin': { type: 'string', multiple: true },
      'local-rtmp-port': { type: 'string' },
      'local-rtmp-host': { type: 'string' },
      'no-local-rtmp': { type: 'boolean' },
      'web-root': { type: 'string' },
      'config-dir': { type: 'string' },
      'restream-grace': { type: 'string' },
      verbose: { type: 'boolean' },
      'resume-grace': { type: 'string' },
      'resend-buffer': { type: 'string' },
      'max-sessions': { type: 'string' },
      'max-sessions-per-client': { type: 'string' },
      'max-viewers': { type: 'string' },
      'max-viewers-per-client': { type: 'string' },
      'max-upstreams': { type: 'string' },
      'log-format': { type: 'string' },
      'drain-timeout': { type: 'string' },
      'metrics-token': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  });
  const noLocal = values['no-local-rtmp'] ?? flag(env['ONAIR_NO_LOCAL_RTMP']);
  const allowPrivate = values['allow-private-destinations'] ?? (env['ONAIR_ALLOW_PRIVATE'] !== undefined ? flag(env['ONAIR_ALLOW_PRIVATE']) : undefined);
  return {
    host: values.host ?? env['ONAIR_HOST'] ?? '127.0.0.1',
    port: portNumber(values.port ?? env['ONAIR_PORT'] ?? '8080', 'port'),
    token: values.token ?? env['ONAIR_TOKEN'],
    allowPrivate,
    allowOrigins: values['allow-origin'] ?? (env['ONAIR_ALLOW_ORIGIN']?.split(',').map((s) => s.trim()).filter(Boolean) ?? []),
    localRtmpPort: noLocal ? undefined : portNumber(values['local-rtmp-port'] ?? env['ONAIR_LOCAL_RTMP_PORT'] ?? '1935', 'local RTMP port'),
    localRtmpHost: values['local-rtmp-host'] ?? env['ONAIR_LOCAL_RTMP_HOST'] ?? '127.0.0.1',
    webRoot: values['web-root'] ?? env['ONAIR_WEB_ROOT'] ?? DEFAULT_WEB_ROOT,
    configDir: values['config-dir'] ?? env['ONAIR_CONFIG_DIR'] ?? defaultConfigDir(env),
    restreamGraceMs: seconds(values['restream-grace'] ?? env['ONAIR_RESTREAM_GRACE'] ?? '10', 'restream grace'),
    verbose: values.verbose ?? flag(env['ONAIR_VERBOSE']),
    resumeGraceMs: seconds(values['resume-grace'] ?? env['ONAIR_RESUME_GRACE'] ?? '30', 'resume grace'),
    resendBufferMs: seconds(values['resend-buffer'] ?? env['ONAIR_RESEND_BUFFER'] ?? '15', 'resend buffer'),
    maxSessions: count(values['max-sessions'] ?? env['ONAIR_MAX_SESSIONS'] ?? '16', 'max sessions'),
    maxSessionsPerClient: count(values['max-sessions-per-client'] ?? env['ONAIR_MAX_SESSIONS_PER_CLIENT'] ?? '4', 'max sessions per client'),
    maxViewers: count(values['max-viewers'] ?? env['ONAIR_MAX_VIEWERS'] ?? '2000', 'max viewers'),
    maxViewersPerClient: count(values['max-viewers-per-client'] ?? env['ONAIR_MAX_VIEWERS_PER_CLIENT'] ?? '20', 'max viewers per client'),
    maxUpstreams: count(values['max-upstreams'] ?? env['ONAIR_MAX_UPSTREAMS'] ?? '64', 'max upstreams'),
    logFormat: logFormat(values['log-format'] ?? env['ONAIR_LOG_FORMAT'] ?? 'text'),
    drainTimeoutMs: seconds(values['drain-timeout'] ?? env['ONAIR_DRAIN_TIMEOUT'] ?? '300', 'drain timeout'),
    metricsToken: (values['metrics-token'] ?? env['ONAIR_METRICS_TOKEN']) || undefined,
  };
}

/** The embedded RTMP server as the rest of the bridge sees it. */
export interface LocalRtmpHandle {
  port: number;
  /** The listen address (`--local-rtmp-host`). */
  host: string;
  /** `rtmp://<address the bridge dials>:<port>/live` */
  url: string;
  /** The studio's default stream key. */
  key: string;
  status(): LocalRtmpStatus;
  /** Calls `fn` every time the server is back after a crash (sessions on it were cut); returns the unsubscribe. */
  onUp(fn: () => void): () => void;
}

export interface ServeHandle {
  server: OnairServer;
  localRtmp: LocalRtmpHandle | undefined;
  close(): Promise<void>;
}

/**
 * Starts everything `onair serve` runs; the caller owns `close()`. `log` takes the sentences of
 * `--verbose`; `events`, when given, the session events of the operator's log.
 */
export async function startServe(opts: ServeOptions, log: (line: string) => void, events?: EventLog): Promise<ServeHandle> {
  const policy = new ServerPolicy({ host: opts.host, token: opts.token, allowPrivateDestinations: opts.allowPrivate, allowedOrigins: opts.allowOrigins });
  const key = randomBytes(6).toString('hex');
  const local =
    opts.localRtmpPort === undefined
      ? undefined
      : await LocalRtmp.start({ host: opts.localRtmpHost, port: opts.localRtmpPort, bridgeKeys: [key], verbose: opts.verbose, log });
  const localRtmp: LocalRtmpHandle | undefined =
    local === undefined
      ? undefined
      : { port: local.port, host: local.host, url: local.url, key, status: () => local.status(), onUp: (fn) => local.onUp(fn) };
  const limits = { maxViewers: opts.maxViewers, maxViewersPerClient: opts.maxViewersPerClient, maxUpstreams: opts.maxUpstreams };
  const watch = new WatchService({
    policy,
    limits,
    ...(local !== undefined ? { localRtmp: { port: local.port, host: urlHost(local.dialHost), status: () => local.status() } } : {}),
  });
  // Beyond loopback the embedded server takes only the ingest keys made in the Restream view
  // (and the studio's own); on loopback it stays open to any key.
  const gated = local !== undefined && !local.open;
  let restream: RestreamService;
  try {
    restream = await RestreamService.start({
      store: new RestreamStore(opts.configDir),
      policy,
      graceMs: opts.restreamGraceMs,
      ingest: local === undefined ? undefined : { playUrl: local.url, host: isWildcardHost(local.host) ? null : local.host, port: local.port, open: local.open },
      ...(gated ? { onKeys: (keys: string[]) => local.setPublishKeys(keys) } : {}),
      ...(opts.verbose ? { log } : {}),
    });
  } catch (err) {
    await watch.close();
    await local?.close();
    throw err;
  }
  if (local !== undefined) {
    // The first viewer of a local stream then starts from the GOP cache, not the next keyframe;
    // the Restream view lists what publishes there.
    local.warmPublished((app, stream) => {
      const releases = [watch.warmLocal(app, stream), restream.published(app, stream)];
      return () => releases.forEach((release) => release());
    });
    // Viewers of local streams lost their upstream with the crash: reconnect now, not at the next backoff step.
    local.onUp(() => watch.retryLocalNow());
  }
  const releaseProcessMetrics: (() => void)[] = [];
  let server: OnairServer;
  try {
    server = await OnairServer.listen({
      host: opts.host,
      port: opts.port,
      webRoot: opts.webRoot,
      policy,
      watch,
      restream,
      studioConfig: { localRtmp: localRtmp === undefined ? null : { url: localRtmp.url, key } },
      studio: {
        graceMs: opts.resumeGraceMs,
        resendBufferMs: opts.resendBufferMs,
        limits: { maxSessions: opts.maxSessions, maxSessionsPerClient: opts.maxSessionsPerClient },
        ...(events !== undefined ? { onEvent: (e) => events.event(e.event, e) } : {}),
      },
      ops: (sessions) => {
        const registry = bridgeMetrics({
          studio: () => sessions.stats(),
          watch,
          restream: () => restream.state(),
          localRtmp: local === undefined ? undefined : () => local.status(),
          draining: () => server.draining,
        });
        releaseProcessMetrics.push(processMetrics(registry));
        return {
          registry,
          metricsToken: opts.metricsToken,
          notReady: () => {
            if (server.draining) return 'draining';
            if (local !== undefined && local.status().state !== 'up') return `the embedded RTMP server is ${local.status().state}`;
            return undefined;
          },
        };
      },
      ...(opts.verbose ? { log } : {}),
    });
  } catch (err) {
    for (const release of releaseProcessMetrics) release();
    await restream.close();
    await watch.close();
    await local?.close();
    const code = (err as NodeJS.ErrnoException).code;
    throw new OnairError('LISTEN_FAILED', `cannot listen on ${opts.host}:${opts.port} (${code ?? (err as Error).message})`);
  }
  if (local !== undefined) {
    // Studio destinations on the embedded server are waiting to retry: the server is back now.
    const onLocal = (url: string): boolean => {
      try {
        const u = new URL(url);
        return (isLoopbackHost(u.hostname) || u.hostname === urlHost(local.dialHost)) && Number(u.port === '' ? 1935 : u.port) === local.port;
      } catch {
        return false;
      }
    };
    local.onUp(() => server.sessions.retryNow(onLocal));
  }
  const stopSampling = events?.format === 'json' ? startSampledEvents({ watch: () => watch.metrics(), restream: () => restream.state() }, events) : () => undefined;
  return {
    server,
    localRtmp,
    async close() {
      stopSampling();
      await server.close();
      await local?.close();
      for (const release of releaseProcessMetrics) release();
    },
  };
}

/** The addresses to print for a listen address: every interface's for a wildcard bind. */
function shownHosts(host: string): string[] {
  if (!isWildcardHost(host)) return [host];
  const addresses = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && (a.family === 'IPv4' || host === '::'))
    .map((a) => a!.address);
  return addresses.length > 0 ? addresses : ['127.0.0.1'];
}

/** How often a draining bridge logs how many studio sessions are left. */
const DRAIN_PROGRESS_EVERY_MS = 5000;

/**
 * Resolves with the next SIGINT or SIGTERM. Until then the signals are ours; once it resolved or
 * `signal` aborted, they stop the process again as Node does by default.
 */
function nextSignal(signal?: AbortSignal): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const off = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    };
    const stop = (sig: NodeJS.Signals): void => {
      off();
      resolve(sig);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    signal?.addEventListener('abort', off, { once: true });
  });
}

/**
 * SIGTERM: stop taking work, let live studio sessions finish (or the timeout pass, or another
 * signal come), logging how many are left. The caller closes the server after.
 */
async function drain(server: OnairServer, timeoutMs: number, events: EventLog): Promise<void> {
  server.drain('the bridge is shutting down; reconnect');
  const left = (): number => server.sessions.size;
  events.event(
    'drain.start',
    { sessions: left(), timeoutS: timeoutMs / 1000 },
    { text: `draining: new sessions and viewers are refused, viewers told to reconnect; ${left()} studio session(s) live; stopping when they end or in ${timeoutMs / 1000} s (Ctrl-C stops now)` },
  );
  const progress = setInterval(() => events.event('drain.progress', { sessions: left() }, { text: `draining: ${left()} studio session(s) live` }), DRAIN_PROGRESS_EVERY_MS);
  let timer: NodeJS.Timeout | undefined;
  const done = new AbortController();
  const why = await Promise.race([
    server.sessions.whenEmpty().then(() => 'sessions ended'),
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs))),
    nextSignal(done.signal).then((signal) => `${signal}`),
  ]);
  done.abort();
  clearInterval(progress);
  clearTimeout(timer);
  const cut = left() > 0 ? `; ending the ${left()} studio session(s) still live` : '';
  events.event('drain.end', { reason: why, sessions: left() }, { text: `drained (${why})${cut}` });
}

/** `onair serve`: runs until SIGINT (or SIGTERM, which drains first), then shuts down cleanly and resolves. */
export async function runServe(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const opts = parseServeArgs(argv, env);
  const events = new EventLog(opts.logFormat, (line) => void process.stderr.write(line));
  const say = (line: string): void => events.line(line);
  const handle = await startServe(opts, say, events);
  for (const host of shownHosts(opts.host)) process.stdout.write(`onair: studio    ${handle.server.url(host)}\n`);
  if (handle.localRtmp !== undefined) {
    // The stream key stays out of the terminal: the studio page shows it and the watch link.
    for (const host of shownHosts(handle.localRtmp.host)) process.stdout.write(`onair: local RTMP rtmp://${urlHost(host)}:${handle.localRtmp.port}/live\n`);
    if (!isLoopbackHost(handle.localRtmp.host)) say('local RTMP server beyond loopback: only ingest keys may publish, only this machine may play');
  }
  if (!handle.server.url().startsWith('http://127.')) say('listening beyond loopback: token required, destinations must be public');
  events.event('ready', { port: handle.server.port });
  if ((await nextSignal()) === 'SIGTERM') await drain(handle.server, opts.drainTimeoutMs, events);
  say('shutting down');
  await handle.close();
}

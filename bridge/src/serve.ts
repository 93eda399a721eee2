import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { createSecureContext } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { OnairError } from '@onair/shared';
import { LocalRtmp, type LocalRtmpStatus } from './local-rtmp/local-rtmp.js';
import { RestreamService } from './restream/restream-service.js';
import { defaultConfigDir, RestreamStore } from './restream/restream-store.js';
import { EventLog, LOG_FORMATS, type LogFormat } from './server/event-log.js';
import { OnairServer } from './server/onair-server.js';
import { bridgeMetrics, processMetrics } from './server/ops.js';
import { startSampledEvents } from './server/sampled-events.js';
import { ServerPolicy, isLoopbackHost, isWildcardHost, urlHost } from './server/policy.js';
import { WatchService, parseWatchUpstream, type WatchUpstream } from './watch/index.js';

export const SERVE_HELP = `onair serve — the studio, the watch pages and a local RTMP server

Usage: onair serve [options]

Opens the studio at http://127.0.0.1:8080/: go live from the browser (camera, microphone,
screen) to any RTMP/RTMPS server, several at once. The embedded RTMP server
(node-media-server) is the default destination; watch it at /watch/live/<key>.

Options (environment variable in brackets). Each also fits in the JSON file of --config,
keyed by the option's name without the leading -- ({"port": 8080, "no-local-rtmp": true,
"allow-origin": ["https://a.example"]}): options win over variables, variables over the file.
  --config FILE                 read options from FILE                            [ONAIR_CONFIG]
  --print-config                print the options in effect as JSON (the token and
                                keys as ***) and exit
  --host ADDR                   listen address (default 127.0.0.1)                 [ONAIR_HOST]
  --port N                      HTTP/WebSocket port (default 8080; 0 = any free)   [ONAIR_PORT]
  --token SECRET                the studio token: required on every request and
                                WebSocket but watch links'; mandatory when --host is
                                not a loopback address; open the studio once as
                                http(s)://host:port/?token=SECRET (never printed)  [ONAIR_TOKEN]
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
  --tls-cert FILE               serve https and wss with this certificate (PEM,
                                chain included); with --tls-key                    [ONAIR_TLS_CERT]
  --tls-key FILE                the certificate's private key (PEM)                [ONAIR_TLS_KEY]
  --public-url URL              where the public reaches the bridge through a
                                reverse proxy (https://live.example.com): its host
                                and origin pass the Host and Origin checks         [ONAIR_PUBLIC_URL]
  --trusted-proxy ADDR          a proxy (address or CIDR range) whose
                                X-Forwarded-For and X-Forwarded-Proto are
                                believed (repeatable; comma-separated in the
                                variable)                                          [ONAIR_TRUSTED_PROXY]
  --watch-upstream URL          play /watch/<app>/<stream>, /watch-ws/… and
                                /live/<stream>.flv from this RTMP server (an edge:
                                rtmp://edge:1935/live serves app live only,
                                rtmp://edge:1935 any app) instead of the embedded
                                one; one upstream per stream, shared by its viewers [ONAIR_WATCH_UPSTREAM]
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
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  publicUrl: string | undefined;
  trustedProxies: string[];
  watchUpstream: WatchUpstream | undefined;
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

/**
 * The options of `onair serve` by their long names. Each is read from the command line, else from
 * the environment variable ONAIR_<NAME> (capitals, `_` for `-`; ENV_NAMES has the exceptions),
 * else from the JSON file of --config (keys named like the options), else from serveDefaults. A
 * new option needs its line here (and its default there): the variable, the file and
 * --print-config then take it without more code.
 */
export const SERVE_OPTIONS = {
  host: { type: 'string' },
  port: { type: 'string' },
  token: { type: 'string' },
  'allow-private-destinations': { type: 'boolean' },
  'allow-origin': { type: 'string', multiple: true },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'public-url': { type: 'string' },
  'trusted-proxy': { type: 'string', multiple: true },
  'watch-upstream': { type: 'string' },
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
  config: { type: 'string' },
  'print-config': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

type ParseArgsOptionConfig = NonNullable<ParseArgsConfig['options']>[string];
type ServeOption = keyof typeof SERVE_OPTIONS;
/** What the command does rather than how the server runs: neither in a config file nor printed. */
type CommandOption = 'config' | 'print-config' | 'help';
const COMMAND_OPTIONS: ReadonlySet<string> = new Set<CommandOption>(['config', 'print-config', 'help']);
const ENV_NAMES: Partial<Record<ServeOption, string>> = { 'allow-private-destinations': 'ONAIR_ALLOW_PRIVATE' };
/** Options whose values --print-config shows as ***: the token, any stream key or other secret. */
const SECRET_OPTION = /token|secret|password|key$/;

type OptionValue<K extends ServeOption> = (typeof SERVE_OPTIONS)[K] extends { type: 'boolean' }
  ? boolean
  : (typeof SERVE_OPTIONS)[K] extends { multiple: true }
    ? string[]
    : string;

function serveDefaults(env: NodeJS.ProcessEnv) {
  return {
    host: '127.0.0.1',
    port: '8080',
    'allow-origin': [],
    'trusted-proxy': [],
    'local-rtmp-port': '1935',
    'local-rtmp-host': '127.0.0.1',
    'no-local-rtmp': false,
    'web-root': DEFAULT_WEB_ROOT,
    'config-dir': defaultConfigDir(env),
    'restream-grace': '10',
    verbose: false,
    'resume-grace': '30',
    'resend-buffer': '15',
    'max-sessions': '16',
    'max-sessions-per-client': '4',
    'max-viewers': '2000',
    'max-viewers-per-client': '20',
    'max-upstreams': '64',
    'log-format': 'text',
    'drain-timeout': '300',
  } satisfies { [K in ServeOption]?: OptionValue<K> };
}

/** Every setting after flags, environment, config file and defaults; undefined only where there is no default. */
export type ServeSettings = {
  [K in Exclude<ServeOption, CommandOption>]: OptionValue<K> | (K extends keyof ReturnType<typeof serveDefaults> ? never : undefined);
};

/** The environment variable an option reads. */
export function envName(option: string): string {
  return ENV_NAMES[option as ServeOption] ?? `ONAIR_${option.toUpperCase().replaceAll('-', '_')}`;
}

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

type SettingValue = string | boolean | string[];

/** An environment variable's value for an option of this kind; an empty variable counts as unset. */
function fromEnv(spec: ParseArgsOptionConfig, text: string | undefined): SettingValue | undefined {
  if (text === undefined || text === '') return undefined;
  if (spec.type === 'boolean') return flag(text);
  return spec.multiple === true ? text.split(',').map((s) => s.trim()).filter(Boolean) : text;
}

/** Reads a --config file: a JSON object of options by their long names; null leaves one unset. */
function readConfigFile(path: string): Partial<Record<string, SettingValue>> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new OnairError('USAGE', `cannot read the config file ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not the parser's message: it quotes the text, which may hold the token.
    throw new OnairError('USAGE', `the config file ${path} is not valid JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new OnairError('USAGE', `the config file ${path} is not a JSON object`);
  const scalar = (v: unknown): string | undefined => (typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined);
  const settings: Partial<Record<string, SettingValue>> = {};
  for (const [name, value] of Object.entries(parsed)) {
    const spec: ParseArgsOptionConfig | undefined = Object.hasOwn(SERVE_OPTIONS, name) && !COMMAND_OPTIONS.has(name) ? SERVE_OPTIONS[name as ServeOption] : undefined;
    if (spec === undefined) throw new OnairError('USAGE', `the config file ${path} has an unknown option "${name}"`);
    if (value === null) continue;
    let setting: SettingValue | undefined;
    if (spec.type === 'boolean') setting = typeof value === 'boolean' ? value : undefined;
    else if (spec.multiple !== true) setting = scalar(value);
    else {
      const list = (Array.isArray(value) ? (value as unknown[]) : [value]).map(scalar);
      setting = list.every((v) => v !== undefined) ? (list as string[]) : undefined;
    }
    const wanted = spec.type === 'boolean' ? 'true or false' : spec.multiple === true ? 'a string or a list of strings' : 'a string or a number';
    if (setting === undefined) throw new OnairError('USAGE', `the config file ${path}: "${name}" takes ${wanted}`);
    settings[name] = setting;
  }
  return settings;
}

/** Reads `onair serve` settings: flags over environment variables over the config file over defaults. */
export function readServeSettings(argv: string[], env: NodeJS.ProcessEnv): { settings: ServeSettings; printConfig: boolean } {
  const { values } = parseArgs({ args: argv, options: SERVE_OPTIONS, allowPositionals: false });
  const configFile = values.config ?? (env[envName('config')] || undefined);
  const file = configFile === undefined ? {} : readConfigFile(configFile);
  const defaults: Partial<Record<string, SettingValue>> = serveDefaults(env);
  const flags: Partial<Record<string, SettingValue>> = values;
  const settings: Record<string, SettingValue | undefined> = {};
  for (const [name, spec] of Object.entries(SERVE_OPTIONS)) {
    if (!COMMAND_OPTIONS.has(name)) settings[name] = flags[name] ?? fromEnv(spec, env[envName(name)]) ?? file[name] ?? defaults[name];
  }
  // Sound: every value above comes from parseArgs or was checked against the option's type.
  return { settings: settings as ServeSettings, printConfig: values['print-config'] ?? false };
}

function serveOptions(s: ServeSettings): ServeOptions {
  if ((s['tls-cert'] === undefined) !== (s['tls-key'] === undefined)) throw new OnairError('USAGE', '--tls-cert and --tls-key go together');
  return {
    host: s.host,
    port: portNumber(s.port, 'port'),
    token: s.token,
    allowPrivate: s['allow-private-destinations'],
    allowOrigins: s['allow-origin'],
    tlsCert: s['tls-cert'],
    tlsKey: s['tls-key'],
    publicUrl: s['public-url'],
    trustedProxies: s['trusted-proxy'],
    watchUpstream: s['watch-upstream'] === undefined ? undefined : parseWatchUpstream(s['watch-upstream']),
    localRtmpPort: s['no-local-rtmp'] ? undefined : portNumber(s['local-rtmp-port'], 'local RTMP port'),
    localRtmpHost: s['local-rtmp-host'],
    webRoot: s['web-root'],
    configDir: s['config-dir'],
    restreamGraceMs: seconds(s['restream-grace'], 'restream grace'),
    verbose: s.verbose,
    resumeGraceMs: seconds(s['resume-grace'], 'resume grace'),
    resendBufferMs: seconds(s['resend-buffer'], 'resend buffer'),
    maxSessions: count(s['max-sessions'], 'max sessions'),
    maxSessionsPerClient: count(s['max-sessions-per-client'], 'max sessions per client'),
    maxViewers: count(s['max-viewers'], 'max viewers'),
    maxViewersPerClient: count(s['max-viewers-per-client'], 'max viewers per client'),
    maxUpstreams: count(s['max-upstreams'], 'max upstreams'),
    logFormat: logFormat(s['log-format']),
    drainTimeoutMs: seconds(s['drain-timeout'], 'drain timeout'),
    metricsToken: s['metrics-token'] || undefined,
  };
}

/** Parses `onair serve` arguments: options over environment variables over a --config file over defaults. */
export function parseServeArgs(argv: string[], env: NodeJS.ProcessEnv): ServeOptions {
  return serveOptions(readServeSettings(argv, env).settings);
}

/** --print-config: every setting as JSON, keyed like the options; secrets as ***, unset ones null. */
export function printedConfig(settings: ServeSettings): string {
  const shown: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(settings)) {
    if (value === undefined) shown[name] = null;
    else if (SECRET_OPTION.test(name)) shown[name] = '***';
    // Numbers are numbers in the file; the command line has only strings.
    else if (typeof value === 'string' && value !== '' && String(Number(value)) === value) shown[name] = Number(value);
    else shown[name] = value;
  }
  return `${JSON.stringify(shown, null, 2)}\n`;
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
 * The certificate and key of `--tls-cert`/`--tls-key`, read and checked to make a pair, so that a
 * wrong file stops `onair serve` at once with its name instead of failing every visitor's handshake.
 */
export function readTls(certFile: string, keyFile: string): { cert: Buffer; key: Buffer } {
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new OnairError('USAGE', `cannot read ${what} ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  };
  const cert = read(certFile, '--tls-cert');
  const key = read(keyFile, '--tls-key');
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    const message = (err as Error).message;
    if (/key values mismatch/i.test(message)) throw new OnairError('USAGE', `--tls-key ${keyFile} is not the key of the certificate in --tls-cert ${certFile}`);
    throw new OnairError('USAGE', `--tls-cert ${certFile} / --tls-key ${keyFile} unusable: ${message}`);
  }
  return { cert, key };
}

/**
 * Starts everything `onair serve` runs; the caller owns `close()`. `log` takes the sentences of
 * `--verbose`; `events`, when given, the session events of the operator's log.
 */
export async function startServe(opts: ServeOptions, log: (line: string) => void, events?: EventLog): Promise<ServeHandle> {
  const policy = new ServerPolicy({
    host: opts.host,
    token: opts.token,
    allowPrivateDestinations: opts.allowPrivate,
    allowedOrigins: opts.allowOrigins,
    publicUrl: opts.publicUrl,
    trustedProxies: opts.trustedProxies,
  });
  const tls = opts.tlsCert === undefined || opts.tlsKey === undefined ? undefined : readTls(opts.tlsCert, opts.tlsKey);
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
  // The studio's default destination, whatever the bind (a public bridge refuses loopback otherwise).
  if (local !== undefined) policy.allowEmbedded(local.dialHost, local.port);
  const watch = new WatchService({
    policy,
    limits,
    clientAddress: (req) => policy.clientAddress(req),
    ...(opts.watchUpstream !== undefined ? { upstream: opts.watchUpstream } : {}),
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
      tls,
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
  const { settings, printConfig } = readServeSettings(argv, env);
  const opts = serveOptions(settings);
  if (printConfig) {
    process.stdout.write(printedConfig(settings));
    return;
  }
  const events = new EventLog(opts.logFormat, (line) => void process.stderr.write(line));
  const say = (line: string): void => events.line(line);
  const handle = await startServe(opts, say, events);
  const publicUrl = handle.server.policy.publicUrl;
  for (const url of publicUrl !== undefined ? [publicUrl.href] : shownHosts(opts.host).map((host) => handle.server.url(host))) {
    process.stdout.write(`onair: studio    ${url}\n`);
  }
  // The token stays out of the terminal, where logs, scrollback and shared screens keep it.
  if (handle.server.policy.token !== undefined) say('open the studio once with ?token=<your --token> added; watch links need no token');
  if (handle.localRtmp !== undefined) {
    // The stream key stays out of the terminal: the studio page shows it and the watch link.
    for (const host of shownHosts(handle.localRtmp.host)) process.stdout.write(`onair: local RTMP rtmp://${urlHost(host)}:${handle.localRtmp.port}/live\n`);
    if (!isLoopbackHost(handle.localRtmp.host)) say('local RTMP server beyond loopback: only ingest keys may publish, only this machine may play');
  }
  if (!handle.server.policy.loopbackOnly) say('listening beyond loopback: studio token required, destinations must be public (the embedded server excepted)');
  events.event('ready', { port: handle.server.port });
  if ((await nextSignal()) === 'SIGTERM') await drain(handle.server, opts.drainTimeoutMs, events);
  say('shutting down');
  await handle.close();
}

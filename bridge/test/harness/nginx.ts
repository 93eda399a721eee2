import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, waitForPort } from './ports.js';
import { makeTempDir, removeTempDir, spawnTracked, waitFor, type Child } from './proc.js';

export const NGINX_MODULES_DIR = '/usr/lib/nginx/modules';
const RTMP_MODULE = `${NGINX_MODULES_DIR}/ngx_rtmp_module.so`;
const STREAM_MODULE = `${NGINX_MODULES_DIR}/ngx_stream_module.so`;

export interface NginxRtmpOptions {
  /** `record all` into `recordDir` for every stream of the `live` application (default true). */
  record?: boolean;
  /** An HTTP server with the `rtmp_stat` page on `httpPort` (default false). */
  stat?: boolean;
  /** A `stream {}` TLS terminator on `rtmpsPort` that forwards plain RTMP to `rtmpPort`. */
  tlsTerminator?: { cert: string; key: string };
  /** Extra directives inside `application live {}`. */
  liveDirectives?: string;
}

export interface NginxRtmp {
  readonly rtmpPort: number;
  readonly httpPort?: number;
  readonly rtmpsPort?: number;
  /** The nginx process (one: `master_process off`), e.g. to stop it with SIGSTOP in a test. */
  readonly pid: number;
  /**
   * The temporary prefix directory: nginx.conf, error.log, the recordings. Removed by dispose()
   * or, at the latest, when the test process ends (`ONAIR_KEEP_TMP=1` keeps it).
   */
  readonly prefix: string;
  readonly recordDir: string;
  /** `rtmp://127.0.0.1:<rtmpPort>/<app>/<name>` */
  url(app: string, name: string): string;
  /** `rtmps://127.0.0.1:<rtmpsPort>/<app>/<name>`; throws without a TLS terminator. */
  rtmpsUrl(app: string, name: string): string;
  /** Where `record all` writes the stream `name` (it may not exist yet). */
  recording(name: string): string;
  /**
   * Resolves with the recording's path once nginx has closed it, that is once it processed the
   * publisher's deleteStream or lost its connection. Every tag is written with pwrite() as it
   * arrives, so a closed file is complete.
   */
  recordingDone(name: string, timeoutMs?: number): Promise<string>;
  /** The `rtmp_stat` XML; throws unless started with `stat: true`. */
  stat(): Promise<string>;
  /** Who is connected to stream `name` of `app` right now (from the stat page). */
  streamClients(app: string, name: string): Promise<{ publishing: boolean; players: number }>;
  /** True while `name` has a publisher in `app` (from the stat page). */
  isPublishing(app: string, name: string): Promise<boolean>;
  /** The error log so far, for failure messages. */
  errorLog(): string;
  /** Its last `lines` lines (default 20): the prefix is gone once the test process ends. */
  errorLogTail(lines?: number): string;
  /** Graceful shutdown (SIGQUIT), SIGKILL after 5 s; recordings stay on disk. */
  stop(): Promise<void>;
  /** stop(), then removes the prefix directory. */
  dispose(): Promise<void>;
}

function conf(o: {
  prefix: string;
  rtmpPort: number;
  recordDir: string;
  record: boolean;
  liveDirectives: string;
  httpPort: number | undefined;
  tls: { port: number; cert: string; key: string } | undefined;
}): string {
  // No `user` directive: with master_process off nginx never switches to another user.
  const lines = [
    'daemon off;',
    'master_process off;',
    `pid ${o.prefix}/nginx.pid;`,
    `error_log ${o.prefix}/error.log info;`,
    `load_module ${RTMP_MODULE};`,
    ...(o.tls ? [`load_module ${STREAM_MODULE};`] : []),
    'events { worker_connections 256; }',
    'rtmp {',
    '  server {',
    `    listen 127.0.0.1:${o.rtmpPort};`,
    '    application live {',
    '      live on;',
    ...(o.record ? ['      record all;', `      record_path ${o.recordDir};`, '      record_unique off;'] : []),
    ...(o.liveDirectives ? [`      ${o.liveDirectives}`] : []),
    '    }',
    '  }',
    '}',
  ];
  if (o.httpPort !== undefined) {
    const temp = (name: string): string => `${name}_temp_path ${o.prefix}/${name};`;
    lines.push(
      'http {',
      `  access_log off; ${temp('client_body')} ${temp('proxy')} ${temp('fastcgi')} ${temp('uwsgi')} ${temp('scgi')}`,
      `  server { listen 127.0.0.1:${o.httpPort}; location /stat { rtmp_stat all; } }`,
      '}',
    );
  }
  if (o.tls) {
    lines.push(
      'stream {',
      '  server {',
      `    listen 127.0.0.1:${o.tls.port} ssl;`,
      `    ssl_certificate ${o.tls.cert};`,
      `    ssl_certificate_key ${o.tls.key};`,
      `    proxy_pass 127.0.0.1:${o.rtmpPort};`,
      '  }',
      '}',
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Starts a private nginx with the RTMP module on free loopback ports; resolves once it accepts. */
export async function startNginxRtmp(options: NginxRtmpOptions = {}): Promise<NginxRtmp> {
  const prefix = makeTempDir('onair-nginx-');
  const recordDir = join(prefix, 'record');
  mkdirSync(recordDir);
  const rtmpPort = await freePort();
  const httpPort = options.stat === true ? await freePort() : undefined;
  const tls = options.tlsTerminator ? { port: await freePort(), ...options.tlsTerminator } : undefined;
  const confPath = join(prefix, 'nginx.conf');
  writeFileSync(
    confPath,
    conf({ prefix, rtmpPort, recordDir, record: options.record ?? true, liveDirectives: options.liveDirectives ?? '', httpPort, tls }),
  );
  const errorLogPath = join(prefix, 'error.log');
  const errorLog = (): string => (existsSync(errorLogPath) ? readFileSync(errorLogPath, 'utf8') : '');
  const errorLogTail = (lines = 20): string => {
    const tail = errorLog().trimEnd().split('\n').slice(-lines).join('\n');
    return tail === '' ? '(nginx error log empty)' : `nginx error log, last lines:\n${tail}`;
  };

  // -e keeps nginx from opening the system error log before it reads the config.
  const child: Child = spawnTracked('nginx', ['-p', prefix, '-c', confPath, '-e', errorLogPath]);
  const running = (): boolean => child.process.exitCode === null && child.process.signalCode === null;
  try {
    await waitForPort(rtmpPort, 10_000, running);
    if (httpPort !== undefined) await waitForPort(httpPort, 10_000, running);
    if (tls) await waitForPort(tls.port, 10_000, running);
  } catch (err) {
    await child.stop('SIGKILL');
    const log = errorLog();
    removeTempDir(prefix);
    throw new Error(`nginx did not start: ${(err as Error).message}\n${child.tail()}\n${log}`, { cause: err });
  }

  const recording = (name: string): string => join(recordDir, `${name}.flv`);
  const openByNginx = (path: string): boolean => {
    const fdDir = `/proc/${child.pid}/fd`;
    if (!existsSync(fdDir)) return false;
    for (const fd of readdirSync(fdDir)) {
      try {
        if (readlinkSync(join(fdDir, fd)) === path) return true;
      } catch {
        // the descriptor was closed while listing
      }
    }
    return false;
  };
  const stat = async (): Promise<string> => {
    if (httpPort === undefined) throw new Error('nginx was started without stat: true');
    const res = await fetch(`http://127.0.0.1:${httpPort}/stat`);
    return res.text();
  };
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= child.stop('SIGQUIT', 5_000).then(() => undefined);
    return stopped;
  };

  const handle: NginxRtmp = {
    rtmpPort,
    ...(httpPort !== undefined ? { httpPort } : {}),
    ...(tls ? { rtmpsPort: tls.port } : {}),
    pid: child.pid,
    prefix,
    recordDir,
    url: (app, name) => `rtmp://127.0.0.1:${rtmpPort}/${app}/${name}`,
    rtmpsUrl: (app, name) => {
      if (!tls) throw new Error('nginx was started without a TLS terminator');
      return `rtmps://127.0.0.1:${tls.port}/${app}/${name}`;
    },
    recording,
    recordingDone: async (name, timeoutMs = 10_000) => {
      const path = recording(name);
      try {
        return await waitFor(`nginx to close ${path}`, () => (existsSync(path) && !openByNginx(path) ? path : undefined), timeoutMs);
      } catch (err) {
        const state = existsSync(path) ? 'still open' : 'never created';
        throw new Error(`${(err as Error).message} (${state})\n${errorLogTail()}`, { cause: err });
      }
    },
    stat,
    streamClients: async (app, name) => {
      const named = (section: string, value: string): boolean => section.trimStart().startsWith(`<name>${value}</name>`);
      const application = (await stat()).split('<application>').find((section) => named(section, app));
      const stream = application?.split('<stream>').find((section) => named(section, name))?.split('</stream>')[0];
      const clients = stream?.split('<client>').slice(1) ?? [];
      return {
        publishing: clients.some((c) => c.includes('<publishing/>')),
        players: clients.filter((c) => !c.includes('<publishing/>')).length,
      };
    },
    isPublishing: async (app, name) => (await handle.streamClients(app, name)).publishing,
    errorLog,
    errorLogTail,
    stop,
    dispose: async () => {
      await stop();
      removeTempDir(prefix);
    },
  };
  return handle;
}

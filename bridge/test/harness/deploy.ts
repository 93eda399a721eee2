import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './fixtures.js';
import { NGINX_MODULES_DIR } from './nginx.js';
import { freePort, waitForPort } from './ports.js';
import { makeTempDir, removeTempDir, runChecked, spawnTracked, type Child } from './proc.js';
import { ONAIR_BIN } from './run.js';
import { makeTestCertificates, type TestCertificates } from './tls.js';
import { parsePrometheus, promValue, type PromFamily } from './prometheus.js';

// The reference deployment of deploy/ on loopback, from its own files with only ports and paths
// replaced: nginx (deploy/nginx/onair.conf: the TLS load balancer, the RTMP origin and two edges
// pulling from it) and three bridges started the way deploy/systemd/onair.service starts them,
// with the settings of deploy/systemd/onair.env.

export const DEPLOY_DIR = join(REPO_ROOT, 'deploy');
export const DEPLOY_NGINX_CONF = join(DEPLOY_DIR, 'nginx', 'onair.conf');
export const DEPLOY_UNIT = join(DEPLOY_DIR, 'systemd', 'onair.service');
export const DEPLOY_ENV = join(DEPLOY_DIR, 'systemd', 'onair.env');
/** The settings deploy/systemd/onair.env holds; the test notices one added or gone. */
export const DEPLOY_ENV_KEYS = ['ONAIR_HOST', 'ONAIR_NO_LOCAL_RTMP', 'ONAIR_PORT', 'ONAIR_PUBLIC_URL', 'ONAIR_TOKEN', 'ONAIR_TRUSTED_PROXY', 'ONAIR_WATCH_UPSTREAM'];

/** `text` with every `from` replaced; a `from` the file no longer holds is an error. */
export function substitute(text: string, pairs: [string, string][]): string {
  let out = text;
  for (const [from, to] of pairs) {
    if (!out.includes(from)) throw new Error(`the deploy file no longer contains "${from}"`);
    out = out.replaceAll(from, to);
  }
  return out;
}

/** `KEY=VALUE` lines as systemd's EnvironmentFile= reads them (comments and blank lines skipped). */
export function environmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m !== null) env[m[1]!] = m[2]!.trim();
  }
  return env;
}

/** Every value of one unit setting (`Key=`). */
export function unitSettings(unit: string, key: string): string[] {
  return unit
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));
}

export interface DeployedBridge {
  readonly port: number;
  /** The edge it plays from (--watch-upstream). */
  readonly edgePort: number;
  readonly child: Child;
}

export interface Deployment {
  /** `https://127.0.0.1:<port>`: the load balancer. */
  readonly url: string;
  readonly lbPort: number;
  readonly originPort: number;
  readonly edgePorts: readonly number[];
  readonly bridges: readonly DeployedBridge[];
  /** PEM of the test CA that signed the load balancer's certificate. */
  readonly ca: Buffer;
  readonly caCertPath: string;
  /** The studio token of every bridge. */
  readonly token: string;
  readonly prefix: string;
  /** `/metrics` of one bridge, straight from it (with the token), parsed by an independent parser. */
  metrics(bridge: DeployedBridge): Promise<PromFamily[]>;
  /** What a bridge's watch side holds, from its `/metrics`. */
  watchState(bridge: DeployedBridge): Promise<{ viewers: number; upstreams: number; streams: number; upstreamReconnects: number }>;
  /** The status of a bridge's `/readyz`. */
  readyz(bridge: DeployedBridge): Promise<number>;
  /** ffmpeg publishing 1 Mbps (640x360 H.264, a keyframe every 2 s, AAC) to the origin, looped. */
  publish(stream: string): Promise<Child>;
  /** The last lines of nginx's error log. */
  nginxLogTail(): string;
  dispose(): Promise<void>;
}

/** Starts nginx and three bridges from the files in deploy/ on free loopback ports. */
export async function startDeployment(options: { token?: string } = {}): Promise<Deployment> {
  const token = options.token ?? 'deploy-test-token-0123456789';
  const certs: TestCertificates = await makeTestCertificates();
  const prefix = makeTempDir('onair-deploy-');
  const started: Child[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(started.map((c) => c.stop('SIGKILL')));
    removeTempDir(prefix);
    certs.dispose();
  };
  try {
    const [http, https, origin, edgeA, edgeB, ...bridgePorts] = await Promise.all(Array.from({ length: 8 }, () => freePort()));
    const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((name) => `${name}_temp_path ${prefix}/${name};`).join(' ');
    const conf = substitute(readFileSync(DEPLOY_NGINX_CONF, 'utf8'), [
      // One process that never switches user, like the harness's other nginx.
      ['user www-data;', 'master_process off;'],
      ['pid /run/onair-nginx.pid;', `pid ${prefix}/nginx.pid;`],
      ['error_log /var/log/nginx/onair-error.log;', `error_log ${prefix}/error.log info;`],
      ['include /etc/nginx/modules-enabled/*.conf;', `load_module ${NGINX_MODULES_DIR}/ngx_rtmp_module.so;`],
      ['access_log /var/log/nginx/onair-access.log onair;', `access_log ${prefix}/access.log onair; ${temp}`],
      ['/etc/ssl/onair/fullchain.pem', certs.cert],
      ['/etc/ssl/onair/privkey.pem', certs.key],
      ['listen 80;', `listen 127.0.0.1:${http};`],
      ['listen 443 ssl;', `listen 127.0.0.1:${https} ssl;`],
      ['listen 1935;', `listen 127.0.0.1:${origin};`],
      ['listen 1936;', `listen 127.0.0.1:${edgeA};`],
      ['listen 1937;', `listen 127.0.0.1:${edgeB};`],
      ['rtmp://127.0.0.1:1935/live', `rtmp://127.0.0.1:${origin}/live`],
      ...bridgePorts.map((port, i): [string, string] => [`127.0.0.1:${8081 + i}`, `127.0.0.1:${port}`]),
    ]);
    const confPath = join(prefix, 'nginx.conf');
    writeFileSync(confPath, conf);
    const nginx = spawnTracked('nginx', ['-p', prefix, '-c', confPath, '-e', join(prefix, 'error.log'), '-g', 'daemon off;']);
    started.push(nginx);
    try {
      for (const port of [http!, https!, origin!, edgeA!, edgeB!]) await waitForPort(port, 10_000, () => nginx.process.exitCode === null);
    } catch (err) {
      throw new Error(`nginx did not start: ${(err as Error).message}\n${nginx.tail()}`, { cause: err });
    }

    // The bridges: the unit's command with the unit's and the environment file's settings.
    const unit = readFileSync(DEPLOY_UNIT, 'utf8');
    const [exec] = unitSettings(unit, 'ExecStart');
    if (exec !== '/usr/bin/onair serve') throw new Error(`the unit runs "${exec}", not /usr/bin/onair serve`);
    const fromUnit = Object.fromEntries(unitSettings(unit, 'Environment').map((e) => e.split('=', 2) as [string, string]));
    const fromFile = environmentFile(readFileSync(DEPLOY_ENV, 'utf8'));
    const keys = Object.keys(fromFile).sort().join(' ');
    if (keys !== DEPLOY_ENV_KEYS.join(' ')) throw new Error(`onair.env sets ${keys}, not ${DEPLOY_ENV_KEYS.join(' ')}`);
    const edgePorts = [edgeA!, edgeB!];
    const bridges: DeployedBridge[] = bridgePorts.map((port, i) => {
      const edgePort = i < 2 ? edgeA! : edgeB!;
      const env = {
        ...process.env,
        ...fromUnit,
        ...fromFile,
        ONAIR_CONFIG_DIR: join(prefix, `bridge-${i}`),
        // Loopback only here; the file's 0.0.0.0 is for bridges on their own machines.
        ONAIR_HOST: '127.0.0.1',
        ONAIR_PORT: String(port),
        ONAIR_TOKEN: token,
        ONAIR_PUBLIC_URL: `https://127.0.0.1:${https}`,
        ONAIR_WATCH_UPSTREAM: substitute(fromFile['ONAIR_WATCH_UPSTREAM']!, [['127.0.0.1:1936', `127.0.0.1:${edgePort}`]]),
      };
      const child = spawnTracked(process.execPath, [ONAIR_BIN, 'serve'], { cwd: REPO_ROOT, env, keepLines: 100 });
      started.push(child);
      return { port, edgePort, child };
    });
    await Promise.all(bridges.map((b) => waitForPort(b.port, 20_000, () => b.child.process.exitCode === null)));

    const file = join(prefix, 'show.flv');
    let made: Promise<Buffer> | undefined;
    const metrics = async (bridge: DeployedBridge): Promise<PromFamily[]> => {
      const res = await fetch(`http://127.0.0.1:${bridge.port}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      if (res.status !== 200) throw new Error(`/metrics of the bridge on ${bridge.port}: ${res.status}`);
      return parsePrometheus(await res.text());
    };
    return {
      url: `https://127.0.0.1:${https}`,
      lbPort: https!,
      originPort: origin!,
      edgePorts,
      bridges,
      ca: readFileSync(certs.caCert),
      caCertPath: certs.caCert,
      token,
      prefix,
      metrics,
      watchState: async (bridge) => {
        const m = await metrics(bridge);
        return {
          viewers: promValue(m, 'onair_watch_viewers', { transport: 'ws' }),
          upstreams: promValue(m, 'onair_watch_upstreams'),
          streams: promValue(m, 'onair_watch_streams'),
          upstreamReconnects: promValue(m, 'onair_watch_upstream_reconnects_total'),
        };
      },
      readyz: async (bridge) => (await fetch(`http://127.0.0.1:${bridge.port}/readyz`)).status,
      publish: async (stream) => {
        made ??= runChecked('ffmpeg', [
          '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
          '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
          '-t', '10', '-map', '0:v', '-map', '1:a',
          '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-bf', '0', '-g', '60', '-keyint_min', '60', '-sc_threshold', '0',
          '-b:v', '900k', '-maxrate', '900k', '-bufsize', '1800k', '-c:a', 'aac', '-ac', '2', '-ar', '48000', '-b:a', '96k',
          '-f', 'flv', file,
        ], { timeoutMs: 120_000 });
        await made;
        const child = spawnTracked('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', file, '-c', 'copy', '-f', 'flv', `rtmp://127.0.0.1:${origin}/live/${stream}`]);
        started.push(child);
        return child;
      },
      nginxLogTail: () => readFileSync(join(prefix, 'error.log'), 'utf8').trimEnd().split('\n').slice(-20).join('\n'),
      dispose: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** Writes the unit with its command pointing at this checkout's `onair`, for systemd-analyze verify. */
export function unitForVerify(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'onair.service');
  writeFileSync(path, substitute(readFileSync(DEPLOY_UNIT, 'utf8'), [['/usr/bin/onair', ONAIR_BIN]]));
  return path;
}

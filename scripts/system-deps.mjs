// System tools npm cannot install: ffmpeg/ffprobe (fixtures, judging), nginx with the RTMP and
// stream modules (reference server, TLS terminator), openssl (test CA) and Chromium (browser
// tests). Installs them with apt when it can, otherwise stops with the exact command to run.
//   node scripts/system-deps.mjs            check, install if root on Debian/Ubuntu
//   node scripts/system-deps.mjs --check    check only
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const NGINX_MODULES = ['/usr/lib/nginx/modules/ngx_rtmp_module.so', '/usr/lib/nginx/modules/ngx_stream_module.so'];
export const APT_PACKAGES = ['ffmpeg', 'nginx', 'libnginx-mod-rtmp', 'libnginx-mod-stream', 'chromium', 'openssl', 'fonts-dejavu-core'];

function onPath(command) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return join(dir, command);
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** The browser the e2e tests launch: $CHROMIUM_PATH, else the Debian package's binary. */
export function chromiumPath() {
  return process.env.CHROMIUM_PATH || '/usr/bin/chromium';
}

function osRelease() {
  try {
    const fields = {};
    for (const line of readFileSync('/etc/os-release', 'utf8').split('\n')) {
      const m = /^(\w+)=("?)(.*)\2$/.exec(line);
      if (m) fields[m[1]] = m[3];
    }
    return fields;
  } catch {
    return {};
  }
}

function isUbuntu() {
  const os = osRelease();
  return os.ID === 'ubuntu' || (os.ID_LIKE ?? '').split(' ').includes('ubuntu');
}

function isDebianLike() {
  const os = osRelease();
  return os.ID === 'debian' || os.ID === 'ubuntu' || /\b(debian|ubuntu)\b/.test(os.ID_LIKE ?? '');
}

// Chromium needs at least one font to render page text; minimal images have none.
const DEJAVU = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';

// Ubuntu's chromium and chromium-browser .debs only install a wrapper that runs the snap,
// which does not work in containers or CI runners without snapd.
function isSnapStub(path) {
  try {
    if (realpathSync(path).startsWith('/snap/')) return true;
    const head = readFileSync(path).subarray(0, 4096).toString('latin1');
    return head.startsWith('#!') && head.includes('snap');
  } catch {
    return false;
  }
}

function nginxLoadsModules() {
  const dir = mkdtempSync(join(tmpdir(), 'onair-nginx-check-'));
  try {
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, `${NGINX_MODULES.map((m) => `load_module ${m};`).join('\n')}\nevents {}\n`);
    const r = spawnSync('nginx', ['-t', '-q', '-p', dir, '-c', conf, '-e', join(dir, 'error.log')], { encoding: 'utf8' });
    return r.status === 0 ? undefined : (r.stderr || r.stdout).trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What is missing, one human-readable line each; empty when everything is there. */
export function findMissing() {
  const missing = [];
  for (const tool of ['ffmpeg', 'ffprobe', 'nginx', 'openssl']) {
    if (!onPath(tool)) missing.push(`${tool}: not on PATH`);
  }
  if (onPath('ffmpeg')) {
    const encoders = spawnSync('ffmpeg', ['-hide_banner', '-encoders'], { encoding: 'utf8' }).stdout ?? '';
    if (!/\blibx264\b/.test(encoders)) missing.push('ffmpeg: built without libx264 (the test fixtures are H.264)');
  }
  const absent = NGINX_MODULES.filter((m) => !existsSync(m));
  for (const m of absent) missing.push(`nginx module ${m}: not installed`);
  if (onPath('nginx') && absent.length === 0) {
    const error = nginxLoadsModules();
    if (error) missing.push(`nginx cannot load its RTMP/stream modules: ${error}`);
  }
  const chromium = chromiumPath();
  if (!existsSync(chromium)) missing.push(`Chromium: ${chromium} not found${process.env.CHROMIUM_PATH ? ' (from $CHROMIUM_PATH)' : ''}`);
  else if (isSnapStub(chromium)) missing.push(`Chromium: ${chromium} is a wrapper around the snap package, which does not run here`);
  if (isDebianLike() && !existsSync(DEJAVU)) missing.push(`fonts: ${DEJAVU} not installed (fonts-dejavu-core)`);
  return missing;
}

function run(command, args) {
  console.error(`system-deps: running: ${[command, ...args].join(' ')}`);
  const r = spawnSync(command, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return r.status ?? 1;
}

/**
 * Checks the system tools and installs them with apt-get when running as root on Debian or
 * Ubuntu. Returns 0 when everything is present, else 1 after printing what to do.
 */
export function ensureSystemDeps({ install = true } = {}) {
  let missing = findMissing();
  if (missing.length === 0) return 0;
  console.error(`system-deps: missing:\n  ${missing.join('\n  ')}`);

  const ubuntu = isUbuntu();
  // On Ubuntu the chromium package is the snap stub: install the rest and point at a real browser.
  const packages = ubuntu ? APT_PACKAGES.filter((p) => p !== 'chromium') : APT_PACKAGES;
  const hasApt = onPath('apt-get') !== undefined;
  const isRoot = process.getuid?.() === 0;
  const aptCommand = `apt-get update && apt-get install -y --no-install-recommends ${packages.join(' ')}`;

  if (install && hasApt && isRoot) {
    if (run('apt-get', ['update']) !== 0 || run('apt-get', ['install', '-y', '--no-install-recommends', ...packages]) !== 0) {
      console.error('system-deps: apt-get failed (output above).');
      return 1;
    }
    missing = findMissing();
    if (missing.length === 0) {
      console.error('system-deps: all system dependencies are installed.');
      return 0;
    }
    console.error(`system-deps: still missing after apt-get:\n  ${missing.join('\n  ')}`);
  } else if (hasApt) {
    console.error(`system-deps: ${install ? 'not root, so not installing' : 'check only'}. Run:\n  sudo sh -c '${aptCommand}'`);
  } else {
    console.error(
      'system-deps: no apt-get here. Install with your package manager: ffmpeg (with libx264), ffprobe, ' +
        `nginx with the RTMP and stream modules at ${NGINX_MODULES.join(' and ')}, openssl, Chromium.`,
    );
  }
  if (missing.some((m) => m.startsWith('Chromium'))) {
    console.error(
      ubuntu
        ? "system-deps: Ubuntu's chromium package is only a wrapper around the snap, which does not run in containers or CI. " +
            'Install Google Chrome (or a Chromium build without snap) and set CHROMIUM_PATH to its binary.'
        : 'system-deps: set CHROMIUM_PATH to a Chromium or Chrome binary if it is not at /usr/bin/chromium.',
    );
  }
  return 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = ensureSystemDeps({ install: !process.argv.includes('--check') });
  if (process.exitCode === 0) console.error('system-deps: ffmpeg, ffprobe, nginx (rtmp, stream), openssl, Chromium and fonts are present.');
}

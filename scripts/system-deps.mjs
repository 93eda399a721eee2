// System tools npm cannot install: ffmpeg/ffprobe (fixtures, judging), nginx with the RTMP and
// stream modules (reference server, TLS terminator), openssl (test CA) and the three browser
// engines the e2e tests drive: Chromium, Firefox ESR (WebDriver BiDi) and WebKitGTK
// (WebKitWebDriver + MiniBrowser under Xvfb, GStreamer plugins for its codecs). Installs them
// with apt when it can, otherwise stops with the exact command to run.
//   node scripts/system-deps.mjs            check, install if root on Debian/Ubuntu
//   node scripts/system-deps.mjs --check    check only
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** What a passing check means, for the scripts that report it. */
export const PRESENT = 'ffmpeg, ffprobe, nginx (rtmp, stream), openssl, fonts, Chromium, Firefox, WebKitGTK (WebKitWebDriver, MiniBrowser, GStreamer plugins) and Xvfb are present';

export const NGINX_MODULES = ['/usr/lib/nginx/modules/ngx_rtmp_module.so', '/usr/lib/nginx/modules/ngx_stream_module.so'];
export const APT_PACKAGES = [
  'ffmpeg', 'nginx', 'libnginx-mod-rtmp', 'libnginx-mod-stream', 'chromium', 'openssl', 'fonts-dejavu-core',
  'firefox-esr', 'webkit2gtk-driver', 'gstreamer1.0-libav', 'gstreamer1.0-plugins-good', 'gstreamer1.0-plugins-bad', 'gstreamer1.0-plugins-ugly', 'xvfb',
];
// Not in Ubuntu's archive (its firefox is a snap wrapper): FIREFOX_PATH points at a real one.
const NOT_ON_UBUNTU = ['chromium', 'firefox-esr'];
// One GStreamer plugin per package that WebKitGTK needs for H.264/AAC encode and MSE playback:
// libav (AAC and H.264 decoders), good (MP4 demuxer), bad (H.264 parser), ugly (x264 encoder).
const GSTREAMER_PLUGINS = {
  'gstreamer1.0-libav': 'libgstlibav.so',
  'gstreamer1.0-plugins-good': 'libgstisomp4.so',
  'gstreamer1.0-plugins-bad': 'libgstvideoparsersbad.so',
  'gstreamer1.0-plugins-ugly': 'libgstx264.so',
};

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

/** Firefox for the e2e tests: $FIREFOX_PATH, else firefox-esr or firefox from PATH. */
export function firefoxPath() {
  return process.env.FIREFOX_PATH || onPath('firefox-esr') || onPath('firefox') || '/usr/bin/firefox-esr';
}

/** WebKitGTK's WebDriver server: $WEBKIT_WEBDRIVER_PATH, else WebKitWebDriver from PATH. */
export function webkitDriverPath() {
  return process.env.WEBKIT_WEBDRIVER_PATH || onPath('WebKitWebDriver') || '/usr/bin/WebKitWebDriver';
}

// Where Debian's and Ubuntu's libwebkit2gtk-4.1-0 put MiniBrowser: under the multiarch
// library directory, which differs per architecture.
function libDirs() {
  const dirs = ['/usr/lib', '/usr/libexec'];
  try {
    for (const entry of readdirSync('/usr/lib', { withFileTypes: true })) {
      if (entry.isDirectory() && /-linux-gnu/.test(entry.name)) dirs.push(join('/usr/lib', entry.name));
    }
  } catch {
    // no /usr/lib: nothing is found and findMissing says so
  }
  return dirs;
}

/** WebKitGTK's MiniBrowser, which WebKitWebDriver starts: $WEBKIT_MINIBROWSER_PATH, else the package's. */
export function miniBrowserPath() {
  if (process.env.WEBKIT_MINIBROWSER_PATH) return process.env.WEBKIT_MINIBROWSER_PATH;
  for (const dir of libDirs()) {
    const candidate = join(dir, 'webkit2gtk-4.1', 'MiniBrowser');
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** The GStreamer packages whose plugin is not installed. */
function missingGstreamer() {
  const pluginDirs = libDirs().map((dir) => join(dir, 'gstreamer-1.0'));
  return Object.entries(GSTREAMER_PLUGINS)
    .filter(([, plugin]) => !pluginDirs.some((dir) => existsSync(join(dir, plugin))))
    .map(([pkg, plugin]) => `${pkg}: GStreamer plugin ${plugin} not found`);
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
  const firefox = firefoxPath();
  if (!existsSync(firefox)) missing.push(`Firefox: ${firefox} not found${process.env.FIREFOX_PATH ? ' (from $FIREFOX_PATH)' : ''}`);
  else if (isSnapStub(firefox)) missing.push(`Firefox: ${firefox} is a wrapper around the snap package, which does not run here`);
  if (!existsSync(webkitDriverPath())) missing.push(`WebKitWebDriver: ${webkitDriverPath()} not found (webkit2gtk-driver)`);
  const miniBrowser = miniBrowserPath();
  if (miniBrowser === undefined) missing.push('WebKitGTK MiniBrowser: not found (libwebkit2gtk-4.1-0, which webkit2gtk-driver brings)');
  else if (!existsSync(miniBrowser)) missing.push(`WebKitGTK MiniBrowser: ${miniBrowser} not found (from $WEBKIT_MINIBROWSER_PATH)`);
  missing.push(...missingGstreamer());
  if (!onPath('Xvfb')) missing.push('Xvfb: not on PATH (xvfb; WebKitGTK needs an X display)');
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
  // On Ubuntu the chromium package is the snap stub and firefox-esr is not in the archive:
  // install the rest and point at real browsers.
  const packages = ubuntu ? APT_PACKAGES.filter((p) => !NOT_ON_UBUNTU.includes(p)) : APT_PACKAGES;
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
        `nginx with the RTMP and stream modules at ${NGINX_MODULES.join(' and ')}, openssl, Chromium, Firefox, ` +
        'WebKitGTK 4.1 with WebKitWebDriver and MiniBrowser, the GStreamer libav/good/bad/ugly plugins, Xvfb.',
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
  if (missing.some((m) => m.startsWith('Firefox'))) {
    console.error(
      ubuntu
        ? "system-deps: Ubuntu's firefox package is only a wrapper around the snap and it has no firefox-esr: " +
            "install Mozilla's Firefox (ESR 128 or later, not the snap) and set FIREFOX_PATH to its binary."
        : 'system-deps: set FIREFOX_PATH to a Firefox binary (ESR 128 or later) if firefox-esr is not on PATH.',
    );
  }
  return 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = ensureSystemDeps({ install: !process.argv.includes('--check') });
  if (process.exitCode === 0) console.error(`system-deps: ${PRESENT}.`);
}

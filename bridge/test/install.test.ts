import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SERVE_HELP, SERVE_OPTIONS, envName } from '../src/serve.js';
import { ffmpegPublish } from './harness/ffmpeg.js';
import { REPO_ROOT, shortFlv } from './harness/fixtures.js';
import { freePort, waitForPort } from './harness/ports.js';
import { makeTempDir, runChecked, spawnTracked } from './harness/proc.js';
import { describeResult, killOnairProcesses, runOnair, startOnair } from './harness/run.js';

// onair installed and configured the way a server is: the tarball `npm pack` makes, installed with
// `npm install -g`, and `onair serve` set up by options, ONAIR_* variables and a --config file,
// all through the real CLI.

const VERSION = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

afterAll(killOnairProcesses);

function configFile(settings: object): string {
  const path = join(makeTempDir('onair-config-'), 'onair.json');
  writeFileSync(path, JSON.stringify(settings));
  return path;
}

async function printConfig(args: string[], env: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const r = await runOnair(['serve', ...args, '--print-config'], { env });
  expect(r.code, describeResult(r)).toBe(0);
  return JSON.parse(r.stdout.toString()) as Record<string, unknown>;
}

describe('onair serve configuration', () => {
  it('prints the version', async () => {
    for (const flag of ['--version', '-v']) {
      const r = await runOnair([flag]);
      expect(r.code, describeResult(r)).toBe(0);
      expect(r.stdout.toString()).toBe(`${VERSION}\n`);
    }
  });

  it('documents every option with its environment variable', () => {
    for (const name of Object.keys(SERVE_OPTIONS)) {
      expect(SERVE_HELP).toContain(`--${name}`);
      if (name !== 'help' && name !== 'print-config') expect(SERVE_HELP).toContain(`[${envName(name)}`);
    }
  });

  it('takes options over environment variables over the config file over defaults', async () => {
    const file = configFile({ port: 9001, host: '::1', 'max-viewers': 50, 'resume-grace': 2.5, 'allow-origin': ['https://file.example'], verbose: true, 'max-upstreams': null });
    const env = { ONAIR_PORT: '9002', ONAIR_HOST: '127.0.0.2' };
    const shown = await printConfig(['--config', file, '--port', '9003'], env);
    expect(shown).toMatchObject({
      port: 9003, // option
      host: '127.0.0.2', // variable over the file
      'max-viewers': 50, // file over the default
      'resume-grace': 2.5,
      'allow-origin': ['https://file.example'],
      verbose: true,
      'max-upstreams': 64, // null in the file: the default
      'max-sessions': 16, // default
      'no-local-rtmp': false,
      'allow-private-destinations': null, // no default: the policy decides by the bind
    });
    // Every option that configures the server is shown, and nothing else.
    expect(Object.keys(shown).sort()).toEqual(Object.keys(SERVE_OPTIONS).filter((k) => !['config', 'print-config', 'help'].includes(k)).sort());
    // ONAIR_CONFIG names the file as --config does; an empty variable counts as unset.
    expect(await printConfig([], { ONAIR_CONFIG: file, ONAIR_HOST: '' })).toMatchObject({ port: 9001, host: '::1', 'max-viewers': 50 });
    // A variable's list is comma-separated, and wins over the file's.
    expect(await printConfig(['--config', file], { ONAIR_ALLOW_ORIGIN: 'https://a.example, https://b.example' })).toMatchObject({ 'allow-origin': ['https://a.example', 'https://b.example'] });
  });

  it('never prints the token, from any source', async () => {
    const secrets = ['file-secret-4f1c', 'env-secret-9a2b', 'flag-secret-7d3e'];
    const file = configFile({ token: secrets[0] });
    const runs = [
      runOnair(['serve', '--config', file, '--print-config']),
      runOnair(['serve', '--config', file, '--print-config'], { env: { ONAIR_TOKEN: secrets[1]! } }),
      runOnair(['serve', '--config', file, '--token', secrets[2]!, '--print-config'], { env: { ONAIR_TOKEN: secrets[1]! } }),
    ];
    for (const r of await Promise.all(runs)) {
      expect(r.code, describeResult(r)).toBe(0);
      const out = r.stdout.toString() + r.stderr;
      for (const secret of secrets) expect(out).not.toContain(secret);
      expect(JSON.parse(r.stdout.toString())).toMatchObject({ token: '***' });
    }
    expect(await printConfig([])).toMatchObject({ token: null });
  });

  it('refuses a bad config file with a line that names the problem and not the secret', async () => {
    const cases: [string, RegExp][] = [
      [JSON.stringify({ prot: 8080 }), /unknown option "prot"/],
      [JSON.stringify({ port: true }), /"port" takes a string or a number/],
      [JSON.stringify({ verbose: 'yes' }), /"verbose" takes true or false/],
      [JSON.stringify({ 'allow-origin': [{}] }), /"allow-origin" takes a string or a list of strings/],
      [JSON.stringify({ 'print-config': true }), /unknown option "print-config"/],
      [JSON.stringify({ port: 70_000 }), /port "70000" is not a port number/],
      [JSON.stringify(['port', 8080]), /not a JSON object/],
      ['{"token": "leaky-secret-5e6f", }', /is not valid JSON/],
    ];
    const results = await Promise.all(
      cases.map(([text]) => {
        const path = join(makeTempDir('onair-config-'), 'bad.json');
        writeFileSync(path, text);
        return runOnair(['serve', '--config', path, '--print-config']);
      }),
    );
    results.forEach((r, i) => {
      expect(r.code, describeResult(r)).toBe(1);
      expect(r.stdout.length).toBe(0);
      expect(r.stderr).toMatch(cases[i]![1]);
      expect(r.stderr).not.toContain('leaky-secret');
    });
    const missing = await runOnair(['serve', '--config', join(makeTempDir('onair-config-'), 'none.json')]);
    expect(missing.code, describeResult(missing)).toBe(1);
    expect(missing.stderr).toMatch(/cannot read the config file .*none\.json \(ENOENT\)/);
  });

  it('runs the server the config file describes', async () => {
    const port = await freePort();
    const web = makeTempDir('onair-web-');
    writeFileSync(join(web, 'index.html'), '<!doctype html><title>from the config file</title>\n');
    const file = configFile({ port, 'no-local-rtmp': true, 'web-root': web });
    const onair = startOnair(['serve', '--config', file]);
    try {
      await waitForPort(port, 60_000);
      const page = await fetch(`http://127.0.0.1:${port}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('from the config file');
      // no-local-rtmp from the file: the studio has no embedded server to offer.
      expect(await (await fetch(`http://127.0.0.1:${port}/api/config`)).json()).toMatchObject({ localRtmp: null });
    } finally {
      onair.kill('SIGTERM');
      const r = await onair.result;
      expect(r.code, describeResult(r)).toBe(0);
    }
  });
});

interface PackageJson {
  version: string;
  dependencies?: Record<string, string>;
}

const readPackage = (path: string): PackageJson => JSON.parse(readFileSync(path, 'utf8')) as PackageJson;

/** Every file under `dir`, relative to it, outside node_modules. */
function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) => {
    const path = prefix === '' ? e.name : `${prefix}/${e.name}`;
    if (!e.isDirectory()) return [path];
    return e.name === 'node_modules' ? [] : filesUnder(dir, path);
  });
}

describe('the packed tarball', () => {
  it('declares the bridge\'s runtime dependencies, which the installed package resolves', () => {
    const root = readPackage(join(REPO_ROOT, 'package.json'));
    const bridge = readPackage(join(REPO_ROOT, 'bridge', 'package.json'));
    for (const [name, range] of Object.entries(bridge.dependencies ?? {})) {
      expect(root.dependencies?.[name], name).toBe(name === '@onair/shared' ? 'file:shared' : range);
    }
  });

  // About 20 s on this machine: npm pack 3 s (the build is fresh), npm install from the npm
  // cache 5 s (the registry only for what the cache lacks), then serve and one ffmpeg publish.
  it('installs with npm install -g on a clean prefix, and its onair serves the studio', async () => {
    const dir = makeTempDir('onair-pack-');
    const packed = JSON.parse((await runChecked('npm', ['pack', '--json', '--pack-destination', dir], { cwd: REPO_ROOT, captureStdout: true })).toString()) as [{ filename: string; files: { path: string }[] }];
    const contents = packed[0].files.map((f) => f.path);
    expect(contents).toEqual(expect.arrayContaining(['bridge/bin/onair.mjs', 'bridge/dist/cli.js', 'bridge/dist/local-rtmp/child.js', 'shared/dist/index.js', 'web/dist/index.html']));
    // Compiled JavaScript and the built web app only: no sources, no source maps, no types.
    expect(contents.filter((p) => /\.(ts|map)$|(^|\/)src\//.test(p))).toEqual([]);

    const prefix = join(dir, 'prefix');
    await runChecked('npm', ['install', '-g', '--prefix', prefix, join(dir, packed[0].filename), '--prefer-offline', '--no-audit', '--no-fund'], { cwd: dir });
    const installed = join(prefix, 'lib', 'node_modules', 'onair');
    expect(filesUnder(installed).filter((p) => p.endsWith('.ts'))).toEqual([]);
    for (const tool of ['typescript', 'vite', 'svelte', 'vitest']) expect(existsSync(join(installed, 'node_modules', tool)), tool).toBe(false);

    const bin = join(prefix, 'bin', 'onair');
    expect((await runChecked(bin, ['--version'], { cwd: dir, captureStdout: true })).toString()).toBe(`${VERSION}\n`);

    const [port, rtmpPort] = [await freePort(), await freePort()];
    const onair = spawnTracked(bin, ['serve', '--port', String(port), '--local-rtmp-port', String(rtmpPort), '--config-dir', join(dir, 'config')], { cwd: dir });
    try {
      await waitForPort(port, 60_000);
      const page = await fetch(`http://127.0.0.1:${port}/`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await page.text();
      const script = /<script type="module"[^>]* src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
      expect(script, html).toBeDefined();
      const asset = await fetch(`http://127.0.0.1:${port}${script!}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('content-type')).toMatch(/^text\/javascript/);
      expect((await asset.text()).length).toBeGreaterThan(10_000);
      // The embedded RTMP server (node-media-server, in its own process) takes a publisher.
      await ffmpegPublish(await shortFlv(), `rtmp://127.0.0.1:${rtmpPort}/live/install-test`);
    } finally {
      const exit = await onair.stop('SIGTERM', 10_000);
      expect(exit.code, onair.tail()).toBe(0);
    }
  }, 180_000);
});

describe('a fresh checkout', () => {
  // About 30 s here, most of it compiling: the repository's files (tracked and new, as git lists
  // them) copied without any build, its node_modules linked in as `npm ci` would have made them.
  it('onair serve builds the bridge and the web app it serves instead of answering 503', async () => {
    const clone = makeTempDir('onair-clone-');
    mkdirSync(join(clone, 'node_modules', '@onair'), { recursive: true });
    const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO_ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
    for (const file of files) {
      if (!existsSync(join(REPO_ROOT, file))) continue; // deleted, not yet committed
      mkdirSync(join(clone, file, '..'), { recursive: true });
      cpSync(join(REPO_ROOT, file), join(clone, file));
    }
    // Its own workspace links (node_modules/@onair/* → its folders); every other package the repository's.
    for (const name of readdirSync(join(REPO_ROOT, 'node_modules'))) {
      if (name !== '@onair' && name !== '.cache') symlinkSync(join(REPO_ROOT, 'node_modules', name), join(clone, 'node_modules', name));
    }
    for (const workspace of ['shared', 'bridge', 'web', 'e2e']) symlinkSync(join('..', '..', workspace), join(clone, 'node_modules', '@onair', workspace));
    expect(existsSync(join(clone, 'web', 'dist'))).toBe(false);
    expect(existsSync(join(clone, 'bridge', 'dist'))).toBe(false);

    const port = await freePort();
    const onair = spawnTracked(process.execPath, [join(clone, 'bridge', 'bin', 'onair.mjs'), 'serve', '--port', String(port), '--no-local-rtmp'], { cwd: clone, keepLines: 100 });
    try {
      await waitForPort(port, 150_000, () => onair.process.exitCode === null);
      expect(onair.tail()).toMatch(/building the bridge… done[\s\S]*building the web app…[\s\S]*done/);
      const page = await fetch(`http://127.0.0.1:${port}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toMatch(/<script type="module"[^>]* src="\/assets\//);
      expect(existsSync(join(clone, 'web', 'dist', 'index.html'))).toBe(true);
    } finally {
      const exit = await onair.stop('SIGTERM', 10_000);
      expect(exit.code, onair.tail()).toBe(0);
    }
  }, 240_000);
});

// Builds what a checkout of the repository runs from, when its sources are newer than the last
// build: the bridge (TypeScript → bridge/dist, shared/dist) and the web app (Vite → web/dist).
// `npx onair`, `npm start`, the test setup and `npm pack` (prepack) come through here;
// `node scripts/build.mjs --pack` also removes compiled files whose source is gone, so a tarball
// holds only what the sources make.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

/** The newest modification time under `dir`, of the files `keep` accepts (folders: their name). */
function newest(dir, keep) {
  let n = -1;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!keep(entry)) continue;
    const path = join(dir, entry.name);
    n = Math.max(n, entry.isDirectory() ? newest(path, keep) : mtime(path));
  }
  return n;
}

// Test helpers (shared/src/testing) are not part of the build: tsc -b leaves its build info alone for them.
const bridgeSource = (e) => (e.isDirectory() ? e.name !== 'testing' : e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'));
const webSource = (e) => e.name !== 'dist' && e.name !== 'node_modules';

function run(what, script, args) {
  // By path: vite's package exports do not include its bin.
  const bin = join(root, 'node_modules', script);
  if (!existsSync(bin)) {
    console.error(`onair: ${what} is not built and its build tools are missing. Run \`npm ci\` in the repository first.`);
    return false;
  }
  process.stderr.write(`onair: building ${what}… `);
  const built = spawnSync(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (built.status !== 0) {
    console.error(`\nonair: building ${what} failed (errors above).`);
    return false;
  }
  process.stderr.write('done\n');
  return true;
}

/** Compiles the bridge (and shared) when a source is newer than the last build; false if that failed. */
export function buildBridge() {
  const bridge = join(root, 'bridge');
  const sources = Math.max(newest(join(root, 'shared', 'src'), bridgeSource), newest(join(bridge, 'src'), bridgeSource), mtime(join(root, 'tsconfig.base.json')));
  // tsc -b rewrites (or touches) its build info on every build, so `npm run build` counts too.
  if (mtime(join(bridge, 'tsconfig.tsbuildinfo')) >= sources && mtime(join(bridge, 'dist', 'cli.js')) >= 0) return true;
  return run('the bridge', 'typescript/bin/tsc', ['-b', bridge]);
}

/** Builds the web app into web/dist when a source is newer than its index.html; false if that failed. */
export function buildWeb() {
  const sources = Math.max(newest(join(root, 'web'), webSource), newest(join(root, 'shared', 'src'), webSource), mtime(join(root, 'vite.config.ts')));
  if (mtime(join(root, 'web', 'dist', 'index.html')) >= sources) return true;
  return run('the web app', 'vite/bin/vite.js', ['build', '--logLevel', 'warn']);
}

/** Removes files in `dist` whose TypeScript source in `src` is gone (a renamed or deleted module). */
function pruneOrphans(dist, src) {
  for (const entry of readdirSync(dist, { withFileTypes: true })) {
    const path = join(dist, entry.name);
    if (entry.isDirectory()) {
      if (mtime(join(src, entry.name)) < 0) rmSync(path, { recursive: true, force: true });
      else pruneOrphans(path, join(src, entry.name));
      continue;
    }
    const stem = entry.name.replace(/\.(js|d\.ts)(\.map)?$/, '');
    if (stem !== entry.name && mtime(join(src, `${stem}.ts`)) < 0) rmSync(path, { force: true });
  }
}

// import.meta.url is the real path; argv[1] keeps any symbolic link on the way.
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const pack = process.argv.includes('--pack');
  if (!buildBridge() || !buildWeb()) process.exit(1);
  if (pack) for (const dir of ['bridge', 'shared']) pruneOrphans(join(root, dir, 'dist'), join(root, dir, 'src'));
}

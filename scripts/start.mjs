// `npm start`: builds the web app when its sources are newer than the build, then runs
// `onair serve` with any extra arguments (`npm start -- --port 9000`).
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function newest(path) {
  const info = statSync(path);
  if (!info.isDirectory()) return info.mtimeMs;
  let n = 0;
  for (const name of readdirSync(path)) {
    if (name === 'dist' || name === 'node_modules') continue;
    n = Math.max(n, newest(join(path, name)));
  }
  return n;
}

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

const webSources = Math.max(newest(join(root, 'web')), newest(join(root, 'shared', 'src')), mtime(join(root, 'vite.config.ts')));
if (mtime(join(root, 'web', 'dist', 'index.html')) < webSources) {
  console.error('onair: building the web app…');
  const vite = spawnSync(process.execPath, [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--logLevel', 'warn'], {
    cwd: root,
    stdio: 'inherit',
  });
  if (vite.status !== 0) {
    console.error('onair: the web build failed (errors above).');
    process.exit(1);
  }
}

const child = spawn(process.execPath, [join(root, 'bridge', 'bin', 'onair.mjs'), 'serve', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

#!/usr/bin/env node
// Entry point of the `onair` command. The bridge is TypeScript compiled to bridge/dist; from a
// fresh clone (`npm ci`, then `npx onair …`) nothing is compiled yet, so build first when the
// sources are newer than the last build.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bridgeDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const root = join(bridgeDir, '..');
// tsc -b rewrites (or touches) its build info on every build, so `npm run build` counts too.
const buildInfo = join(bridgeDir, 'tsconfig.tsbuildinfo');

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    // Test helpers (shared/src/testing) are not part of the build: tsc -b leaves its build info alone for them.
    if (entry.isDirectory()) newest = entry.name === 'testing' ? newest : Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

const sources = Math.max(
  newestSource(join(root, 'shared', 'src')),
  newestSource(join(bridgeDir, 'src')),
  mtime(join(root, 'tsconfig.base.json')),
);
if (mtime(buildInfo) < sources || mtime(join(bridgeDir, 'dist', 'cli.js')) < 0) {
  let tsc;
  try {
    tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  } catch {
    console.error('onair: the bridge is not built and TypeScript is missing. Run `npm ci` in the repository first.');
    process.exit(1);
  }
  process.stderr.write('onair: building the bridge… ');
  const built = spawnSync(process.execPath, [tsc, '-b', bridgeDir], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (built.status !== 0) {
    console.error('\nonair: the build failed (errors above).');
    process.exit(1);
  }
  process.stderr.write('done\n');
}

const { main } = await import('../dist/cli.js');
process.exitCode = await main(process.argv.slice(2));

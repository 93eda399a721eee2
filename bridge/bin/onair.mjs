#!/usr/bin/env node
// Entry point of the `onair` command. An installed package (npm pack, then npm install -g) holds
// the compiled bridge and the built web app only. In a checkout of the repository (`npm ci`, then
// `npx onair …`) the bridge is built first when its sources are newer than the last build, and
// so is the web app before `serve` needs it.
import { existsSync } from 'node:fs';

const args = process.argv.slice(2);
if (existsSync(new URL('../src/', import.meta.url))) {
  const { buildBridge, buildWeb } = await import('../../scripts/build.mjs');
  if (!buildBridge()) process.exit(1);
  // A --web-root of its own needs no build; an option in a --config file is not looked at here.
  const ownWebRoot = args.some((a) => a === '--web-root' || a.startsWith('--web-root=')) || (process.env.ONAIR_WEB_ROOT ?? '') !== '';
  const serving = args[0] === 'serve' && !args.some((a) => ['-h', '--help', '--print-config'].includes(a));
  if (serving && !ownWebRoot && !buildWeb()) process.exit(1);
}

const { main } = await import('../dist/cli.js');
process.exitCode = await main(args);

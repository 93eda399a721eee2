import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildWeb } from '../../scripts/build.mjs';

// Tests spawn the `onair` CLI, which builds itself when stale. Build once here, before any
// test runs, so parallel tests never race to compile and never count compile time.
// Every `onair serve` a test starts keeps its restream setup in a directory of the run's own,
// never in the user's ~/.config/onair. Returns the teardown.
export default function setup(): () => void {
  const configDir = mkdtempSync(join(tmpdir(), 'onair-test-config-'));
  process.env['ONAIR_CONFIG_DIR'] ??= configDir;
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const bridge = fileURLToPath(new URL('..', import.meta.url));
  const built = spawnSync(process.execPath, [tsc, '-b', bridge], { stdio: 'inherit' });
  if (built.status !== 0) throw new Error('building the bridge failed (errors above)');
  // `onair serve` (without --web-root) builds a stale web app itself: here, once, for the same reason.
  if (!buildWeb()) throw new Error('building the web app failed (errors above)');
  return () => rmSync(configDir, { recursive: true, force: true });
}

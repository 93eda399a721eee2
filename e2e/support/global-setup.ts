import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Builds the web app the bridge serves (the bridge builds itself on start), and gives every
 * `onair serve` of the run a restream setup directory of its own instead of ~/.config/onair.
 * Returns the teardown.
 */
export default function globalSetup(): () => void {
  const configDir = mkdtempSync(join(tmpdir(), 'onair-e2e-config-'));
  process.env['ONAIR_CONFIG_DIR'] ??= configDir;
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const built = spawnSync(process.execPath, ['node_modules/vite/bin/vite.js', 'build', '--logLevel', 'warn'], { cwd: root, stdio: 'inherit' });
  if (built.status !== 0) throw new Error('vite build failed');
  return () => rmSync(configDir, { recursive: true, force: true });
}

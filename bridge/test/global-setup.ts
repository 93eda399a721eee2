import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// Tests spawn the `onair` CLI, which builds itself when stale. Build once here, before any
// test runs, so parallel tests never race to compile and never count compile time.
export default function setup(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const bridge = fileURLToPath(new URL('..', import.meta.url));
  const built = spawnSync(process.execPath, [tsc, '-b', bridge], { stdio: 'inherit' });
  if (built.status !== 0) throw new Error('building the bridge failed (errors above)');
}

// `npm run bench`: builds, then runs every bench/*.bench.mjs in turn (or the ones named:
// `npm run bench -- rtmp`). Each writes its figures under docs/bench/.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (args) => spawnSync(args[0], args.slice(1), { cwd: root, stdio: 'inherit' }).status ?? 1;

if (run(['npm', 'run', 'build', '--silent']) !== 0) process.exit(1);

const wanted = process.argv.slice(2);
const benches = readdirSync(join(root, 'bench'))
  .filter((name) => name.endsWith('.bench.mjs'))
  .filter((name) => wanted.length === 0 || wanted.includes(name.replace('.bench.mjs', '')))
  .sort();
if (benches.length === 0) {
  console.error(`no benchmark matches ${wanted.join(', ')}`);
  process.exit(2);
}
let failed = 0;
for (const name of benches) {
  console.log(`\n=== ${name} ===`);
  if (run([process.execPath, join(root, 'bench', name)]) !== 0) {
    console.error(`${name} failed`);
    failed++;
  }
}
process.exit(failed > 0 ? 1 : 0);

// `npm test`: everything a fresh clone needs to prove itself, in order, stopping at the first
// failure with its exit status. The last line, `N passed, M failed`, sums vitest and
// Playwright; CI reads it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureSystemDeps, PRESENT } from './system-deps.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const reports = mkdtempSync(join(tmpdir(), 'onair-test-'));
const totals = { passed: 0, failed: 0, skipped: 0 };

function finish(status, why) {
  rmSync(reports, { recursive: true, force: true });
  if (why) console.error(`npm test: ${why}`);
  if (totals.skipped > 0) console.log(`${totals.skipped} skipped`);
  console.log(`${totals.passed} passed, ${totals.failed} failed`);
  process.exit(status);
}

function step(title, command, args, env = {}) {
  console.log(`\n── ${title}: ${[command, ...args].join(' ')}`);
  const r = spawnSync(command, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...env } });
  if (r.error) finish(1, `${title}: could not run ${command}: ${r.error.message}`);
  return r.status ?? 1;
}

function readJson(path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

console.log('── system dependencies');
if (ensureSystemDeps() !== 0) finish(1, 'system dependencies are missing (see above)');
console.log(PRESENT);

let status = step('build', 'npm', ['run', 'build']);
if (status !== 0) finish(status, `build failed (exit ${status})`);
status = step('check', 'npm', ['run', 'check']);
if (status !== 0) finish(status, `check failed (exit ${status})`);

const vitestJson = join(reports, 'vitest.json');
status = step('unit and integration tests', 'npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${vitestJson}`]);
const vitest = readJson(vitestJson);
if (vitest) {
  totals.passed += vitest.numPassedTests ?? 0;
  totals.failed += vitest.numFailedTests ?? 0;
  totals.skipped += (vitest.numPendingTests ?? 0) + (vitest.numTodoTests ?? 0);
} else if (status === 0) {
  status = 1;
}
if (status !== 0) finish(status, `vitest failed (exit ${status})`);

const specs = existsSync(join(root, 'e2e')) ? readdirSync(join(root, 'e2e')).filter((f) => f.endsWith('.spec.ts')) : [];
if (specs.length > 0) {
  const pwJson = join(reports, 'playwright.json');
  status = step('browser tests', 'npx', ['playwright', 'test', '--reporter=list,json'], { PLAYWRIGHT_JSON_OUTPUT_FILE: pwJson, CI: process.env.CI ?? 'true' });
  const stats = readJson(pwJson)?.stats;
  if (stats) {
    totals.passed += (stats.expected ?? 0) + (stats.flaky ?? 0);
    totals.failed += stats.unexpected ?? 0;
    totals.skipped += stats.skipped ?? 0;
  } else if (status === 0) {
    status = 1;
  }
  if (status !== 0) finish(status, `playwright failed (exit ${status})`);
} else {
  console.log('\n── browser tests: no e2e/*.spec.ts yet');
}
finish(0);

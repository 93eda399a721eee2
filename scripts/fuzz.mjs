// `npm run fuzz`: the fuzz tests (every *fuzz*.test.ts under shared/src and bridge/src) with
// 10^6 cases per target and no time cap, then inputs, time and inputs/s per target.
//
//   npm run fuzz                          every target, 10^6 cases each
//   npm run fuzz -- remux wire            the files whose path contains one of these words
//   npm run fuzz -- --cases 100000 --seconds 60 --seed 7
//   npm run fuzz -- --markdown            the table as Markdown (for docs/testing.md)
//
// `npm test` runs the same files with 10^4 cases or 20 s per target (shared/src/testing/fuzz-run.ts).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function usage(message) {
  console.error(`npm run fuzz: ${message}\nusage: npm run fuzz -- [--cases N] [--seconds S] [--seed N] [--markdown] [word…]`);
  process.exit(2);
}

const opts = { cases: '1000000', seconds: '0', seed: '0', markdown: false, words: [] };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--markdown') opts.markdown = true;
  else if (a === '--cases' || a === '--seconds' || a === '--seed') {
    const v = args[++i];
    if (v === undefined || !/^\d+$/.test(v)) usage(`${a} needs a whole number`);
    opts[a.slice(2)] = v;
  } else if (a.startsWith('--')) usage(`unknown option ${a}`);
  else opts.words.push(a);
}

const files = ['shared/src', 'bridge/src']
  .flatMap((dir) => readdirSync(join(root, dir), { recursive: true }).map((f) => `${dir}/${f}`))
  .filter((f) => /fuzz[^/]*\.test\.ts$/.test(f))
  .filter((f) => opts.words.length === 0 || opts.words.some((w) => f.includes(w)))
  .sort();
if (files.length === 0) usage(`no fuzz test file matches ${opts.words.join(', ')}`);

const reportDir = mkdtempSync(join(tmpdir(), 'onair-fuzz-'));
const report = join(reportDir, 'runs.jsonl');
console.log(`fuzzing ${files.join(', ')}\n${opts.cases} cases per target, ${opts.seconds === '0' ? 'no time cap' : `at most ${opts.seconds} s`}, seed ${opts.seed}`);
const t0 = Date.now();
const r = spawnSync('npx', ['vitest', 'run', ...files], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, ONAIR_FUZZ_CASES: opts.cases, ONAIR_FUZZ_SECONDS: opts.seconds, ONAIR_FUZZ_SEED: opts.seed, ONAIR_FUZZ_REPORT: report },
});
const wall = (Date.now() - t0) / 1000;

// One line per target; a target recorded twice adds up.
const targets = new Map();
if (existsSync(report)) {
  for (const line of readFileSync(report, 'utf8').split('\n').filter(Boolean)) {
    const run = JSON.parse(line);
    const t = targets.get(run.target) ?? { cases: 0, ms: 0, capped: false, of: run.of };
    t.cases += run.cases;
    t.ms += run.ms;
    t.capped ||= run.capped;
    targets.set(run.target, t);
  }
}
rmSync(reportDir, { recursive: true, force: true });

const rows = [...targets].sort(([a], [b]) => a.localeCompare(b)).map(([name, t]) => [name, t.cases.toLocaleString('en'), (t.ms / 1000).toFixed(1), Math.round(t.cases / (t.ms / 1000)).toLocaleString('en'), t.capped ? 'time cap' : '']);
const head = ['target', 'inputs', 's', 'inputs/s', ''];
if (opts.markdown) {
  console.log(`\n| ${head.slice(0, 4).join(' | ')} |\n| --- | ---: | ---: | ---: |`);
  for (const row of rows) console.log(`| ${row[0]}${row[4] ? ` (${row[4]})` : ''} | ${row.slice(1, 4).join(' | ')} |`);
} else {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(`\n${line(head)}\n${rows.map(line).join('\n')}`);
}
// Inputs counted inside another target's cases took that target's time.
const total = [...targets.values()].reduce((n, t) => n + (t.of === undefined ? t.ms : 0), 0) / 1000;
console.log(`\n${targets.size} targets, ${total.toFixed(0)} s of fuzzing, ${wall.toFixed(0)} s wall clock`);
process.exit(r.status ?? 1);

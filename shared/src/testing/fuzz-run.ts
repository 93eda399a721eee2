// How long each fuzz target runs, what counts as a failure, and the record `npm run fuzz`
// (scripts/fuzz.mjs) reads back. Tests only, on Node (not built into shared/dist).
import { appendFileSync } from 'node:fs';
import { inspect, isDeepStrictEqual } from 'node:util';
import { OnairError } from '../errors.js';
import { hexOf } from './bytes.js';
import { Rng } from './fuzz.js';

const env = process.env;

/** Cases per target: 10^4 in `npm test`; `npm run fuzz` sets ONAIR_FUZZ_CASES to 10^6. */
export const FUZZ_CASES = Number(env['ONAIR_FUZZ_CASES'] ?? 10_000);
/**
 * A target also stops after this many seconds (0: never), so a loaded machine runs fewer cases
 * instead of timing out: each target runs 10^4 cases or 20 s, whichever comes first.
 */
export const FUZZ_SECONDS = Number(env['ONAIR_FUZZ_SECONDS'] ?? 20);
/** Mixed into every target's seed: another value explores other inputs. */
export const FUZZ_SALT = Number(env['ONAIR_FUZZ_SEED'] ?? 0);
/** Test timeout of a fuzz test: its time cap plus room for setup and a slow last case. */
export const FUZZ_TIMEOUT_MS = FUZZ_SECONDS > 0 ? (FUZZ_SECONDS + 90) * 1000 : 48 * 3600 * 1000;

/** Slowest a single case may be: a loop bound gone wrong shows up as seconds, not this. */
export const MAX_CASE_MS = 1000;

export interface FuzzRun {
  target: string;
  cases: number;
  ms: number;
  /** The time cap stopped the target. */
  capped: boolean;
  /** Set when this counts the inputs inside another target's cases (same time, not added twice). */
  of?: string;
}

/**
 * Runs `body` once per case with a generator seeded from `seed` (and ONAIR_FUZZ_SEED), until the
 * case count or the time cap; `cases` scales the count for targets whose case is many inputs.
 * Appends the run to $ONAIR_FUZZ_REPORT as a JSON line when set.
 */
export function fuzz(target: string, seed: number, body: (rng: Rng, index: number) => void, opts: { cases?: number } = {}): FuzzRun {
  const cases = opts.cases ?? FUZZ_CASES;
  const rng = new Rng(seed, FUZZ_SALT);
  const t0 = performance.now();
  const deadline = FUZZ_SECONDS > 0 ? t0 + FUZZ_SECONDS * 1000 : Infinity;
  let c = 0;
  while (c < cases && performance.now() < deadline) body(rng, c++);
  return record({ target, cases: c, ms: performance.now() - t0, capped: performance.now() >= deadline });
}

/** As `fuzz`, for targets whose cases wait on sockets and timers; `stop` ends it early. */
export async function fuzzAsync(
  target: string,
  seed: number,
  body: (rng: Rng, index: number) => Promise<void>,
  opts: { cases?: number; stop?: () => boolean } = {},
): Promise<FuzzRun> {
  const cases = opts.cases ?? FUZZ_CASES;
  const rng = new Rng(seed, FUZZ_SALT);
  const t0 = performance.now();
  const deadline = FUZZ_SECONDS > 0 ? t0 + FUZZ_SECONDS * 1000 : Infinity;
  let c = 0;
  while (c < cases && performance.now() < deadline && opts.stop?.() !== true) await body(rng, c++);
  return record({ target, cases: c, ms: performance.now() - t0, capped: performance.now() >= deadline });
}

/** Records the inputs inside the cases of `run` (a session's messages, say) as a target of its own. */
export function recordInputs(target: string, inputs: number, run: FuzzRun): void {
  record({ target, cases: inputs, ms: run.ms, capped: run.capped, of: run.target });
}

function record(run: FuzzRun): FuzzRun {
  const file = env['ONAIR_FUZZ_REPORT'];
  if (file) appendFileSync(file, `${JSON.stringify(run)}\n`);
  return run;
}

/** A failing input as text to paste into a regression test. */
export type Replay = Uint8Array | string | (() => string);

function replayText(input: Replay): string {
  if (typeof input === 'function') return input();
  return typeof input === 'string' ? JSON.stringify(input) : hexOf(input);
}

/** An Error naming what failed and the input that made it fail. */
export function fuzzFailure(what: string, input: Replay, cause?: unknown): Error {
  return new Error(`${what} on: ${replayText(input)}`, cause === undefined ? undefined : { cause });
}

/** Fails with the input when `actual` and `expected` differ (the input is only written out then). */
export function expectSame(what: string, input: Replay, actual: unknown, expected: unknown): void {
  if (!isDeepStrictEqual(actual, expected)) {
    throw fuzzFailure(`${what}: got ${inspect(actual, { depth: 6 })}, expected ${inspect(expected, { depth: 6 })}`, input);
  }
}

/** `fn`'s result or OnairError, and how long it took; any other throw fails with the input. */
function timed<T>(what: string, input: Replay, fn: () => T): { outcome: T | OnairError; ms: number } {
  const t0 = performance.now();
  let outcome: T | OnairError;
  try {
    outcome = fn();
  } catch (err) {
    if (!(err instanceof OnairError)) throw fuzzFailure(`${what} threw ${String(err)} (not OnairError)`, input, err);
    outcome = err;
  }
  return { outcome, ms: performance.now() - t0 };
}

/**
 * Runs `fn`: an OnairError is an accepted outcome, any other throw fails with the input. A case
 * slower than MAX_CASE_MS runs once more (`fn` must be repeatable) and fails only if slow again,
 * so a pause of the whole machine is not taken for a parser's loop.
 */
export function attempt<T>(what: string, input: Replay, fn: () => T): T | OnairError {
  let r = timed(what, input, fn);
  if (r.ms > MAX_CASE_MS) {
    r = timed(what, input, fn);
    if (r.ms > MAX_CASE_MS) throw fuzzFailure(`${what} took ${r.ms.toFixed(0)} ms`, input);
  }
  return r.outcome;
}

/** ArrayBuffer bytes allocated while `fn` ran (garbage included, so an upper bound). */
export function arrayBufferGrowth(fn: () => void): number {
  const before = process.memoryUsage().arrayBuffers;
  fn();
  return process.memoryUsage().arrayBuffers - before;
}

import { createRequire } from 'node:module';

// The package is CommonJS without types; required as such, it needs no declaration file in each
// project that compiles the harness (bridge tests, e2e).
const parsePrometheusTextFormat = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => unknown[];

/** A metric family as parse-prometheus-text-format returns it (prom2json's shape). */
export interface PromFamily {
  name: string;
  help: string;
  type: 'COUNTER' | 'GAUGE' | 'SUMMARY' | 'HISTOGRAM' | 'UNTYPED';
  metrics: { value: string; labels?: Record<string, string> }[];
}

/** Parses a Prometheus text exposition with an independent parser (parse-prometheus-text-format). */
export function parsePrometheus(text: string): PromFamily[] {
  return parsePrometheusTextFormat(text) as PromFamily[];
}

/** The value of the sample of `name` whose labels include `labels`; throws when there is none. */
export function promValue(families: readonly PromFamily[], name: string, labels: Record<string, string> = {}): number {
  const family = families.find((f) => f.name === name);
  if (family === undefined) throw new Error(`no metric family ${name}`);
  const sample = family.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (sample === undefined) throw new Error(`no sample of ${name} with ${JSON.stringify(labels)}`);
  // The parser keeps the value's text: Go's float syntax, where infinity is spelled +Inf/-Inf.
  return sample.value === '+Inf' ? Infinity : sample.value === '-Inf' ? -Infinity : Number(sample.value);
}

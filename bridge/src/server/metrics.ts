import assert from 'node:assert/strict';

/**
 * The Prometheus text exposition format, version 0.0.4 (prometheus.io, "Exposition formats"):
 * `# HELP` and `# TYPE` once per family, then one `name{label="value"} number` line per sample.
 * Nothing here does I/O or keeps time: the registry asks each family's collector for its samples
 * when it renders, so a scrape reads the services' own counters and the hot paths count nothing
 * extra for it.
 */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type MetricType = 'counter' | 'gauge';

export interface Sample {
  labels?: Readonly<Record<string, string>>;
  value: number;
}

/** A number, or the samples of a family with labels. */
export type Collect = () => number | readonly Sample[];

interface Family {
  name: string;
  help: string;
  type: MetricType;
  collect: Collect;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A sample value as the format writes it: Go's float syntax, `+Inf`, `-Inf`, `NaN`. */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

// HELP text escapes backslash and line feed; label values escape the double quote as well.
const escapeHelp = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (s: string): string => escapeHelp(s).replace(/"/g, '\\"');

function labelText(labels: Readonly<Record<string, string>> | undefined): string {
  if (labels === undefined) return '';
  const pairs = Object.entries(labels);
  if (pairs.length === 0) return '';
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
}

/**
 * The metric families of one process, each with the collector that reads its value at scrape
 * time. Names are checked when registered: a wrong name is a programming error, not input.
 */
export class MetricsRegistry {
  readonly #families = new Map<string, Family>();

  counter(name: string, help: string, collect: Collect): void {
    // Counters end in _total (the format's naming convention, and what Prometheus' rate() expects).
    assert(name.endsWith('_total'), `counter ${name} must end in _total`);
    this.#add({ name, help, type: 'counter', collect });
  }

  gauge(name: string, help: string, collect: Collect): void {
    assert(!name.endsWith('_total'), `gauge ${name} must not end in _total`);
    this.#add({ name, help, type: 'gauge', collect });
  }

  /** Every family with its current samples, in registration order. */
  render(): string {
    const out: string[] = [];
    for (const f of this.#families.values()) {
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
      const value = f.collect();
      if (typeof value === 'number') {
        out.push(`${f.name} ${formatValue(value)}`);
        continue;
      }
      for (const s of value) {
        for (const label of Object.keys(s.labels ?? {})) assert(LABEL.test(label) && !label.startsWith('__'), `label ${label} of ${f.name}`);
        out.push(`${f.name}${labelText(s.labels)} ${formatValue(s.value)}`);
      }
    }
    return `${out.join('\n')}\n`;
  }

  #add(family: Family): void {
    assert(NAME.test(family.name), `metric name ${family.name}`);
    assert(!this.#families.has(family.name), `metric ${family.name} registered twice`);
    this.#families.set(family.name, family);
  }
}

/** One sample per value of `label`, zeros included, from a list of things that each have one. */
export function countBy<T extends string>(label: string, values: readonly T[], items: Iterable<T>): Sample[] {
  const counts = new Map<T, number>(values.map((v) => [v, 0]));
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return [...counts].map(([v, n]) => ({ labels: { [label]: v }, value: n }));
}

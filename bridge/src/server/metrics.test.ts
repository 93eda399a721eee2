import { describe, expect, it } from 'vitest';
import { parsePrometheus, promValue } from '../../test/harness/prometheus.js';
import { EventLog, redactSecrets } from './event-log.js';
import { countBy, formatValue, MetricsRegistry } from './metrics.js';

describe('metrics registry', () => {
  it('renders the text format exactly, samples read at each render', () => {
    let sessions = 2;
    const m = new MetricsRegistry();
    m.gauge('x_sessions', 'Sessions now.', () => sessions);
    m.counter('x_bytes_total', 'Bytes so far.', () => [
      { labels: { dir: 'in' }, value: 10 },
      { labels: { dir: 'out' }, value: 1.5e21 },
    ]);
    expect(m.render()).toBe(
      [
        '# HELP x_sessions Sessions now.',
        '# TYPE x_sessions gauge',
        'x_sessions 2',
        '# HELP x_bytes_total Bytes so far.',
        '# TYPE x_bytes_total counter',
        'x_bytes_total{dir="in"} 10',
        'x_bytes_total{dir="out"} 1.5e+21',
        '',
      ].join('\n'),
    );
    sessions = 3;
    expect(m.render()).toContain('\nx_sessions 3\n');
  });

  it('escapes help and label values so an independent parser reads them back', () => {
    const m = new MetricsRegistry();
    const nasty = 'a "quoted" \\ back\nslash';
    m.gauge('x_info', 'Help with \\ and\nline feed.', () => [{ labels: { path: nasty, state: 'live' }, value: Number.NaN }]);
    m.gauge('x_limits', 'Infinite.', () => [
      { labels: { side: 'hi' }, value: Infinity },
      { labels: { side: 'lo' }, value: -Infinity },
    ]);
    const text = m.render();
    expect(text).toContain('# HELP x_info Help with \\\\ and\\nline feed.');
    expect(text).toContain('x_info{path="a \\"quoted\\" \\\\ back\\nslash",state="live"} NaN');
    const parsed = parsePrometheus(text);
    expect(parsed.map((f) => [f.name, f.type])).toEqual([
      ['x_info', 'GAUGE'],
      ['x_limits', 'GAUGE'],
    ]);
    expect(parsed[0]!.metrics[0]!.labels).toEqual({ path: nasty, state: 'live' });
    expect(promValue(parsed, 'x_limits', { side: 'hi' })).toBe(Infinity);
    expect(promValue(parsed, 'x_limits', { side: 'lo' })).toBe(-Infinity);
    expect([formatValue(0), formatValue(-0.25), formatValue(Number.NaN)]).toEqual(['0', '-0.25', 'NaN']);
  });

  it('refuses names the format or its conventions do not allow', () => {
    const m = new MetricsRegistry();
    expect(() => m.counter('x_bytes', 'no _total', () => 0)).toThrow(/_total/);
    expect(() => m.gauge('x_now_total', 'a gauge named like a counter', () => 0)).toThrow(/_total/);
    expect(() => m.gauge('x-dash', 'bad name', () => 0)).toThrow(/name/);
    m.gauge('x_once', 'once', () => 0);
    expect(() => m.gauge('x_once', 'twice', () => 0)).toThrow(/twice/);
    m.gauge('x_bad_label', 'bad label', () => [{ labels: { 'a-b': 'x' }, value: 1 }]);
    expect(() => m.render()).toThrow(/label a-b/);
  });

  it('counts by a label with every value present, zeros included', () => {
    expect(countBy('state', ['live', 'retrying', 'failed'], ['live', 'live', 'failed'])).toEqual([
      { labels: { state: 'live' }, value: 2 },
      { labels: { state: 'retrying' }, value: 0 },
      { labels: { state: 'failed' }, value: 1 },
    ]);
  });
});

describe('event log', () => {
  const at = (): Date => new Date('2026-01-02T03:04:05.678Z');

  it('writes one JSON object per line with time, level and event, secrets redacted', () => {
    const lines: string[] = [];
    const log = new EventLog('json', (l) => lines.push(l), at);
    log.event('studio.destination', { session: 's1', url: 'rtmp://a.example/live/SECRETKEY', state: 'retrying', reason: 'rtmps://b.example:443/app/OTHERKEY refused', token: 'tok', skipped: undefined });
    log.line('opened http://127.0.0.1:8080/?token=TOPSECRET', 'warn');
    expect(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([
      { time: '2026-01-02T03:04:05.678Z', level: 'info', event: 'studio.destination', session: 's1', url: 'rtmp://a.example/live/***', state: 'retrying', reason: 'rtmps://b.example:443/app/*** refused', token: '***' },
      { time: '2026-01-02T03:04:05.678Z', level: 'warn', event: 'message', msg: 'opened http://127.0.0.1:8080/?token=***' },
    ]);
    expect(lines.join('')).not.toMatch(/SECRETKEY|OTHERKEY|TOPSECRET|tok"/);
  });

  it('keeps the text format as it was: sentences only, events without one say nothing', () => {
    const lines: string[] = [];
    const log = new EventLog('text', (l) => lines.push(l), at);
    log.event('watch.viewers', { ws: 3 });
    log.event('drain.start', { sessions: 1 }, { text: 'draining' });
    log.line('studio session 1: started');
    expect(lines).toEqual(['onair: draining\n', 'onair: studio session 1: started\n']);
  });

  it('a field cannot replace time, level or event', () => {
    const lines: string[] = [];
    new EventLog('json', (l) => lines.push(l), at).event('x', { event: 'y', level: 'error', time: 'now' });
    expect(JSON.parse(lines[0]!)).toEqual({ time: '2026-01-02T03:04:05.678Z', level: 'info', event: 'x' });
    expect(redactSecrets('no secrets here')).toBe('no secrets here');
  });
});

import { redactUrl } from '../rtmp/url.js';

/** `text`: the sentences `onair serve` has always written; `json`: one JSON object per line. */
export type LogFormat = 'text' | 'json';
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

export type LogLevel = 'info' | 'warn' | 'error';

export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>;

// Field names whose values are secrets whatever they hold.
const SECRET_FIELDS = /^(token|key|streamKey|secret|password)$/i;
// An RTMP URL inside a value: its last path segment (the stream key) is replaced.
const RTMP_URL = /rtmps?:\/\/[^\s"'<>]+/gi;
// `token=…` in a query string or a sentence.
const TOKEN_PARAM = /\b(token=)[^\s&"']+/gi;

/** `text` with every RTMP URL's stream key and every `token=` value replaced by `***`. */
export function redactSecrets(text: string): string {
  return text.replace(RTMP_URL, (url) => redactUrl(url)).replace(TOKEN_PARAM, '$1***');
}

/**
 * The operator's log of `onair serve`, on stderr. In text format, events with a sentence print it
 * as `onair: …` and the rest stay quiet (what the bridge logged before JSON existed); in JSON format
 * every event and every sentence is one line `{"time","level","event",…fields}`, secrets redacted
 * on the way out whatever the caller passed.
 */
export class EventLog {
  readonly format: LogFormat;
  readonly #write: (line: string) => void;
  readonly #now: () => Date;

  constructor(format: LogFormat, write: (line: string) => void, now: () => Date = () => new Date()) {
    this.format = format;
    this.#write = write;
    this.#now = now;
  }

  /** A structured event; `text` is what the text format prints for it (nothing when absent). */
  event(event: string, fields: LogFields = {}, opts: { level?: LogLevel; text?: string } = {}): void {
    if (this.format === 'text') {
      if (opts.text !== undefined) this.#write(`onair: ${opts.text}\n`);
      return;
    }
    const out: Record<string, string | number | boolean> = { time: this.#now().toISOString(), level: opts.level ?? 'info', event };
    for (const [name, value] of Object.entries(fields)) {
      if (value === undefined || name in out) continue;
      out[name] = SECRET_FIELDS.test(name) ? '***' : typeof value === 'string' ? redactSecrets(value) : value;
    }
    this.#write(`${JSON.stringify(out)}\n`);
  }

  /** A sentence from a part of the bridge that logs in sentences (`event: "message"` in JSON). */
  line(text: string, level: LogLevel = 'info'): void {
    this.event('message', { msg: text }, { level, text });
  }
}

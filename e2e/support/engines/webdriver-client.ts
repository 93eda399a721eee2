// A classic W3C WebDriver session (https://w3c.github.io/webdriver/): JSON over HTTP, one
// command at a time. Only what the page driver needs.

/** The key of an element reference in WebDriver's JSON. */
export const ELEMENT_KEY = 'element-6066-11e4-a52e-4f735466cecf';

export type ElementReference = { [ELEMENT_KEY]: string };

// Longer than any one command of the walk-throughs (a 15 s sample), shorter than a test.
const COMMAND_TIMEOUT_MS = 60_000;

export class WebDriverError extends Error {
  constructor(
    message: string,
    /** WebDriver's error code, e.g. `javascript error`, `no such element`. */
    readonly code: string,
  ) {
    super(message);
    this.name = 'WebDriverError';
  }
}

async function request<T>(method: string, url: string, body?: object, timeoutMs = COMMAND_TIMEOUT_MS): Promise<T> {
  const response = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let parsed: { value?: unknown };
  try {
    parsed = JSON.parse(text) as { value?: unknown };
  } catch {
    throw new WebDriverError(`${method} ${url}: HTTP ${response.status}, not JSON: ${text.slice(0, 200)}`, 'unknown error');
  }
  if (!response.ok) {
    const err = (parsed.value ?? {}) as { error?: string; message?: string };
    throw new WebDriverError(`${method} ${new URL(url).pathname}: ${err.error ?? `HTTP ${response.status}`}: ${err.message ?? ''}`, err.error ?? 'unknown error');
  }
  return parsed.value as T;
}

export class WebDriverSession {
  readonly #base: string;
  /** The capabilities the server matched (browserName, browserVersion…). */
  readonly capabilities: Record<string, unknown>;

  private constructor(base: string, capabilities: Record<string, unknown>) {
    this.#base = base;
    this.capabilities = capabilities;
  }

  /** `POST /session` on the server at `server` (http://host:port) with `alwaysMatch` capabilities. */
  static async create(server: string, alwaysMatch: object): Promise<WebDriverSession> {
    const created = await request<{ sessionId: string; capabilities: Record<string, unknown> }>('POST', `${server}/session`, { capabilities: { alwaysMatch } });
    return new WebDriverSession(`${server}/session/${created.sessionId}`, created.capabilities);
  }

  /** Sends a command to this session: `path` is relative to it (`/url`, `/execute/sync`). */
  command<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: object): Promise<T> {
    return request<T>(method, this.#base + path, method === 'POST' ? (body ?? {}) : undefined);
  }

  /** Ends the session; the server closes its browser. */
  async delete(): Promise<void> {
    await request('DELETE', this.#base, undefined, 15_000);
  }
}

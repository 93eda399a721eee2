import {
  CONFIG_PATH,
  RESTREAM_API_PATH,
  WATCH_WS_PATH,
  parseWatchTarget,
  watchTargetPath,
  type RestreamDestinationChange,
  type RestreamDestinationInit,
  type RestreamInputInit,
  type RestreamState,
  type StudioConfig,
} from '@onair/shared';

/** How often the view asks for the state while the tab is visible. */
export const POLL_MS = 1000;

/** What one request was for, as the page shows it when it fails ("Could not start the destination"). */
const ACTION_TEXT = {
  load: 'read the restream state',
  'add-input': 'add the input',
  'remove-input': 'remove the input',
  'start-all': 'start the destinations',
  'stop-all': 'stop the destinations',
  'add-destination': 'add the destination',
  'remove-destination': 'remove the destination',
  'start-destination': 'start the destination',
  'stop-destination': 'stop the destination',
  'auto-start': 'change "Start when the input goes live"',
} as const;
export type RestreamAction = keyof typeof ACTION_TEXT;

/**
 * The key of an action's last error: the action, on what. `scope` is '' for the page, the input id,
 * or `<input id>/<destination id>`.
 */
export function errorKey(action: RestreamAction, scope = ''): string {
  return `${scope}|${action}`;
}

/** Why a request failed, in plain words, from the HTTP status when the bridge gave no sentence. */
function statusText(status: number, action: RestreamAction): string {
  if (status === 401 || status === 403) return 'the bridge refused this page: open it again with the link onair serve printed (it carries the token)';
  if (status === 404) {
    return action === 'load'
      ? 'this bridge has no Restream service: start a newer onair'
      : 'the bridge no longer has that input or destination (it may have restarted)';
  }
  if (status === 409) return 'the bridge cannot do that as things stand (a limit, or it exists already)';
  if (status === 413) return 'the request was too long for the bridge';
  if (status >= 500) return `the bridge failed to do it (HTTP ${status}); its log says why`;
  return `the bridge refused it (HTTP ${status})`;
}

function isState(v: unknown): v is RestreamState {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return Array.isArray(o['inputs']) && typeof o['graceMs'] === 'number' && (o['ingest'] === null || typeof o['ingest'] === 'object');
}

/** `rtmp://<host>:<port>/<app>`, what an encoder's "Server" field takes, or null without an ingest. */
export function ingestServer(ingest: RestreamState['ingest'], pageHost: string): string | null {
  if (ingest === null) return null;
  const host = ingest.host ?? pageHost;
  // An IPv6 literal needs its brackets in a URL.
  const shown = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `rtmp://${shown}:${ingest.port}/${ingest.app}`;
}

/** The watch WebSocket for an input's `watchPath` (`/watch/live/<key>` or `/watch?src=…`). */
export function previewSocketUrl(watchPath: string, loc: Pick<Location, 'protocol' | 'host'>): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(watchPath, 'http://page.invalid');
  } catch {
    return undefined;
  }
  const target = parseWatchTarget('/watch', parsed.pathname, parsed.search);
  if (target === undefined) return undefined;
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}${watchTargetPath(WATCH_WS_PATH, target)}`;
}

/**
 * The Restream view's state: polls `GET /api/restream` about once a second while the tab is
 * visible, sends every change as the API says (each answered with the new state), and keeps the
 * last error of each action, in words, until that action next succeeds.
 */
export class Restream {
  state = $state.raw<RestreamState | null>(null);
  /** Last error per action (see errorKey), cleared when the action next succeeds. */
  errors = $state.raw<Record<string, string>>({});
  /** The embedded server the studio offers as "This computer", for the destination editor. */
  localRtmp = $state.raw<StudioConfig['localRtmp']>(null);
  /** Requests in flight, by error key: their buttons wait. */
  busy = $state.raw<Record<string, true>>({});

  #timer: ReturnType<typeof setTimeout> | undefined;
  #polling = false;
  #destroyed = false;
  /** Answers are applied in the order the requests were sent: a slow poll never undoes a change. */
  #sent = 0;
  #applied = 0;

  start(): void {
    document.addEventListener('visibilitychange', this.#onVisibility);
    void this.#loadConfig();
    this.#poll();
  }

  destroy(): void {
    this.#destroyed = true;
    clearTimeout(this.#timer);
    document.removeEventListener('visibilitychange', this.#onVisibility);
  }

  /** The errors of one input (scope = id) or destination (`id/did`). */
  errorsOf(scope: string): string[] {
    return Object.entries(this.errors)
      .filter(([key]) => key.startsWith(`${scope}|`))
      .map(([, text]) => text);
  }

  isBusy(action: RestreamAction, scope = ''): boolean {
    return this.busy[errorKey(action, scope)] === true;
  }

  addInput(init: RestreamInputInit): Promise<boolean> {
    return this.#send('add-input', '', 'POST', '/inputs', init);
  }

  removeInput(id: string): Promise<boolean> {
    return this.#send('remove-input', id, 'DELETE', `/inputs/${enc(id)}`);
  }

  startAll(id: string): Promise<boolean> {
    return this.#send('start-all', id, 'POST', `/inputs/${enc(id)}/start`);
  }

  stopAll(id: string): Promise<boolean> {
    return this.#send('stop-all', id, 'POST', `/inputs/${enc(id)}/stop`);
  }

  addDestination(id: string, init: RestreamDestinationInit): Promise<boolean> {
    return this.#send('add-destination', id, 'POST', `/inputs/${enc(id)}/destinations`, init);
  }

  removeDestination(id: string, did: string): Promise<boolean> {
    return this.#send('remove-destination', `${id}/${did}`, 'DELETE', `/inputs/${enc(id)}/destinations/${enc(did)}`);
  }

  startDestination(id: string, did: string): Promise<boolean> {
    return this.#send('start-destination', `${id}/${did}`, 'POST', `/inputs/${enc(id)}/destinations/${enc(did)}/start`);
  }

  stopDestination(id: string, did: string): Promise<boolean> {
    return this.#send('stop-destination', `${id}/${did}`, 'POST', `/inputs/${enc(id)}/destinations/${enc(did)}/stop`);
  }

  setAutoStart(id: string, did: string, autoStart: boolean): Promise<boolean> {
    const change: RestreamDestinationChange = { autoStart };
    return this.#send('auto-start', `${id}/${did}`, 'POST', `/inputs/${enc(id)}/destinations/${enc(did)}`, change);
  }

  readonly #onVisibility = (): void => {
    if (document.visibilityState === 'visible') this.#poll();
  };

  #poll(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#destroyed || this.#polling || document.visibilityState !== 'visible') return;
    this.#polling = true;
    void this.#request('load', '', 'GET', '').finally(() => {
      this.#polling = false;
      if (!this.#destroyed && document.visibilityState === 'visible') this.#timer = setTimeout(() => this.#poll(), POLL_MS);
    });
  }

  async #loadConfig(): Promise<void> {
    try {
      const res = await fetch(CONFIG_PATH);
      if (res.ok) this.localRtmp = ((await res.json()) as StudioConfig).localRtmp;
    } catch {
      // The editor then offers the platforms and custom URLs only.
    }
  }

  async #send(action: RestreamAction, scope: string, method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<boolean> {
    const key = errorKey(action, scope);
    this.busy = { ...this.busy, [key]: true };
    try {
      return await this.#request(action, scope, method, path, body);
    } finally {
      const { [key]: _done, ...rest } = this.busy;
      this.busy = rest;
    }
  }

  /** Errors of inputs and destinations that are gone: nothing shows them any more. */
  #dropGoneErrors(state: RestreamState): void {
    const scopes = new Set(['']);
    for (const input of state.inputs) {
      scopes.add(input.id);
      for (const d of input.destinations) scopes.add(`${input.id}/${d.id}`);
    }
    const kept = Object.entries(this.errors).filter(([key]) => scopes.has(key.slice(0, key.lastIndexOf('|'))));
    if (kept.length !== Object.keys(this.errors).length) this.errors = Object.fromEntries(kept);
  }

  /** One request; on success the answer becomes the state. Never throws: failures land in `errors`. */
  async #request(action: RestreamAction, scope: string, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<boolean> {
    const seq = ++this.#sent;
    const key = errorKey(action, scope);
    let problem: string | undefined;
    try {
      const res = await fetch(`${RESTREAM_API_PATH}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        cache: 'no-store',
      });
      const answer: unknown = await res.json().catch(() => undefined);
      if (!res.ok) {
        const said = typeof answer === 'object' && answer !== null ? (answer as { error?: unknown }).error : undefined;
        problem = typeof said === 'string' && said.trim() !== '' ? said : statusText(res.status, action);
      } else if (!isState(answer)) {
        problem = 'the bridge answered with something this page does not understand (is the page older than the bridge? reload it)';
      } else if (seq > this.#applied) {
        this.#applied = seq;
        this.state = answer;
        this.#dropGoneErrors(answer);
      }
    } catch {
      problem = 'cannot reach the bridge: is onair serve still running?';
    }
    if (this.#destroyed) return problem === undefined;
    if (problem === undefined) {
      if (key in this.errors) {
        const { [key]: _gone, ...rest } = this.errors;
        this.errors = rest;
      }
      return true;
    }
    this.errors = { ...this.errors, [key]: `Could not ${ACTION_TEXT[action]}: ${problem}` };
    return false;
  }
}

const enc = encodeURIComponent;

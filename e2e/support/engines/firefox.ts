import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, removeTempDir, spawnTracked, waitFor, type Child } from '../../../bridge/test/harness/proc.js';
import { firefoxPath } from '../../../scripts/system-deps.mjs';
import { BidiConnection } from './bidi-client.js';
import { BaseDriver, describeTarget, ELEMENT_WAIT_MS, findElement, inPage, toWire, type Engine, type PageError, type Target } from './driver.js';

// Firefox speaks WebDriver BiDi itself once started with --remote-debugging-port (no
// geckodriver). The Remote Agent applies its recommended automation prefs; these are ours.
const PREFS: Record<string, boolean | number | string> = {
  // A fake camera and microphone, no permission prompt.
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  // The watch page starts playback without a click.
  'media.autoplay.default': 0,
  'media.autoplay.blocking_policy': 0,
  'browser.shell.checkDefaultBrowser': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.reportingpolicy.firstRun': false,
};

interface RemoteValue {
  type: string;
  value?: unknown;
  sharedId?: string;
}

type CallResult = { type: 'success'; result: RemoteValue } | { type: 'exception'; exceptionDetails: { text: string } };

interface LogEntry {
  type: string;
  level: string;
  text: string | null;
}

const KEY_BACKSPACE = '\uE003';

/** Firefox ESR over WebDriver BiDi, headless, in a fresh profile. */
export class FirefoxDriver extends BaseDriver {
  readonly engine: Engine = 'firefox';
  readonly version: string;
  readonly #child: Child;
  readonly #profile: string;
  readonly #bidi: BidiConnection;
  readonly #context: string;
  readonly #errors: PageError[] = [];

  private constructor(child: Child, profile: string, bidi: BidiConnection, context: string, version: string) {
    super();
    this.#child = child;
    this.#profile = profile;
    this.#bidi = bidi;
    this.#context = context;
    this.version = version;
    bidi.on('log.entryAdded', (params) => {
      const entry = params as LogEntry;
      if (entry.level !== 'error') return;
      this.#errors.push({ kind: entry.type === 'console' ? 'console' : 'uncaught', text: entry.text ?? '' });
    });
  }

  static async launch(executable = firefoxPath()): Promise<FirefoxDriver> {
    const profile = makeTempDir('onair-firefox-');
    writeFileSync(join(profile, 'user.js'), Object.entries(PREFS).map(([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});\n`).join(''));
    const child = spawnTracked(executable, ['--headless', '--no-remote', '--profile', profile, '--remote-debugging-port=0', 'about:blank'], {
      env: { ...process.env, MOZ_CRASHREPORTER_DISABLE: '1' },
      keepLines: 400,
    });
    try {
      const url = await waitFor(
        'Firefox to listen for WebDriver BiDi',
        () => {
          if (child.process.exitCode !== null || child.process.signalCode !== null) throw new Error(`${executable} exited:\n${child.tail()}`);
          return /WebDriver BiDi listening on (ws:\/\/\S+)/.exec(child.tail())?.[1];
        },
        30_000,
      );
      const bidi = await BidiConnection.connect(`${url}/session`);
      const session = await bidi.send<{ capabilities: { browserName: string; browserVersion: string } }>('session.new', { capabilities: {} });
      await bidi.send('session.subscribe', { events: ['log.entryAdded'] });
      const tree = await bidi.send<{ contexts: { context: string }[] }>('browsingContext.getTree', { maxDepth: 0 });
      const context = tree.contexts[0]?.context;
      if (context === undefined) throw new Error('Firefox has no browsing context');
      return new FirefoxDriver(child, profile, bidi, context, `${session.capabilities.browserName} ${session.capabilities.browserVersion}`);
    } catch (err) {
      await child.stop('SIGKILL');
      removeTempDir(profile);
      throw new Error(`Firefox did not start: ${(err as Error).message}\n${child.tail()}`, { cause: err });
    }
  }

  async goto(url: string): Promise<void> {
    await this.#bidi.send('browsingContext.navigate', { context: this.#context, url, wait: 'complete' });
  }

  /** Calls `declaration` in the page with the given BiDi argument values. */
  async #call(declaration: string, args: object[]): Promise<RemoteValue> {
    const r = await this.#bidi.send<CallResult>('script.callFunction', {
      functionDeclaration: declaration,
      arguments: args,
      target: { context: this.#context },
      awaitPromise: true,
      resultOwnership: 'none',
    });
    if (r.type === 'exception') throw new Error(`firefox: in the page: ${r.exceptionDetails.text}`);
    return r.result;
  }

  async #locate(target: Target): Promise<string> {
    const arg = { type: 'string', value: JSON.stringify(toWire(target)) };
    let why = '';
    try {
      return await waitFor(
        describeTarget(target),
        async () => {
          const found = await this.#call(`(json) => (${findElement.toString()})(JSON.parse(json))`, [arg]);
          if (found.type === 'node' && found.sharedId !== undefined) return found.sharedId;
          why = String(found.value);
          return undefined;
        },
        ELEMENT_WAIT_MS,
        100,
      );
    } catch (err) {
      throw new Error(`firefox: ${describeTarget(target)}: ${why} (${(err as Error).message})`, { cause: err });
    }
  }

  async click(target: Target): Promise<void> {
    // The page may still move between scrolling the element into view and the click (a panel
    // filling in above it): then Firefox refuses the move as out of bounds, and locating again
    // scrolls it back into view.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#clickOnce(await this.#locate(target));
        return;
      } catch (err) {
        if (attempt >= 3 || !/out of bounds/.test((err as Error).message)) throw err;
      }
    }
  }

  async #clickOnce(sharedId: string): Promise<void> {
    await this.#bidi.send('input.performActions', {
      context: this.#context,
      actions: [
        {
          type: 'pointer',
          id: 'mouse',
          parameters: { pointerType: 'mouse' },
          actions: [
            { type: 'pointerMove', x: 0, y: 0, origin: { type: 'element', element: { sharedId } } },
            { type: 'pointerDown', button: 0 },
            { type: 'pointerUp', button: 0 },
          ],
        },
      ],
    });
  }

  async fill(target: Target, text: string): Promise<void> {
    const sharedId = await this.#locate(target);
    await this.#call('(el) => { el.focus(); el.select(); }', [{ sharedId }]);
    const keys = text === '' ? [KEY_BACKSPACE] : [...text];
    await this.#bidi.send('input.performActions', {
      context: this.#context,
      actions: [{ type: 'key', id: 'keyboard', actions: keys.flatMap((value) => [{ type: 'keyDown', value }, { type: 'keyUp', value }]) }],
    });
    const value = await this.#call('(el) => el.value', [{ sharedId }]);
    if (value.value !== text) throw new Error(`firefox: typed ${JSON.stringify(text)} into ${describeTarget(target)}, which holds ${JSON.stringify(value.value)}`);
  }

  async evaluate<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R> {
    const result = await this.#call(inPage(fn), [arg === undefined ? { type: 'undefined' } : { type: 'string', value: JSON.stringify(arg) }]);
    return (result.type === 'string' ? JSON.parse(result.value as string) : undefined) as R;
  }

  async errors(): Promise<PageError[]> {
    return [...this.#errors];
  }

  async close(): Promise<void> {
    try {
      // Ends the session and the browser; the socket closes under the answer.
      await this.#bidi.send('browser.close', {}, 10_000).catch(() => undefined);
      await this.#bidi.close();
      await this.#child.stop('SIGTERM', 10_000);
    } finally {
      removeTempDir(this.#profile);
    }
  }
}

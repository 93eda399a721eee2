import { freePort, waitForPort } from '../../../bridge/test/harness/ports.js';
import { spawnTracked, waitFor, type Child } from '../../../bridge/test/harness/proc.js';
import { miniBrowserPath, webkitDriverPath } from '../../../scripts/system-deps.mjs';
import { BaseDriver, describeTarget, ELEMENT_WAIT_MS, findElement, inPage, toWire, type Engine, type PageError, type Target } from './driver.js';
import { ELEMENT_KEY, WebDriverSession, type ElementReference } from './webdriver-client.js';

// WebKitGTK has no headless mode: MiniBrowser runs on an Xvfb display of its own (what
// `xvfb-run -a` does, without the shell script between us and the server's lifetime).
// WebKitWebDriver starts MiniBrowser in automation mode with mock capture devices (a camera
// and a microphone for getUserMedia) and autoplay allowed.
const BROWSER_ARGS = ['--automation', '--enable-mock-capture-devices=true', '--enable-media-stream=true', '--autoplay-policy=allow'];

/**
 * Runs in the page after each navigation: classic WebDriver has no log, so console errors and
 * uncaught exceptions are kept in the page. What happens before it is installed (while the
 * page loads) is not seen.
 */
function installErrorHook(): void {
  const w = window as unknown as { onairErrors?: { kind: string; text: string }[] };
  if (w.onairErrors !== undefined) return;
  const errors: { kind: string; text: string }[] = (w.onairErrors = []);
  const original = console.error.bind(console);
  console.error = (...args: unknown[]) => {
    errors.push({ kind: 'console', text: args.map((a) => (a instanceof Error ? `${a.name}: ${a.message}` : String(a))).join(' ') });
    original(...args);
  };
  addEventListener('error', (e) => errors.push({ kind: 'uncaught', text: e.message }));
  addEventListener('unhandledrejection', (e) => errors.push({ kind: 'uncaught', text: `unhandled rejection: ${String(e.reason)}` }));
}

function takeErrors(): { kind: string; text: string }[] {
  const w = window as unknown as { onairErrors?: { kind: string; text: string }[] };
  return w.onairErrors?.splice(0) ?? [];
}

/** WebKitGTK's MiniBrowser over classic WebDriver (WebKitWebDriver), on its own Xvfb. */
export class WebKitDriver extends BaseDriver {
  readonly engine: Engine = 'webkit';
  readonly version: string;
  readonly #xvfb: Child;
  readonly #server: Child;
  readonly #session: WebDriverSession;
  readonly #errors: PageError[] = [];

  private constructor(xvfb: Child, server: Child, session: WebDriverSession) {
    super();
    this.#xvfb = xvfb;
    this.#server = server;
    this.#session = session;
    this.version = `WebKitGTK ${String(session.capabilities['browserVersion'])}`;
  }

  static async launch(driver = webkitDriverPath(), binary = miniBrowserPath()): Promise<WebKitDriver> {
    if (binary === undefined) throw new Error('WebKitGTK MiniBrowser not found (node scripts/system-deps.mjs says what to install)');
    const xvfb = spawnTracked('Xvfb', ['-displayfd', '1', '-screen', '0', '1280x1024x24', '-nolisten', 'tcp']);
    let server: Child | undefined;
    try {
      const display = await waitFor(
        'Xvfb to pick a display',
        () => {
          if (xvfb.process.exitCode !== null) throw new Error(`Xvfb exited:\n${xvfb.tail()}`);
          return /^(\d+)$/m.exec(xvfb.tail())?.[1];
        },
        15_000,
      );
      const port = await freePort();
      const started = spawnTracked(driver, [`--port=${port}`, '--host=127.0.0.1'], { env: { ...process.env, DISPLAY: `:${display}` }, keepLines: 200 });
      server = started;
      await waitForPort(port, 15_000, () => started.process.exitCode === null);
      const session = await WebDriverSession.create(`http://127.0.0.1:${port}`, {
        browserName: 'MiniBrowser',
        'webkitgtk:browserOptions': { binary, args: BROWSER_ARGS },
      });
      // The walk-throughs' in-page sampling runs for up to 20 s in one call.
      await session.command('POST', '/timeouts', { script: 50_000, pageLoad: 50_000 });
      return new WebKitDriver(xvfb, started, session);
    } catch (err) {
      const tail = server?.tail() ?? xvfb.tail();
      await server?.stop('SIGKILL');
      await xvfb.stop('SIGKILL');
      throw new Error(`WebKitGTK did not start: ${(err as Error).message}\n${tail}`, { cause: err });
    }
  }

  async goto(url: string): Promise<void> {
    await this.#keepErrors();
    await this.#session.command('POST', '/url', { url });
    await this.evaluate(installErrorHook);
  }

  async #locate(target: Target): Promise<string> {
    const wire = JSON.stringify(toWire(target));
    let why = '';
    try {
      return await waitFor(
        describeTarget(target),
        async () => {
          const found = await this.#session.command<ElementReference | string>('POST', '/execute/sync', {
            script: `return (${findElement.toString()})(JSON.parse(arguments[0]))`,
            args: [wire],
          });
          if (typeof found === 'object' && found !== null && ELEMENT_KEY in found) return found[ELEMENT_KEY];
          why = String(found);
          return undefined;
        },
        ELEMENT_WAIT_MS,
        100,
      );
    } catch (err) {
      throw new Error(`webkit: ${describeTarget(target)}: ${why} (${(err as Error).message})`, { cause: err });
    }
  }

  async click(target: Target): Promise<void> {
    const id = await this.#locate(target);
    await this.#session.command('POST', `/element/${id}/click`);
  }

  async fill(target: Target, text: string): Promise<void> {
    const id = await this.#locate(target);
    await this.#session.command('POST', `/element/${id}/clear`);
    if (text !== '') await this.#session.command('POST', `/element/${id}/value`, { text });
    const value = await this.#session.command<string>('GET', `/element/${id}/property/value`);
    if (value !== text) throw new Error(`webkit: typed ${JSON.stringify(text)} into ${describeTarget(target)}, which holds ${JSON.stringify(value)}`);
  }

  async evaluate<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R> {
    const json = await this.#session.command<string | null>('POST', '/execute/sync', {
      script: `return (${inPage(fn)})(arguments[0])`,
      args: arg === undefined ? [] : [JSON.stringify(arg)],
    });
    return (typeof json === 'string' ? JSON.parse(json) : undefined) as R;
  }

  async #keepErrors(): Promise<void> {
    const taken = await this.evaluate(takeErrors).catch(() => []);
    for (const e of taken) this.#errors.push({ kind: e.kind === 'console' ? 'console' : 'uncaught', text: e.text });
  }

  async errors(): Promise<PageError[]> {
    await this.#keepErrors();
    return [...this.#errors];
  }

  async close(): Promise<void> {
    try {
      await this.#session.delete();
    } finally {
      await this.#server.stop('SIGTERM', 10_000);
      await this.#xvfb.stop('SIGTERM', 5_000);
    }
  }
}

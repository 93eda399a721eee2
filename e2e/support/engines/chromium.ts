import type { Browser, BrowserType, LaunchOptions, Locator, Page } from '@playwright/test';
import { BaseDriver, type Engine, type PageError, type Target } from './driver.js';

/** Debian's Chromium through Playwright: its own locators, its own events. */
export class ChromiumDriver extends BaseDriver {
  readonly engine: Engine = 'chromium';
  readonly version: string;
  readonly #browser: Browser;
  readonly #page: Page;
  readonly #errors: PageError[] = [];

  private constructor(browser: Browser, page: Page) {
    super();
    this.#browser = browser;
    this.#page = page;
    this.version = `Chromium ${browser.version()}`;
    page.on('console', (message) => {
      if (message.type() === 'error') this.#errors.push({ kind: 'console', text: message.text() });
    });
    page.on('pageerror', (err) => this.#errors.push({ kind: 'uncaught', text: err.message }));
  }

  /** Launches with the project's launch options (executable, fake devices). */
  static async launch(chromium: BrowserType, options: LaunchOptions): Promise<ChromiumDriver> {
    const browser = await chromium.launch(options);
    try {
      return new ChromiumDriver(browser, await browser.newPage());
    } catch (err) {
      await browser.close();
      throw err;
    }
  }

  #locate(target: Target): Locator {
    const all = 'label' in target ? this.#page.getByLabel(target.label, { exact: true }) : this.#page.getByRole(target.role, { name: target.name, exact: true });
    return target.nth === undefined ? all : all.nth(target.nth);
  }

  async goto(url: string): Promise<void> {
    await this.#page.goto(url);
  }

  async click(target: Target): Promise<void> {
    await this.#locate(target).click({ timeout: 15_000 });
  }

  async fill(target: Target, text: string): Promise<void> {
    await this.#locate(target).fill(text, { timeout: 15_000 });
  }

  async evaluate<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R> {
    // Through JSON, as the WebDriver drivers' results travel: the walk-throughs see the same values.
    const result = await this.#page.evaluate(fn as (arg: unknown) => unknown, arg);
    return (result === undefined ? undefined : JSON.parse(JSON.stringify(result))) as R;
  }

  async errors(): Promise<PageError[]> {
    return [...this.#errors];
  }

  async close(): Promise<void> {
    await this.#browser.close();
  }
}

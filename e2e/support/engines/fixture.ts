import { test as base } from '@playwright/test';
import { ChromiumDriver } from './chromium.js';
import type { Engine, PageDriver } from './driver.js';
import { FirefoxDriver } from './firefox.js';
import { WebKitDriver } from './webkit.js';

export { expect } from '@playwright/test';

/**
 * Playwright's runner with a `driver` fixture in place of `page`: each project of
 * playwright.config.ts sets `engine`, and the test gets a fresh browser of that engine. Only
 * Chromium goes through Playwright's own launcher (with the project's launch options); the
 * others are started by their WebDriver drivers, so Playwright never looks for its own builds.
 */
export const test = base.extend<{ engine: Engine; driver: PageDriver }>({
  engine: ['chromium', { option: true }],
  driver: async ({ engine, playwright, launchOptions }, use, testInfo) => {
    const started = Date.now();
    const driver =
      engine === 'chromium' ? await ChromiumDriver.launch(playwright.chromium, launchOptions) : engine === 'firefox' ? await FirefoxDriver.launch() : await WebKitDriver.launch();
    console.log(`${driver.version} started in ${Date.now() - started} ms`);
    try {
      await use(driver);
    } finally {
      const errors = await driver.errors().catch((err: Error) => [{ kind: 'driver', text: err.message }]);
      if (errors.length > 0) {
        console.log(`${engine}: the page reported ${errors.length} error(s):\n  ${errors.map((e) => `${e.kind}: ${e.text}`).join('\n  ')}`);
        await testInfo.attach('page errors', { body: errors.map((e) => `${e.kind}: ${e.text}`).join('\n'), contentType: 'text/plain' });
      }
      await driver.close();
    }
  },
});

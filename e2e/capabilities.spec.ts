import { chromium, expect, test } from '@playwright/test';
import config from '../playwright.config.js';
import { startBridge } from './support/bridge.js';

// What the studio says before anything is asked of the user, in a browser that cannot go live
// from where it stands: a page opened over plain http from another machine gets no camera API and
// no WebCodecs (browsers give them only to https and localhost). Chromium reaches the bridge under
// another host name through --host-resolver-rules.

test('opened over http from another host name: one plain sentence says it needs https or localhost, and Go live is off', async () => {
  const bridge = await startBridge(['--host', '0.0.0.0', '--token', 'capability-test']);
  const launch = config.use?.launchOptions ?? {};
  const browser = await chromium.launch({ ...launch, args: [...(launch.args ?? []), '--host-resolver-rules=MAP studio.onair.test 127.0.0.1'] });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`http://studio.onair.test:${bridge.port}/?token=capability-test`);
    const blocking = page.locator('[data-capability="blocking"]');
    await expect(blocking).toBeVisible({ timeout: 15_000 });
    console.log(await blocking.textContent());
    await expect(blocking).toContainText('needs a secure page');
    await expect(blocking).toContainText(`http://localhost:${bridge.port}/`);
    await expect(page.getByRole('button', { name: 'Go live' })).toBeDisabled();
    // No "Cannot read properties of undefined": nothing failed behind the sentence.
    expect(errors).toEqual([]);
    expect(await page.evaluate(() => isSecureContext)).toBe(false);
  } finally {
    await browser.close();
    await bridge.stop();
  }
});

test('on localhost the studio has what it needs and says nothing of the kind', async ({ page }) => {
  const bridge = await startBridge();
  try {
    await page.goto(bridge.url);
    await expect(page.getByRole('button', { name: 'Go live' })).toBeEnabled();
    await expect(page.locator('[data-capability="blocking"]')).toHaveCount(0);
    await expect(page.locator('[data-capability="note"]')).toHaveCount(0);
  } finally {
    await bridge.stop();
  }
});

test('without MediaStreamTrackProcessor (as in Firefox and Safari): a note on load, a warning while live with the tab hidden', async ({ page }) => {
  await page.addInitScript(() => {
    delete (window as unknown as { MediaStreamTrackProcessor?: unknown }).MediaStreamTrackProcessor;
  });
  const bridge = await startBridge();
  try {
    await page.goto(bridge.url);
    await expect(page.locator('[data-capability="note"]').first()).toContainText('Keep this tab visible');
    await page.getByRole('button', { name: 'Go live' }).click();
    await expect(page.locator('.status[data-state="live"]')).toHaveCount(1, { timeout: 20_000 });
    // Headless pages are always visible: tell the page otherwise, as a browser does for a tab behind another.
    await page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await expect(page.locator('[data-warning="hidden"]')).toBeVisible();
    await page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'visible' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await expect(page.locator('[data-warning="hidden"]')).toHaveCount(0);
    await page.getByRole('button', { name: 'End stream' }).click();
    await expect(page.getByRole('button', { name: 'Go live' })).toBeVisible({ timeout: 15_000 });
  } finally {
    await bridge.stop();
  }
});

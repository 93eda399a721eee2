import { AxeBuilder } from '@axe-core/playwright';
import { expect, test, type Page } from '@playwright/test';
import { startBridge, type Bridge } from './support/bridge.js';

// Accessibility of the studio and the watch page, idle and live: axe-core finds no serious or
// critical violation, and the keyboard alone reaches every control and goes live.

let bridge: Bridge;

test.describe.configure({ mode: 'serial' });

test.beforeAll(async () => {
  bridge = await startBridge();
});

test.afterAll(async () => {
  await bridge?.stop();
});

/** axe-core's serious and critical violations on the page as it is, one line each. */
async function seriousViolations(page: Page): Promise<string[]> {
  const { violations } = await new AxeBuilder({ page }).analyze();
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  return bad.map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/**
 * Tabs through the page from the top and returns the controls Tab never reached: every visible,
 * enabled button, link, field and select is tagged first, then visited ones are struck off.
 */
async function unreachedByTab(page: Page): Promise<string[]> {
  const total = await page.evaluate(() => {
    for (const el of document.querySelectorAll<HTMLElement>('[data-a11y-control]')) delete el.dataset['a11yControl'];
    const controls = [...document.querySelectorAll<HTMLElement>('a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])')].filter(
      (el) => !(el as HTMLButtonElement).disabled && el.getClientRects().length > 0 && el.closest('dialog:not([open])') === null,
    );
    controls.forEach((el, i) => (el.dataset['a11yControl'] = String(i)));
    (document.activeElement as HTMLElement | null)?.blur();
    return controls.length;
  });
  expect(total).toBeGreaterThan(0);
  const seen = new Set<string>();
  for (let i = 0; i < total * 2 + 5 && seen.size < total; i++) {
    await page.keyboard.press('Tab');
    const id = await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset['a11yControl'] ?? null);
    if (id !== null) seen.add(id);
  }
  return page.evaluate(
    (reached) =>
      [...document.querySelectorAll<HTMLElement>('[data-a11y-control]')]
        .filter((el) => !reached.includes(el.dataset['a11yControl'] ?? ''))
        .map((el) => `${el.tagName.toLowerCase()} ${el.getAttribute('aria-label') ?? el.textContent?.trim() ?? ''}`),
    [...seen],
  );
}

/** Presses Tab until the focused element is `name`'s button (at most `limit` times). */
async function tabTo(page: Page, name: string, limit = 80): Promise<void> {
  for (let i = 0; i < limit; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((n) => document.activeElement?.tagName === 'BUTTON' && document.activeElement.textContent?.trim() === n, name)) return;
  }
  throw new Error(`Tab never reached the ${name} button`);
}

async function shownFrames(page: Page): Promise<number> {
  return page.locator('video').evaluate((v: HTMLVideoElement) => v.getVideoPlaybackQuality().totalVideoFrames);
}

test('the studio and the watch page, idle and live: no serious axe violation, everything by keyboard', async ({ page, context }) => {
  page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
  await page.goto(bridge.url);
  await expect(page.getByRole('button', { name: 'Go live' })).toBeEnabled();
  await expect(page.getByLabel('Server URL', { exact: true }).first()).toHaveValue(/^rtmp:\/\/127\.0\.0\.1:\d+\/live$/);
  const key = await page.getByLabel('Stream key', { exact: true }).first().inputValue();
  // A second destination shows a platform's guidance and its controls.
  await page.getByRole('button', { name: 'Add destination' }).click();
  const twitch = page.getByRole('group', { name: 'Destination 2' });
  await twitch.getByLabel('Platform').selectOption('twitch');
  await expect(twitch.getByLabel('Server URL', { exact: true })).toHaveValue('rtmps://live.twitch.tv:443/app');
  await twitch.getByRole('switch', { name: 'Enabled' }).setChecked(false);

  expect(await seriousViolations(page), 'studio, idle').toEqual([]);
  expect(await unreachedByTab(page), 'studio controls Tab does not reach').toEqual([]);

  // Go live with the keyboard: Tab to the button, Enter.
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  await tabTo(page, 'Go live');
  await page.keyboard.press('Enter');
  await expect(page.locator('.status[data-state="live"]')).toHaveCount(1, { timeout: 20_000 });
  await expect(page.getByRole('button', { name: 'End stream' })).toBeVisible();

  // The shortcuts: M mutes, ? opens the help, L asks before ending and Escape keeps the stream.
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  await page.keyboard.press('m');
  await expect(page.getByRole('button', { name: 'Unmute microphone' })).toHaveAttribute('aria-pressed', 'true');
  await page.keyboard.press('m');
  await expect(page.getByRole('button', { name: 'Mute microphone' })).toHaveAttribute('aria-pressed', 'false');
  await page.keyboard.press('?');
  const help = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
  await expect(help).toBeVisible();
  await expect(help).toContainText('Mute or unmute the microphone');
  expect(await seriousViolations(page), 'studio, help open').toEqual([]);
  await page.keyboard.press('Escape');
  await expect(help).toBeHidden();
  await page.keyboard.press('l');
  const ask = page.getByRole('dialog', { name: 'End the stream now?' });
  await expect(ask).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(ask).toBeHidden();

  // Live for a few seconds: the stats and their graphs are on the page.
  await expect(page.locator('[data-stat="fps"]')).toBeVisible({ timeout: 10_000 });
  await expect(page.locator('.state[data-phase="live"] [data-elapsed]')).not.toHaveText('00:00:00', { timeout: 5_000 });
  expect(await seriousViolations(page), 'studio, live').toEqual([]);
  expect(await unreachedByTab(page), 'studio controls Tab does not reach while live').toEqual([]);

  // The watch page of that stream, playing: the browser's decoder counts the frames.
  const viewer = await context.newPage();
  viewer.on('pageerror', (err) => console.log(`viewer page error: ${err.message}`));
  await viewer.goto(new URL(`watch/live/${encodeURIComponent(key)}`, bridge.url).href);
  await expect.poll(() => shownFrames(viewer), { timeout: 20_000 }).toBeGreaterThan(30);
  expect(await seriousViolations(viewer), 'watch page, live').toEqual([]);
  expect(await unreachedByTab(viewer), 'watch page controls Tab does not reach').toEqual([]);
  await viewer.close();

  // End from the keyboard: L, then Tab to Confirm and Enter.
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  await page.keyboard.press('l');
  await expect(ask).toBeVisible();
  await tabTo(page, 'Confirm', 5);
  await page.keyboard.press('Enter');
  await expect(page.getByRole('button', { name: 'Go live' })).toBeVisible({ timeout: 15_000 });
  await expect(page.getByRole('alert')).toHaveCount(0);
});

test('the watch page with nothing live: no serious axe violation, everything by keyboard', async ({ page }) => {
  page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
  await page.goto(new URL('watch/live/nobody-here', bridge.url).href);
  await expect(page.locator('main, body > #app > *').first()).toBeVisible();
  await page.waitForTimeout(2000);
  expect(await seriousViolations(page), 'watch page, idle').toEqual([]);
  expect(await unreachedByTab(page), 'watch page controls Tab does not reach').toEqual([]);
});

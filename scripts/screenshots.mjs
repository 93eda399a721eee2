// `node scripts/screenshots.mjs`: builds, then makes the README's screenshots from a real bridge
// in Debian Chromium (1280×800 each, refused above 300 KB, into docs/img/):
// - restream.png: /restream adds an input, ffmpeg publishes the test fixture with the key the
//   page shows, one nginx-rtmp destination goes live beside a Twitch preset left off;
// - studio.png: the studio (fake camera and microphone) live to the embedded server for a while,
//   a Twitch destination beside it left off, the stats graphs filled;
// - watch.png: the watch page playing that stream.
// `node scripts/screenshots.mjs studio` makes the studio's and the watch page's only.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { loadHarness, root, startBridge } from '../bench/support.mjs';

const IMG = join(root, 'docs', 'img');
const MAX_BYTES = 300 * 1024;
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

if (spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' }).status !== 0) process.exit(1);

const { benchFlv, startNginxRtmp } = await loadHarness();
const fixture = await benchFlv();
const nginx = await startNginxRtmp({ record: false });
// A setup directory of its own: the user's ~/.config/onair/restream.json stays untouched.
const configDir = mkdtempSync(join(tmpdir(), 'onair-screenshots-'));
const bridge = await startBridge(['--config-dir', configDir]);
const browser = await chromium.launch({
  executablePath,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
});
const only = process.argv[2];
let encoder;

/** Saves the page as docs/img/<name>.png, refused above MAX_BYTES. */
async function shoot(page, name) {
  const out = join(IMG, `${name}.png`);
  mkdirSync(IMG, { recursive: true });
  await page.screenshot({ path: out });
  const size = statSync(out).size;
  console.log(`${pathToFileURL(out).href}: ${(size / 1024).toFixed(0)} KB`);
  if (size > MAX_BYTES) throw new Error(`${out} is ${size} bytes, over ${MAX_BYTES}`);
}

async function restreamShot() {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
  await page.goto(`${bridge.url}restream`);
  await page.getByRole('region', { name: 'Add input' }).getByLabel('Name').fill('OBS');
  await page.getByRole('button', { name: 'Add input' }).click();
  const input = page.getByRole('article', { name: 'Input OBS' });
  const key = await input.getByLabel('Stream key', { exact: true }).first().inputValue({ timeout: 10_000 });
  const server = await input.getByLabel('Server', { exact: true }).inputValue();

  encoder = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', fixture, '-map', '0', '-c', 'copy', '-f', 'flv', `${server}/${key}`], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  encoder.on('error', (err) => console.error(`ffmpeg: ${err.message}`));
  await input.locator('.pill').first().filter({ hasText: 'live' }).waitFor({ timeout: 20_000 });

  const form = input.getByRole('form', { name: /^Add a destination/ });
  const rows = input.locator('li[data-destination]');
  const add = async (platform, serverUrl, streamKey, autoStart) => {
    await form.getByLabel('Platform').selectOption(platform);
    if (serverUrl !== undefined) await form.getByLabel('Server URL', { exact: true }).fill(serverUrl);
    await form.getByLabel('Stream key', { exact: true }).fill(streamKey);
    await form.getByRole('switch', { name: 'Start when the input goes live' }).setChecked(autoStart);
    const before = await rows.count();
    await form.getByRole('button', { name: 'Add destination' }).click();
    await rows.nth(before).waitFor();
  };
  const nginxServer = nginx.url('live', 'x').replace(/\/x$/, '');
  // The input is live: with autoStart the nginx destination starts at once. The Twitch preset
  // stays off (no internet here).
  await add('custom', nginxServer, 'show', true);
  await add('twitch', undefined, 'live_000000000_placeholder', false);
  await rows.filter({ hasText: nginxServer }).locator('.pill').filter({ hasText: 'live' }).waitFor({ timeout: 20_000 });
  // The preview has shown frames and the stats have a few seconds behind them.
  const preview = input.getByLabel('Preview of OBS');
  const deadline = Date.now() + 20_000;
  while ((await preview.evaluate((v) => v.getVideoPlaybackQuality().totalVideoFrames)) < 60) {
    if (Date.now() > deadline) throw new Error('the preview showed no frames');
    await page.waitForTimeout(250);
  }
  await page.waitForTimeout(3000);
  // The input, its preview and its destinations fill the picture.
  await input.evaluate((el) => el.ownerDocument.defaultView.scrollTo(0, el.getBoundingClientRect().top + el.ownerDocument.defaultView.scrollY - 16));
  await shoot(page, 'restream');
  await page.close();
  encoder.kill('SIGTERM');
}

/** The studio live to the embedded server; then the watch page playing it. */
async function studioAndWatchShots() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, permissions: ['camera', 'microphone'] });
  const page = await context.newPage();
  page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
  await page.goto(bridge.url);
  const go = page.getByRole('button', { name: 'Go live' });
  await go.waitFor();
  await page.getByLabel('Server URL', { exact: true }).first().waitFor();
  const key = await page.getByLabel('Stream key', { exact: true }).first().inputValue();
  if ((await page.getByLabel('Server URL', { exact: true }).count()) === 1) {
    await page.getByRole('button', { name: 'Add destination' }).click();
    const second = page.getByRole('group', { name: 'Destination 2' });
    await second.getByLabel('Platform').selectOption('twitch');
    await second.getByLabel('Stream key', { exact: true }).fill('live_000000000_placeholder');
    await second.getByRole('switch', { name: 'Enabled' }).setChecked(false);
  }
  await go.click();
  await page.locator('.status[data-state="live"]').first().waitFor({ timeout: 20_000 });
  // A minute of graphs would be best; 20 s shows their shape.
  await page.waitForTimeout(20_000);
  await shoot(page, 'studio');

  const viewer = await context.newPage();
  await viewer.goto(new URL(`watch/live/${encodeURIComponent(key)}`, bridge.url).href);
  const deadline = Date.now() + 20_000;
  while ((await viewer.locator('video').evaluate((v) => v.getVideoPlaybackQuality().totalVideoFrames)) < 90) {
    if (Date.now() > deadline) throw new Error('the watch page showed no frames');
    await viewer.waitForTimeout(250);
  }
  await viewer.waitForTimeout(2000);
  await shoot(viewer, 'watch');
  await page.getByRole('button', { name: 'End stream' }).click();
  await go.waitFor({ timeout: 15_000 });
  await context.close();
}

try {
  if (only !== 'studio') await restreamShot();
  await studioAndWatchShots();
} finally {
  encoder?.kill('SIGTERM');
  await browser.close();
  await bridge.stop();
  await nginx.dispose();
  rmSync(configDir, { recursive: true, force: true });
}

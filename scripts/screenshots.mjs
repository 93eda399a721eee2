// `node scripts/screenshots.mjs`: builds, then makes the README's screenshot of the Restream view
// from a real bridge: Debian Chromium opens /restream, adds an input, ffmpeg publishes the test
// fixture with the key the page shows, one nginx-rtmp destination goes live beside a Twitch
// preset left off. Writes docs/img/restream.png (1280×800, refused above 300 KB).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { loadHarness, root, startBridge } from '../bench/support.mjs';

const OUT = join(root, 'docs', 'img', 'restream.png');
const MAX_BYTES = 300 * 1024;
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

if (spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' }).status !== 0) process.exit(1);

const { benchFlv, startNginxRtmp } = await loadHarness();
const fixture = await benchFlv();
const nginx = await startNginxRtmp({ record: false });
// A setup directory of its own: the user's ~/.config/onair/restream.json stays untouched.
const configDir = mkdtempSync(join(tmpdir(), 'onair-screenshots-'));
const bridge = await startBridge(['--config-dir', configDir]);
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'] });
let encoder;
try {
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

  mkdirSync(join(root, 'docs', 'img'), { recursive: true });
  await page.screenshot({ path: OUT });
  const size = statSync(OUT).size;
  console.log(`${pathToFileURL(OUT).href}: ${(size / 1024).toFixed(0)} KB`);
  if (size > MAX_BYTES) throw new Error(`${OUT} is ${size} bytes, over ${MAX_BYTES}`);
} finally {
  encoder?.kill('SIGTERM');
  await browser.close();
  await bridge.stop();
  await nginx.dispose();
  rmSync(configDir, { recursive: true, force: true });
}

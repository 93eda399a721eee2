import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { startNginxRtmp, type NginxRtmp } from '../bridge/test/harness/nginx.js';
import { runChecked } from '../bridge/test/harness/proc.js';
import { startBridge, type Bridge } from './support/bridge.js';

const FPS = 30;
const SCENE_SECONDS = 10;
// Decoded frames are judged at this size (the program is 1280×720).
const W = 320;
const H = 180;

type Rgb = readonly [number, number, number];

/** The known colours: the fake sources, the logo image, the lower third's bar (compositor.ts), black. */
const COLOURS = {
  camera: [20, 180, 60],
  screen: [40, 70, 210],
  logo: [250, 220, 20],
  bar: [200, 16, 46],
  black: [0, 0, 0],
  // The slate's background (compositor.ts); text only near the middle.
  slate: [16, 24, 32],
} as const satisfies Record<string, Rgb>;
type Colour = keyof typeof COLOURS;

/** Points of the frame (fractions across, down) and the colour each must show, per program state. */
/** Picture-in-picture with the camera box moved off its default corner (bottom right) to `box`. */
function pipLayout(box: { x: number; y: number; w: number; h: number }): Record<string, [number, number, Colour]> {
  return {
    screen: [0.7, 0.5, 'screen'],
    defaultCorner: [0.83, 0.83, 'screen'],
    camera: [box.x + box.w / 2, box.y + box.h / 2, 'camera'],
    logo: [0.91, 0.13, 'logo'],
    lowerThird: [0.42, 0.83, 'bar'],
  };
}
const SIDE: Record<string, [number, number, Colour]> = {
  screen: [0.25, 0.5, 'screen'],
  camera: [0.75, 0.5, 'camera'],
  barAbove: [0.25, 0.12, 'black'],
  barBelow: [0.75, 0.85, 'black'],
  logo: [0.91, 0.13, 'logo'],
  lowerThird: [0.42, 0.83, 'bar'],
};
const SIDE_HIDDEN = { ...SIDE, lowerThird: [0.42, 0.83, 'black'] as [number, number, Colour] };
const SLATE: Record<string, [number, number, Colour]> = {
  left: [0.25, 0.5, 'slate'],
  right: [0.75, 0.2, 'slate'],
  low: [0.5, 0.85, 'slate'],
  logo: [0.91, 0.13, 'logo'],
};
const SLATE_SECONDS = 3;

let bridge: Bridge;
let nginx: NginxRtmp;
let scratch: string;

test.beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'onair-scenes-'));
  [bridge, nginx] = await Promise.all([startBridge(), startNginxRtmp({ record: true })]);
});

test.afterAll(async () => {
  await bridge?.stop();
  await nginx?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

/**
 * The camera and the screen become canvases of one known colour each, with a frame counter drawn
 * in a corner (so every frame differs, as a real source's would); the microphone stays Chromium's
 * fake one.
 */
async function fakeSources(page: Page): Promise<void> {
  await page.addInitScript((colours: { camera: Rgb; screen: Rgb }) => {
    const devices = navigator.mediaDevices;
    const getUserMedia = devices.getUserMedia.bind(devices);
    const source = (width: number, height: number, [r, g, b]: Rgb): MediaStream => {
      const canvas = document.createElement('canvas');
      canvas.width = width;
      canvas.height = height;
      const ctx = canvas.getContext('2d')!;
      let n = 0;
      const draw = (): void => {
        ctx.fillStyle = `rgb(${r},${g},${b})`;
        ctx.fillRect(0, 0, width, height);
        ctx.fillStyle = '#fff';
        ctx.font = `${Math.round(height / 24)}px monospace`;
        ctx.fillText(String(n++), width / 60, height / 20);
      };
      draw();
      setInterval(draw, 1000 / 30);
      return canvas.captureStream(30);
    };
    devices.getUserMedia = (c?: MediaStreamConstraints) => (c?.video ? Promise.resolve(source(1280, 720, colours.camera)) : getUserMedia(c));
    devices.getDisplayMedia = () => Promise.resolve(source(1920, 1080, colours.screen));
  }, { camera: COLOURS.camera, screen: COLOURS.screen });
}

/** Every frame of the recording at W×H RGB, with its presentation time. */
async function decodeFrames(file: string): Promise<{ pts: number; rgb: Uint8Array }[]> {
  const times = (await runChecked('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pts_time', '-of', 'csv=p=0', file], { captureStdout: true, timeoutMs: 60_000 }))
    .toString('utf8')
    .trim()
    .split('\n')
    .map(Number);
  const raw = await runChecked('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:v:0', '-fps_mode', 'passthrough', '-vf', `scale=${W}:${H}`, '-pix_fmt', 'rgb24', '-f', 'rawvideo', '-'], {
    captureStdout: true,
    timeoutMs: 120_000,
  });
  const size = W * H * 3;
  expect(raw.length).toBe(times.length * size);
  return times.map((pts, i) => ({ pts, rgb: new Uint8Array(raw.buffer, raw.byteOffset + i * size, size) }));
}

/** Mean colour of a 9×9 patch around a point (fractions of the frame). */
function sample(rgb: Uint8Array, fx: number, fy: number): Rgb {
  const cx = Math.round(fx * W);
  const cy = Math.round(fy * H);
  const sum = [0, 0, 0];
  let n = 0;
  for (let y = cy - 4; y <= cy + 4; y++) {
    for (let x = cx - 4; x <= cx + 4; x++) {
      for (let c = 0; c < 3; c++) sum[c]! += rgb[(y * W + x) * 3 + c]!;
      n++;
    }
  }
  return [sum[0]! / n, sum[1]! / n, sum[2]! / n];
}

/** The known colour nearest to `rgb`, when it is near enough to be that colour through a lossy codec. */
function classify(rgb: Rgb): Colour | undefined {
  let best: Colour | undefined;
  let bestD = Infinity;
  for (const [name, ref] of Object.entries(COLOURS) as [Colour, Rgb][]) {
    const d = Math.hypot(rgb[0] - ref[0], rgb[1] - ref[1], rgb[2] - ref[2]);
    if (d < bestD) {
      bestD = d;
      best = name;
    }
  }
  return bestD <= 60 ? best : undefined;
}

/** The points of `layout` that a frame gets wrong, as `name: seen` strings. */
function mismatches(rgb: Uint8Array, layout: Record<string, [number, number, Colour]>): string[] {
  return Object.entries(layout).flatMap(([name, [x, y, want]]) => {
    const seen = sample(rgb, x, y);
    const got = classify(seen);
    return got === want ? [] : [`${name}: ${got ?? seen.map(Math.round).join(',')}`];
  });
}

/** The output frame the worker put the last program on, once it is on `scene`. */
async function onAirFrame(page: Page, scene: string): Promise<number> {
  const status = page.locator(`[data-scene-on-air="${scene}"]`);
  await expect(status).toHaveCount(1, { timeout: 5_000 });
  return Number(await status.getAttribute('data-frame'));
}

/**
 * Live in picture-in-picture, then side by side with the lower third hidden half-way; every frame
 * of nginx's recording judged; then a reload brings the program back.
 */
async function scenesLive(page: Page, key: string, withoutTrackProcessor: boolean): Promise<void> {
  if (withoutTrackProcessor) {
    await page.addInitScript(() => {
      delete (window as unknown as { MediaStreamTrackProcessor?: unknown }).MediaStreamTrackProcessor;
    });
  }
  const cspViolations: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
  await fakeSources(page);
  await page.goto(bridge.url);
  await expect(page.getByRole('button', { name: 'Go live' })).toBeEnabled();
  await page.getByLabel('Server URL', { exact: true }).first().fill(nginx.url('live', 'x').replace(/\/x$/, ''));
  await page.getByLabel('Stream key', { exact: true }).first().fill(key);

  // The known logo: a flat yellow square made by ffmpeg.
  const logo = join(scratch, 'logo.png');
  await runChecked('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `color=c=0x${COLOURS.logo.map((c) => c.toString(16).padStart(2, '0')).join('')}:s=64x64`, '-frames:v', '1', '-y', logo]);
  await page.getByLabel('Logo image').setInputFiles({ name: 'logo.png', mimeType: 'image/png', buffer: readFileSync(logo) });
  await expect(page.getByAltText('Logo preview')).toBeVisible();
  await page.getByLabel('Name', { exact: true }).fill('Ada Lovelace');
  await page.getByLabel('Title', { exact: true }).fill('Host');
  await page.getByRole('button', { name: 'Show lower third' }).click();

  await page.getByRole('button', { name: 'Share screen' }).click();
  await expect(page.getByRole('button', { name: 'Stop sharing screen' })).toBeVisible();
  // Sharing from the camera scene shows the screen; key 3 is the picture-in-picture scene.
  await expect(page.locator('button[data-scene="screen"]')).toHaveAttribute('aria-pressed', 'true');
  await page.keyboard.press('3');
  await expect(page.locator('button[data-scene="pip"]')).toHaveAttribute('aria-pressed', 'true');
  // The camera box: the top-left preset, then dragged 10 % of the frame right and down and made
  // 10 % wider by its corner handle, with the mouse on the 320-pixel stage.
  await page.getByRole('button', { name: 'Top left' }).click();
  const box = page.getByRole('slider', { name: /Camera box position/ });
  const drag = async (from: { x: number; y: number }, dx: number, dy: number): Promise<void> => {
    await page.mouse.move(from.x, from.y);
    await page.mouse.down();
    await page.mouse.move(from.x + dx / 2, from.y + dy / 2, { steps: 4 });
    await page.mouse.move(from.x + dx, from.y + dy, { steps: 4 });
    await page.mouse.up();
  };
  const stage = (await box.locator('..').boundingBox())!;
  let r = (await box.boundingBox())!;
  await drag({ x: r.x + r.width / 2, y: r.y + r.height / 2 }, 0.1 * stage.width, 0.1 * stage.height);
  r = (await box.boundingBox())!;
  await drag({ x: r.x + r.width, y: r.y + r.height }, 0.1 * stage.width, 0);
  const pip = await page.evaluate(() => (JSON.parse(localStorage.getItem('onair.scenes.v1') ?? '{}') as { pip: { x: number; y: number; w: number; h: number } }).pip);
  console.log(`camera box after the drags: ${JSON.stringify(pip)}`);
  expect(pip.x).toBeCloseTo(0.13, 1);
  expect(pip.y).toBeCloseTo(0.13, 1);
  expect(pip.w).toBeCloseTo(0.38, 1);
  const PIP = pipLayout(pip);

  await page.getByRole('button', { name: 'Go live' }).click();
  await expect(page.locator('.status[data-state="live"]')).toHaveCount(1, { timeout: 20_000 });
  await page.waitForTimeout(SCENE_SECONDS * 1000);
  await page.getByRole('button', { name: 'Side by side' }).click();
  const sideFrame = await onAirFrame(page, 'side');
  await page.waitForTimeout((SCENE_SECONDS / 2) * 1000);
  await page.getByRole('button', { name: 'Hide lower third' }).click();
  await expect(page.getByRole('button', { name: 'Show lower third' })).toBeVisible();
  const onAir = page.locator('[data-scene-on-air="side"]');
  await expect.poll(async () => Number(await onAir.getAttribute('data-frame')), { timeout: 5_000 }).toBeGreaterThan(sideFrame);
  const hideFrame = Number(await onAir.getAttribute('data-frame'));
  await page.waitForTimeout((SCENE_SECONDS / 2) * 1000);
  // Then a fade to the slate.
  await page.getByLabel('Transition').selectOption('fade');
  await page.getByRole('button', { name: 'Slate' }).click();
  const slateFrame = await onAirFrame(page, 'slate');
  await page.waitForTimeout(SLATE_SECONDS * 1000);
  const compose = page.locator('[data-stat="compose-ms"]');
  console.log(`compose per frame: median ${await compose.getAttribute('data-median')} ms, p95 ${await compose.getAttribute('data-p95')} ms; stats: ${await page.locator('.stats').textContent()}`);
  await page.getByRole('button', { name: 'End stream' }).click();
  await expect(page.getByRole('button', { name: 'Go live' })).toBeVisible({ timeout: 15_000 });

  const frames = await decodeFrames(await nginx.recordingDone(key, 15_000));
  console.log(`${frames.length} frames decoded; side by side asked at output frame ${sideFrame}, lower third hidden at ${hideFrame}`);
  // Frames the worker dropped for running late (the cores are shared) leave gaps in the output
  // numbering, never a wrong picture; each phase must still hold most of its seconds.
  const enough = (seconds: number): number => Math.floor(0.6 * seconds * FPS);
  // The recording starts at output frame 0 (the first keyframe), stamped n / fps.
  const indexed = frames.map((f) => ({ n: Math.round(f.pts * FPS), rgb: f.rgb }));
  const bad = (from: number, to: number, layout: Record<string, [number, number, Colour]>): string[] =>
    indexed.filter((f) => f.n >= from && f.n < to).flatMap((f) => {
      const m = mismatches(f.rgb, layout);
      return m.length === 0 ? [] : [`frame ${f.n}: ${m.join('; ')}`];
    });
  // Picture-in-picture from the first second (the lower third slides in over the first 0.4 s).
  const pipFrames = indexed.filter((f) => f.n >= FPS && f.n < sideFrame).length;
  expect(pipFrames).toBeGreaterThanOrEqual(enough(SCENE_SECONDS - 1));
  expect(bad(FPS, sideFrame, PIP)).toEqual([]);
  // The cut: the first side-by-side frame lands within 5 frames of the worker getting the command.
  const firstSide = indexed.find((f) => f.n >= sideFrame - 30 && mismatches(f.rgb, SIDE).length === 0);
  expect(firstSide, 'no side-by-side frame').toBeDefined();
  console.log(`first side-by-side frame: ${firstSide!.n} (asked at ${sideFrame})`);
  expect(firstSide!.n).toBeGreaterThanOrEqual(sideFrame);
  expect(firstSide!.n - sideFrame).toBeLessThanOrEqual(5);
  expect(bad(firstSide!.n, hideFrame, SIDE)).toEqual([]);
  // The lower third slides out over 0.4 s; after it, only what is under it.
  expect(bad(hideFrame + Math.round(0.5 * FPS), slateFrame, SIDE_HIDDEN)).toEqual([]);
  expect(indexed.filter((f) => f.n >= firstSide!.n && f.n < hideFrame).length).toBeGreaterThanOrEqual(enough(SCENE_SECONDS / 2 - 1));
  expect(indexed.filter((f) => f.n >= hideFrame + Math.round(0.5 * FPS) && f.n < slateFrame).length).toBeGreaterThanOrEqual(enough(SCENE_SECONDS / 2 - 1));
  // The fade: 9 frames (0.3 s) from the worker's receipt, the screen's blue giving way to the
  // slate's through blends that are neither; then the slate alone.
  // The fade advances once per frame drawn: a frame the worker dropped for running late was never
  // drawn, so the step is the frame's rank among those recorded from the switch on.
  const fromSlate = indexed.filter((f) => f.n >= slateFrame);
  const fading = fromSlate.slice(2, 7);
  expect(fading.length).toBe(5);
  for (const [i, f] of fading.entries()) {
    const [, , blue] = sample(f.rgb, 0.25, 0.5);
    const share = (COLOURS.screen[2] - blue) / (COLOURS.screen[2] - COLOURS.slate[2]);
    const expected = (i + 3) / 9;
    console.log(`fade frame ${f.n}: blue ${blue.toFixed(0)}, slate share ${share.toFixed(2)} (drawn ${expected.toFixed(2)})`);
    expect(Math.abs(share - expected)).toBeLessThanOrEqual(0.2);
  }
  // The ninth frame drawn finishes the fade.
  const slateAlone = fromSlate[8]?.n ?? Infinity;
  expect(bad(slateAlone, Infinity, SLATE)).toEqual([]);
  expect(indexed.filter((f) => f.n >= slateAlone).length).toBeGreaterThanOrEqual(enough(SLATE_SECONDS - 1));
  expect(cspViolations).toEqual([]);

  // Scenes, layout and overlays come back after a reload.
  await page.reload();
  await expect(page.locator('button[data-scene="slate"]')).toHaveAttribute('aria-pressed', 'true');
  await expect(page.getByLabel('Transition')).toHaveValue('fade');
  await expect(page.getByLabel('Name', { exact: true })).toHaveValue('Ada Lovelace');
  await expect(page.getByRole('button', { name: 'Show lower third' })).toBeVisible();
  await expect(page.getByAltText('Logo preview')).toBeVisible();
}

test('scenes and overlays in the decoded stream: picture-in-picture, then side by side, logo and lower third', async ({ page }) => {
  await scenesLive(page, 'scenes', false);
});

// Frames posted from requestVideoFrameCallback, as in Firefox and Safari (the processor removed here).
test('the same without MediaStreamTrackProcessor: both sources posted from requestVideoFrameCallback', async ({ page }) => {
  await scenesLive(page, 'scenes-rvfc', true);
});

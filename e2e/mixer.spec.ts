import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import { startNginxRtmp, type NginxRtmp } from '../bridge/test/harness/nginx.js';
import { runChecked, spawnTracked } from '../bridge/test/harness/proc.js';
import { startBridge, type Bridge } from './support/bridge.js';

/** The fake sources' tones: frequency and amplitude (1 = full scale) of each. */
const MIC = { hz: 440, amplitude: 0.5 };
const SCREEN = { hz: 1000, amplitude: 0.5 };
/** The sound file: a WAV made by ffmpeg, 2 s of whole cycles so its loop is seamless. */
const FILE = { hz: 250, amplitude: 0.25 };
const SCREEN_GAIN_DB = -6;
const FILE_GAIN_DB = -3;
/** Seconds live before the microphone is muted, and after. */
const BEFORE_MUTE_S = 9;
const AFTER_MUTE_S = 7;

/** A sine's RMS in dBFS at `amplitude` and `gainDb`. */
const toneDb = (amplitude: number, gainDb = 0): number => 20 * Math.log10(amplitude / Math.SQRT2) + gainDb;

let bridge: Bridge;
let nginx: NginxRtmp;
let scratch: string;

test.beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'onair-mixer-'));
  [bridge, nginx] = await Promise.all([startBridge(), startNginxRtmp({ record: true })]);
});

test.afterAll(async () => {
  await bridge?.stop();
  await nginx?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

/**
 * The microphone becomes a 440 Hz sine and the shared screen a canvas with a 1 kHz sine, made by
 * oscillators in the page, so their levels are known; the camera a canvas. The page's own context
 * starts on the first click, as any page's must.
 */
async function fakeSources(page: Page): Promise<void> {
  await page.addInitScript(
    ({ mic, screen }: { mic: { hz: number; amplitude: number }; screen: { hz: number; amplitude: number } }) => {
      const ctx = new AudioContext({ sampleRate: 48_000 });
      const start = (): void => void ctx.resume();
      document.addEventListener('pointerdown', start, true);
      const tone = ({ hz, amplitude }: { hz: number; amplitude: number }): MediaStreamTrack => {
        const osc = new OscillatorNode(ctx, { frequency: hz });
        const gain = new GainNode(ctx, { gain: amplitude });
        const dest = new MediaStreamAudioDestinationNode(ctx, { channelCount: 1 });
        osc.connect(gain).connect(dest);
        osc.start();
        return dest.stream.getAudioTracks()[0]!;
      };
      const canvas = (width: number, height: number, colour: string): MediaStreamTrack => {
        const c = document.createElement('canvas');
        c.width = width;
        c.height = height;
        const g = c.getContext('2d')!;
        let n = 0;
        setInterval(() => {
          g.fillStyle = colour;
          g.fillRect(0, 0, width, height);
          g.fillStyle = '#fff';
          g.fillText(String(n++), 10, 20);
        }, 1000 / 30);
        return c.captureStream(30).getVideoTracks()[0]!;
      };
      const devices = navigator.mediaDevices;
      devices.getUserMedia = (c?: MediaStreamConstraints) => Promise.resolve(new MediaStream([c?.video ? canvas(1280, 720, '#145') : tone(mic)]));
      devices.getDisplayMedia = () => Promise.resolve(new MediaStream([canvas(1920, 1080, '#246'), tone(screen)]));
    },
    { mic: MIC, screen: SCREEN },
  );
}

/** RMS level (dBFS, both channels) of the recording from `fromS` for `durationS`, through a narrow band-pass at `hz` if given. */
async function rmsDb(file: string, fromS: number, durationS: number, hz?: number): Promise<number> {
  // Three 2-pole band-passes of Q 10: unity at `hz`, each 21 dB down at the nearest other tone
  // (250 vs 440 Hz), so every other tone lands more than 60 dB down.
  const band = hz === undefined ? '' : `${Array(3).fill(`bandpass=f=${hz}:t=q:w=10`).join(',')},`;
  const child = spawnTracked('ffmpeg', ['-hide_banner', '-nostdin', '-ss', String(fromS), '-t', String(durationS), '-i', file, '-map', '0:a', '-af', `${band}astats=measure_perchannel=none`, '-f', 'null', '-'], {
    keepLines: 400,
  });
  const exit = await child.exited;
  const m = /Overall[\s\S]*RMS level dB: (-?[\d.]+|-inf)/.exec(child.tail());
  if (exit.code !== 0 || m === null) throw new Error(`astats on ${file} failed:\n${child.tail()}`);
  return m[1] === '-inf' ? -Infinity : Number(m[1]);
}

type Readings = Record<string, { peak: number; rms: number }>;

/** The median of every meter's readings (dBFS) over about two seconds, read from the DOM. */
async function readMeters(page: Page): Promise<Readings> {
  const samples: Readings[] = [];
  for (let i = 0; i < 10; i++) {
    samples.push(
      await page.locator('[data-strip]').evaluateAll((strips) =>
        Object.fromEntries(
          strips.map((s) => {
            const m = s.querySelector('[role="meter"]')!;
            return [s.getAttribute('data-strip')!, { peak: Number(m.getAttribute('data-peak-db')), rms: Number(m.getAttribute('data-rms-db')) }];
          }),
        ),
      ),
    );
    await page.waitForTimeout(200);
  }
  const median = (v: number[]): number => v.sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  return Object.fromEntries(
    Object.keys(samples[0]!).map((id) => [id, { peak: median(samples.map((x) => x[id]!.peak)), rms: median(samples.map((x) => x[id]!.rms)) }]),
  );
}

/** The audio track's last packet time, s. */
async function audioEndS(file: string): Promise<number> {
  const out = await runChecked('ffprobe', ['-v', 'error', '-select_streams', 'a:0', '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', file], { captureStdout: true, timeoutMs: 60_000 });
  return Math.max(...out.toString('utf8').trim().split('\n').map((line) => parseFloat(line)).filter((t) => Number.isFinite(t)));
}

/**
 * Three sources at set gains live to nginx-rtmp, the microphone muted half-way; the recording
 * judged tone by tone and against the page's meters; the settings after a reload.
 */
async function mixLive(page: Page, key: string, withoutTrackProcessor: boolean): Promise<void> {
  if (withoutTrackProcessor) {
    await page.addInitScript(() => {
      delete (window as unknown as { MediaStreamTrackProcessor?: unknown }).MediaStreamTrackProcessor;
    });
  }
  page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
  const cspViolations: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  await fakeSources(page);
  const wav = join(scratch, 'tone.wav');
  await runChecked('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `sine=f=${FILE.hz}:r=48000:d=2`, '-af', `volume=${FILE.amplitude / 0.125}`, '-c:a', 'pcm_s16le', '-y', wav]);

  await page.goto(bridge.url);
  await expect(page.getByRole('button', { name: 'Go live' })).toBeEnabled();
  await page.getByLabel('Server URL', { exact: true }).first().fill(nginx.url('live', 'x').replace(/\/x$/, ''));
  await page.getByLabel('Stream key', { exact: true }).first().fill(key);

  // Sharing the screen (a click: the contexts start) brings its audio strip.
  await page.getByRole('button', { name: 'Share screen' }).click();
  const screenStrip = page.locator('[data-strip="screen"]');
  await expect(screenStrip).toBeVisible();
  await screenStrip.getByRole('slider').fill(String(SCREEN_GAIN_DB));
  await expect(screenStrip.locator('output')).toHaveText('-6.0 dB');
  await page.getByLabel('Sound or music file').setInputFiles({ name: 'tone.wav', mimeType: 'audio/wav', buffer: readFileSync(wav) });
  const fileStrip = page.locator('[data-strip="file"]');
  await expect(fileStrip).toBeVisible();
  await fileStrip.getByRole('slider').fill(String(FILE_GAIN_DB));
  await fileStrip.getByRole('button', { name: 'Play sound' }).click();
  await expect(page.locator('[data-strip="mic"] output')).toHaveText('0.0 dB');

  await page.getByRole('button', { name: 'Go live' }).click();
  await expect(page.locator('.status[data-state="live"]')).toHaveCount(1, { timeout: 20_000 });
  const liveAt = Date.now();
  await page.waitForTimeout(3000);
  const meters = await readMeters(page);
  console.log(`meters while all play (peak / RMS dBFS): ${JSON.stringify(meters)}`);
  await page.waitForTimeout(Math.max(0, liveAt + BEFORE_MUTE_S * 1000 - Date.now()));
  await page.getByRole('button', { name: 'Mute microphone' }).click();
  const mutedAt = (Date.now() - liveAt) / 1000;
  await expect(page.getByRole('button', { name: 'Unmute microphone' })).toHaveAttribute('aria-pressed', 'true');
  await page.waitForTimeout(1500);
  const mutedMic = (await readMeters(page))['mic']!;
  await page.waitForTimeout(Math.max(0, liveAt + (BEFORE_MUTE_S + AFTER_MUTE_S) * 1000 - Date.now()));
  const dropped = await page.locator('[data-stat="audio-dropped"]').textContent();
  await page.getByRole('button', { name: 'End stream' }).click();
  await expect(page.getByRole('button', { name: 'Go live' })).toBeVisible({ timeout: 15_000 });
  const file = await nginx.recordingDone(key, 15_000);

  // The recording starts about when the destination went live: judge well inside each part.
  const before = { from: 2, duration: mutedAt - 3.5 };
  // The AAC encoder turns blocks away when the machine is too busy to keep up (the stats count
  // them): the audio must still reach well past the mute.
  const audioEnd = await audioEndS(file);
  expect(audioEnd, `the audio track ends at ${audioEnd} s (${dropped} audio blocks dropped by a busy encoder)`).toBeGreaterThan(mutedAt + 3.5);
  const after = { from: mutedAt + 1.5, duration: Math.min(AFTER_MUTE_S, audioEnd - mutedAt) - 2 };
  const level = {
    mic: await rmsDb(file, before.from, before.duration, MIC.hz),
    screen: await rmsDb(file, before.from, before.duration, SCREEN.hz),
    file: await rmsDb(file, before.from, before.duration, FILE.hz),
    all: await rmsDb(file, before.from, before.duration),
    micMuted: await rmsDb(file, after.from, after.duration, MIC.hz),
    screenAfter: await rmsDb(file, after.from, after.duration, SCREEN.hz),
  };
  console.log(`recording, RMS dBFS: ${JSON.stringify(level)} (mic muted at ${mutedAt.toFixed(1)} s, audio to ${audioEnd} s, ${dropped} audio blocks dropped); meter on the muted mic ${JSON.stringify(mutedMic)}`);

  // Each tone at its set level (±2 dB), relative to the others and absolute.
  expect(Math.abs(level.mic - level.screen - (toneDb(MIC.amplitude) - toneDb(SCREEN.amplitude, SCREEN_GAIN_DB)))).toBeLessThanOrEqual(2);
  expect(Math.abs(level.mic - level.file - (toneDb(MIC.amplitude) - toneDb(FILE.amplitude, FILE_GAIN_DB)))).toBeLessThanOrEqual(2);
  expect(Math.abs(level.mic - toneDb(MIC.amplitude))).toBeLessThanOrEqual(2);
  // Muting the microphone takes its tone away (≥ 40 dB down); the others stay.
  expect(level.mic - level.micMuted).toBeGreaterThanOrEqual(40);
  expect(Math.abs(level.screenAfter - level.screen)).toBeLessThanOrEqual(2);
  // What the meters showed is what was encoded: each source's meter against its tone in the file,
  // the master's against the whole mix.
  const m = (id: string): { peak: number; rms: number } => meters[id]!;
  expect(Math.abs(m('mic').rms - level.mic)).toBeLessThanOrEqual(3);
  expect(Math.abs(m('screen').rms - level.screen)).toBeLessThanOrEqual(3);
  expect(Math.abs(m('file').rms - level.file)).toBeLessThanOrEqual(3);
  expect(Math.abs(m('master').rms - level.all)).toBeLessThanOrEqual(3);
  // A sine's peak is 3 dB over its RMS; the muted strip reads silence.
  expect(Math.abs(m('mic').peak - m('mic').rms - 3.01)).toBeLessThanOrEqual(0.5);
  expect(mutedMic.peak).toBeLessThanOrEqual(-90);
  // The meters' AudioWorklet is a file of the build: nothing the CSP refuses.
  expect(cspViolations).toEqual([]);

  // Gains and mutes come back after a reload.
  await page.reload();
  await expect(page.getByRole('button', { name: 'Unmute microphone' })).toHaveAttribute('aria-pressed', 'true');
  await expect(page.locator('[data-strip="mic"] output')).toHaveText('muted');
  await page.getByRole('button', { name: 'Share screen' }).click();
  await expect(page.locator('[data-strip="screen"] output')).toHaveText('-6.0 dB');
}

test('the mixer: three sources at set gains in the recording, the meters agree with it, a mute removes its tone', async ({ page }) => {
  await mixLive(page, 'mixer', false);
});

// The encoder's audio tapped from the mixer's graph by an AudioWorklet, as in Firefox and Safari (the processor removed here).
test('the same without MediaStreamTrackProcessor: PCM tapped from the master by an AudioWorklet', async ({ page }) => {
  await mixLive(page, 'mixer-tap', true);
});

test("the microphone's processing switches: asked, and read back from the track", async ({ page }) => {
  page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
  await page.goto(bridge.url);
  await expect(page.getByRole('button', { name: 'Go live' })).toBeEnabled();
  const strip = page.locator('[data-strip="mic"]');
  const reported = (name: string) => strip.getByRole('switch', { name }).locator('..').locator('[data-reported]');
  // The studio's defaults, as Chromium's fake microphone reports them.
  await expect(reported('Noise suppression')).toHaveAttribute('data-reported', 'true');
  await expect(reported('Auto gain')).toHaveAttribute('data-reported', 'false');
  // Chromium keeps a live track's processing: the switch opens the microphone again.
  await strip.getByRole('switch', { name: 'Noise suppression' }).setChecked(false);
  await expect(reported('Noise suppression')).toHaveAttribute('data-reported', 'false');
  await expect(reported('Noise suppression')).toHaveText('off');
  await strip.getByRole('switch', { name: 'Auto gain' }).setChecked(true);
  await expect(reported('Auto gain')).toHaveAttribute('data-reported', 'true');
  await expect(reported('Echo cancellation')).toHaveAttribute('data-reported', 'true');
  // The reopened microphone still feeds its strip: its beeps (a few 25 ms readings each) show
  // on the meter, watched on every animation frame.
  await page.waitForFunction(() => Number(document.querySelector('[data-strip="mic"] [role="meter"]')?.getAttribute('data-peak-db')) > -60, null, { polling: 'raf', timeout: 10_000 });
  await page.reload();
  await expect(reported('Noise suppression')).toHaveAttribute('data-reported', 'false');
  await expect(reported('Auto gain')).toHaveAttribute('data-reported', 'true');
  await expect(strip.getByRole('switch', { name: 'Noise suppression' })).not.toBeChecked();
  // A file that is not sound is refused in words, and no strip appears for it.
  await page.getByLabel('Sound or music file').setInputFiles({ name: 'notes.mp3', mimeType: 'audio/mpeg', buffer: Buffer.from('not a sound at all') });
  await expect(page.getByRole('alert')).toHaveText('notes.mp3 is not a sound this browser can play — try an MP3, M4A (AAC), Ogg or WAV file');
  await expect(page.locator('[data-strip="file"]')).toHaveCount(0);
});

/** Where a signal rises past `threshold` after at least `quietS` below it: times in s. */
function onsets(values: ArrayLike<number>, times: (i: number) => number, threshold: number, quietS: number): number[] {
  const out: number[] = [];
  let lastLoud = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (Math.abs(values[i]!) < threshold) continue;
    const t = times(i);
    if (t - lastLoud >= quietS) out.push(t);
    lastLoud = t;
  }
  return out;
}

test('a flash and a beep made together reach the recording together through the mixer', async ({ page }) => {
  page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
  // The camera flashes white while the microphone beeps: 100 ms every second of the page's audio
  // clock, the flash drawn whenever that clock is inside a beep.
  await page.addInitScript(() => {
    const ctx = new AudioContext({ sampleRate: 48_000 });
    const env = new GainNode(ctx, { gain: 0 });
    const osc = new OscillatorNode(ctx, { frequency: 1000 });
    const dest = new MediaStreamAudioDestinationNode(ctx, { channelCount: 1 });
    osc.connect(env).connect(dest);
    osc.start();
    let t0: number | undefined;
    document.addEventListener(
      'pointerdown',
      () =>
        void ctx.resume().then(() => {
          if (t0 !== undefined) return;
          t0 = Math.ceil(ctx.currentTime) + 1;
          for (let k = 0; k < 120; k++) {
            env.gain.setValueAtTime(0.5, t0 + k);
            env.gain.setValueAtTime(0, t0 + k + 0.1);
          }
        }),
      true,
    );
    const canvas = document.createElement('canvas');
    canvas.width = 640;
    canvas.height = 360;
    const g = canvas.getContext('2d')!;
    setInterval(() => {
      const at = t0 === undefined ? -1 : ctx.currentTime - t0;
      g.fillStyle = at >= 0 && at % 1 < 0.1 ? '#fff' : '#000';
      g.fillRect(0, 0, 640, 360);
    }, 1000 / 120);
    const camera = canvas.captureStream(60).getVideoTracks()[0]!;
    const devices = navigator.mediaDevices;
    devices.getUserMedia = (c?: MediaStreamConstraints) => Promise.resolve(new MediaStream([c?.video ? camera.clone() : dest.stream.getAudioTracks()[0]!.clone()]));
  });
  await page.goto(bridge.url);
  await expect(page.getByRole('button', { name: 'Go live' })).toBeEnabled();
  await page.getByLabel('Server URL', { exact: true }).first().fill(nginx.url('live', 'x').replace(/\/x$/, ''));
  await page.getByLabel('Stream key', { exact: true }).first().fill('mixer-sync');
  await page.getByRole('button', { name: 'Go live' }).click();
  await expect(page.locator('.status[data-state="live"]')).toHaveCount(1, { timeout: 20_000 });
  await page.waitForTimeout(14_000);
  await page.getByRole('button', { name: 'End stream' }).click();
  await expect(page.getByRole('button', { name: 'Go live' })).toBeVisible({ timeout: 15_000 });
  const file = await nginx.recordingDone('mixer-sync', 15_000);

  // Video: the mean brightness of each decoded frame (8×8 grey), by presentation time.
  const times = (await runChecked('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pts_time', '-of', 'csv=p=0', file], { captureStdout: true, timeoutMs: 60_000 }))
    .toString('utf8')
    .trim()
    .split('\n')
    .map((line) => parseFloat(line));
  const grey = await runChecked('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:v:0', '-fps_mode', 'passthrough', '-vf', 'scale=8:8', '-pix_fmt', 'gray', '-f', 'rawvideo', '-'], { captureStdout: true, timeoutMs: 120_000 });
  expect(grey.length).toBe(times.length * 64);
  const brightness = times.map((_, i) => grey.subarray(i * 64, (i + 1) * 64).reduce((a, b) => a + b, 0) / 64 / 255);
  const flashes = onsets(brightness, (i) => times[i]!, 0.5, 0.5);
  // Audio: the samples (mono, 48 kHz) and where each beep starts.
  const pcm = await runChecked('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:a:0', '-ac', '1', '-ar', '48000', '-f', 'f32le', '-'], { captureStdout: true, timeoutMs: 120_000 });
  const samples = new Float32Array(pcm.buffer, pcm.byteOffset, Math.floor(pcm.length / 4));
  const beeps = onsets(samples, (i) => i / 48_000, 0.1, 0.5);
  // Each beep against the flash nearest to it: positive when the picture comes late.
  const offsetsMs = beeps.flatMap((b) => {
    const v = flashes.reduce((best, f) => (Math.abs(f - b) < Math.abs(best - b) ? f : best), Infinity);
    return Math.abs(v - b) < 0.5 ? [Math.round((v - b) * 1000)] : [];
  });
  console.log(`${flashes.length} flashes, ${beeps.length} beeps; video − audio, ms: ${offsetsMs.join(' ')}`);
  expect(offsetsMs.length).toBeGreaterThanOrEqual(10);
  const sorted = [...offsetsMs].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  // A frame is 33 ms and the fake camera is drawn at 120 Hz: within 100 ms is lip-sync.
  expect(Math.abs(median)).toBeLessThanOrEqual(100);
  // And it stays there: no drift over the stream.
  expect(sorted[sorted.length - 1]! - sorted[0]!).toBeLessThanOrEqual(70);
});

test('no audio source: the master sends digital silence for as long as the video', async ({ page }) => {
  page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
  await page.addInitScript(() => {
    const devices = navigator.mediaDevices;
    const getUserMedia = devices.getUserMedia.bind(devices);
    devices.getUserMedia = (c?: MediaStreamConstraints) => (c?.audio ? Promise.reject(new DOMException('no microphone here', 'NotFoundError')) : getUserMedia(c));
  });
  await page.goto(bridge.url);
  await expect(page.getByRole('button', { name: 'Go live' })).toBeEnabled();
  await expect(page.locator('[data-strip="mic"]')).toHaveCount(0);
  await page.getByLabel('Server URL', { exact: true }).first().fill(nginx.url('live', 'x').replace(/\/x$/, ''));
  await page.getByLabel('Stream key', { exact: true }).first().fill('mixer-silence');
  await page.getByRole('button', { name: 'Go live' }).click();
  await expect(page.locator('.status[data-state="live"]')).toHaveCount(1, { timeout: 20_000 });
  await page.waitForTimeout(8_000);
  await page.getByRole('button', { name: 'End stream' }).click();
  await expect(page.getByRole('button', { name: 'Go live' })).toBeVisible({ timeout: 15_000 });
  const file = await nginx.recordingDone('mixer-silence', 15_000);
  const end = async (stream: string): Promise<number> => {
    const out = await runChecked('ffprobe', ['-v', 'error', '-select_streams', stream, '-show_entries', 'packet=pts_time', '-of', 'csv=p=0', file], { captureStdout: true, timeoutMs: 60_000 });
    return Math.max(...out.toString('utf8').trim().split('\n').map((line) => parseFloat(line)).filter((t) => Number.isFinite(t)));
  };
  const [audioEnd, videoEnd] = [await end('a:0'), await end('v:0')];
  const level = await rmsDb(file, 0, 60);
  console.log(`audio to ${audioEnd} s, video to ${videoEnd} s; RMS ${level} dBFS`);
  expect(videoEnd).toBeGreaterThan(7);
  expect(Math.abs(audioEnd - videoEnd)).toBeLessThanOrEqual(0.3);
  expect(level).toBeLessThanOrEqual(-90);
});

test('the master warns of clipping and holds the warning for a second after each clipping peak', async ({ page }) => {
  page.on('pageerror', (err) => console.log(`page error: ${err.message}`));
  // Chromium's fake microphone beeps at full scale: every beep clips the master at 0 dB.
  await page.goto(bridge.url);
  await expect(page.getByRole('button', { name: 'Go live' })).toBeEnabled();
  const clip = page.locator('[data-strip="master"] [data-clipping]');
  // The warning's changes, and the last time the master meter showed a clipping peak.
  await page.evaluate(() => {
    const el = document.querySelector('[data-strip="master"] [data-clipping]')!;
    const meter = document.querySelector('[data-strip="master"] [role="meter"]')!;
    const w = window as unknown as { clipLog: { at: number; on: boolean }[]; lastClipPeak: number };
    w.clipLog = [];
    w.lastClipPeak = 0;
    new MutationObserver(() => w.clipLog.push({ at: performance.now(), on: el.getAttribute('data-clipping') === 'true' })).observe(el, { attributes: true, attributeFilter: ['data-clipping'] });
    new MutationObserver(() => {
      if (Number(meter.getAttribute('data-peak-db')) >= -0.1) w.lastClipPeak = performance.now();
    }).observe(meter, { attributes: true, attributeFilter: ['data-peak-db'] });
  });
  // A click starts the AudioContext.
  await page.getByRole('heading', { name: 'Audio mixer' }).click();
  await expect(clip).toHaveAttribute('data-clipping', 'true', { timeout: 10_000 });
  await expect(clip).toHaveText('Clipping — lower the gains');
  await page.waitForTimeout(4000);
  // Twelve dB down, the beeps no longer clip: the warning goes once its hold is over.
  await page.locator('[data-strip="master"]').getByRole('slider').fill('-12');
  await expect(clip).toHaveAttribute('data-clipping', 'false', { timeout: 5_000 });
  await expect(clip).toHaveText('');
  await page.waitForTimeout(2000);
  await expect(clip).toHaveAttribute('data-clipping', 'false');
  const { clipLog: log, lastClipPeak } = await page.evaluate(() => {
    const w = window as unknown as { clipLog: { at: number; on: boolean }[]; lastClipPeak: number };
    return { clipLog: w.clipLog, lastClipPeak: w.lastClipPeak };
  });
  const off = log.findLast((e) => !e.on)!;
  const held = log.flatMap((e, i) => (e.on && log[i + 1] !== undefined && !log[i + 1]!.on ? [Math.round(log[i + 1]!.at - e.at)] : []));
  console.log(`clipping warnings shown for (ms): ${held.join(' ')}; off ${Math.round(off.at - lastClipPeak)} ms after the last clipping peak on the meter`);
  expect(lastClipPeak, 'the master meter never showed a clipping peak').toBeGreaterThan(0);
  expect(held.length).toBeGreaterThanOrEqual(1);
  for (const ms of held) expect(ms).toBeGreaterThanOrEqual(1000);
  // Held about a second (1.2 s) past the last clipping peak, never less.
  expect(off.at - lastClipPeak).toBeGreaterThanOrEqual(1000);
});

import { describe, expect, it } from 'vitest';
import { Compositor, type CompositorContext } from './compositor.js';
import { ease, logoRect, lowerThirdLayout, placeSource, sceneLayers, toPixels, wrapText } from './layout.js';
import { clampRect, cornerRect, DEFAULT_PROGRAM, MAX_LOWER_THIRD_CHARS, MIN_PIP, moveRect, readProgram, resizeRect, sceneFor, type Program } from './program.js';
import { isStorableLogo, loadScenes, LOGO_STORAGE_KEY, MAX_LOGO_DATA_URL, saveScenes, SCENES_STORAGE_KEY, type KeyValueStore } from './scene-store.js';

describe('placeSource', () => {
  const box = { x: 100, y: 50, w: 640, h: 720 };

  it('fit: all of a 16:9 source in a tall box, centred, aspect kept', () => {
    const p = placeSource(1920, 1080, box, 'fit');
    expect(p).toEqual({ sx: 0, sy: 0, sw: 1920, sh: 1080, dx: 100, dy: 50 + 180, dw: 640, dh: 360 });
  });

  it('fill: covers the box and crops the centre of the source, aspect kept', () => {
    const p = placeSource(1920, 1080, box, 'fill');
    expect([p.dx, p.dy, p.dw, p.dh]).toEqual([100, 50, 640, 720]);
    expect(p.sh).toBe(1080);
    expect(p.sw / p.sh).toBeCloseTo(640 / 720, 9);
    expect(p.sx).toBeCloseTo((1920 - p.sw) / 2, 9);
  });

  it('a source of the box shape is drawn whole and unscaled either way', () => {
    for (const fit of ['fit', 'fill'] as const) {
      expect(placeSource(1280, 720, { x: 0, y: 0, w: 1280, h: 720 }, fit)).toEqual({ sx: 0, sy: 0, sw: 1280, sh: 720, dx: 0, dy: 0, dw: 1280, dh: 720 });
    }
  });

  it('keeps the aspect ratio for random sources and boxes', () => {
    for (let i = 0; i < 500; i++) {
      const sw = 16 + Math.floor(Math.random() * 3000);
      const sh = 16 + Math.floor(Math.random() * 3000);
      const b = { x: 0, y: 0, w: 16 + Math.floor(Math.random() * 1900), h: 16 + Math.floor(Math.random() * 1000) };
      const fit = placeSource(sw, sh, b, 'fit');
      expect(fit.dw).toBeLessThanOrEqual(b.w);
      expect(fit.dh).toBeLessThanOrEqual(b.h);
      expect(fit.dw === b.w || fit.dh === b.h).toBe(true);
      // Rounding to whole pixels moves the ratio by at most a pixel's worth.
      expect(Math.abs(fit.dw / fit.dh - sw / sh)).toBeLessThanOrEqual((sw / sh) * (1 / fit.dh + 1 / fit.dw) + 1e-9);
      const fill = placeSource(sw, sh, b, 'fill');
      expect(fill.sw).toBeLessThanOrEqual(sw + 1e-9);
      expect(fill.sh).toBeLessThanOrEqual(sh + 1e-9);
      expect(fill.sw / fill.sh).toBeCloseTo(b.w / b.h, 6);
    }
  });
});

describe('scenes', () => {
  const W = 1280;
  const H = 720;

  it('picture-in-picture: the screen full frame, the camera in its box on top', () => {
    const layers = sceneLayers('pip', DEFAULT_PROGRAM, W, H);
    expect(layers.map((l) => l.source)).toEqual(['screen', 'camera']);
    expect(layers[0]!.box).toEqual({ x: 0, y: 0, w: W, h: H });
    expect(layers[1]!.box).toEqual(toPixels(DEFAULT_PROGRAM.pip, W, H));
  });

  it('side by side: two halves that cover the frame exactly, at odd widths too', () => {
    for (const width of [1280, 1920, 853]) {
      const [left, right] = sceneLayers('side', DEFAULT_PROGRAM, width, H);
      expect(left!.source).toBe('screen');
      expect(right!.source).toBe('camera');
      expect(left!.box.x + left!.box.w).toBe(right!.box.x);
      expect(right!.box.x + right!.box.w).toBe(width);
    }
  });

  it('the slate draws no source; camera and screen one each', () => {
    expect(sceneLayers('slate', DEFAULT_PROGRAM, W, H)).toEqual([]);
    expect(sceneLayers('camera', DEFAULT_PROGRAM, W, H).map((l) => l.source)).toEqual(['camera']);
    expect(sceneLayers('screen', DEFAULT_PROGRAM, W, H).map((l) => l.source)).toEqual(['screen']);
  });

  it('falls back to the source there is', () => {
    expect(sceneFor('pip', { camera: true, screen: false })).toBe('camera');
    expect(sceneFor('side', { camera: true, screen: false })).toBe('camera');
    expect(sceneFor('screen', { camera: true, screen: false })).toBe('camera');
    expect(sceneFor('pip', { camera: false, screen: true })).toBe('screen');
    expect(sceneFor('pip', { camera: true, screen: true })).toBe('pip');
    expect(sceneFor('slate', { camera: false, screen: false })).toBe('slate');
  });
});

describe('picture-in-picture box', () => {
  it('corner presets sit at the margin and keep the size', () => {
    const size = { w: 0.3, h: 0.25 };
    expect(cornerRect('top-left', size)).toEqual({ x: 0.03, y: 0.03, ...size });
    const br = cornerRect('bottom-right', size);
    expect(br.x + br.w).toBeCloseTo(0.97, 12);
    expect(br.y + br.h).toBeCloseTo(0.97, 12);
  });

  it('dragging stops at the frame edge', () => {
    const r = { x: 0.6, y: 0.6, w: 0.3, h: 0.3 };
    expect(moveRect(r, 0.5, 0.5)).toEqual({ x: 0.7, y: 0.7, w: 0.3, h: 0.3 });
    expect(moveRect(r, -2, -2)).toEqual({ x: 0, y: 0, w: 0.3, h: 0.3 });
  });

  it('resizing keeps the shape, stays inside and above the minimum', () => {
    const r = { x: 0.5, y: 0.5, w: 0.2, h: 0.2 };
    const big = resizeRect(r, 1);
    expect(big.w).toBeCloseTo(0.5, 12);
    expect(big.h).toBeCloseTo(0.5, 12);
    const small = resizeRect(r, -1);
    expect(small.w).toBeCloseTo(MIN_PIP, 12);
    expect(small.h / small.w).toBeCloseTo(1, 12);
  });

  it('clampRect mends boxes outside the frame', () => {
    expect(clampRect({ x: 0.9, y: -1, w: 0.5, h: 0.01 })).toEqual({ x: 0.5, y: 0, w: 0.5, h: MIN_PIP });
  });
});

describe('overlays', () => {
  it('the logo keeps its image aspect and stays inside the frame', () => {
    expect(logoRect({ visible: true, x: 0.5, y: 0.5, size: 0.1, opacity: 1 }, 200, 100, 1280, 720)).toEqual({ x: 640, y: 360, w: 128, h: 64 });
    expect(logoRect({ visible: true, x: 1, y: 1, size: 0.1, opacity: 1 }, 100, 100, 1280, 720)).toEqual({ x: 1152, y: 592, w: 128, h: 128 });
  });

  it('the lower third slides in from outside the frame to its place', () => {
    const hidden = lowerThirdLayout(1280, 720, 0);
    expect(hidden.bar.x + hidden.bar.w).toBeLessThanOrEqual(0);
    expect(hidden.alpha).toBe(0);
    const shown = lowerThirdLayout(1280, 720, 1);
    expect(shown.bar).toEqual({ x: 64, y: 533, w: 538, h: 101 });
    expect(shown.alpha).toBe(1);
    let last = -Infinity;
    for (let p = 0; p <= 1; p += 0.05) {
      const x = lowerThirdLayout(1280, 720, p).bar.x;
      expect(x).toBeGreaterThanOrEqual(last);
      last = x;
    }
    expect(ease(-1)).toBe(0);
    expect(ease(2)).toBe(1);
  });

  it('wraps slate text on words', () => {
    expect(wrapText('  Be   right back  ', 24)).toEqual(['Be right back']);
    expect(wrapText('Starting soon: grab a coffee and come back', 16)).toEqual(['Starting soon:', 'grab a coffee', 'and come back']);
  });
});

describe('readProgram (untrusted input)', () => {
  it('round-trips a program', () => {
    const p: Program = {
      ...DEFAULT_PROGRAM,
      scene: 'side',
      transition: 'fade',
      pip: { x: 0.1, y: 0.2, w: 0.3, h: 0.3 },
      slate: 'Be right back',
      lowerThird: { visible: true, name: 'Ada', title: 'Host' },
    };
    expect(readProgram(JSON.parse(JSON.stringify(p)))).toEqual(p);
  });

  it('takes each good field and falls back for each bad one', () => {
    const p = readProgram({
      scene: 'dance',
      transition: 'fade',
      pip: { x: 0.1, y: 0.1, w: 'big', h: 0.2 },
      cameraFit: 'fit',
      slate: 42,
      logo: { visible: false, x: 2, opacity: 0.5 },
      lowerThird: { name: 'x'.repeat(500), title: null },
    });
    expect(p.scene).toBe(DEFAULT_PROGRAM.scene);
    expect(p.transition).toBe('fade');
    expect(p.pip).toEqual(DEFAULT_PROGRAM.pip);
    expect(p.cameraFit).toBe('fit');
    expect(p.slate).toBe(DEFAULT_PROGRAM.slate);
    expect(p.logo).toEqual({ ...DEFAULT_PROGRAM.logo, visible: false, opacity: 0.5 });
    expect(p.lowerThird.name).toHaveLength(MAX_LOWER_THIRD_CHARS);
    expect(p.lowerThird.title).toBe('');
    for (const junk of [null, 7, 'x', [], undefined]) expect(readProgram(junk)).toBe(DEFAULT_PROGRAM);
  });
});

function memoryStore(limit = Infinity): KeyValueStore & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return {
    map,
    getItem: (k) => map.get(k) ?? null,
    setItem: (k, v) => {
      if (v.length > limit) throw new Error('QuotaExceededError');
      map.set(k, v);
    },
    removeItem: (k) => void map.delete(k),
  };
}

describe('scene store', () => {
  const logo = `data:image/png;base64,${'iVBORw0KGgo'.repeat(10)}=`;

  it('saves and restores the program and the logo', () => {
    const store = memoryStore();
    const program: Program = { ...DEFAULT_PROGRAM, scene: 'pip', pip: { x: 0.05, y: 0.05, w: 0.25, h: 0.25 } };
    expect(saveScenes(store, program, logo)).toBe(true);
    expect(loadScenes(store)).toEqual({ program, logo });
    // Leaving the logo out keeps it; null forgets it.
    expect(saveScenes(store, { ...program, scene: 'side' })).toBe(true);
    expect(loadScenes(store)).toEqual({ program: { ...program, scene: 'side' }, logo });
    saveScenes(store, program, null);
    expect(loadScenes(store).logo).toBeUndefined();
  });

  it('refuses a logo over the cap or not an image, and says so', () => {
    const store = memoryStore();
    const huge = `data:image/png;base64,${'A'.repeat(MAX_LOGO_DATA_URL)}`;
    expect(isStorableLogo(huge)).toBe(false);
    expect(saveScenes(store, DEFAULT_PROGRAM, huge)).toBe(false);
    expect(store.map.has(LOGO_STORAGE_KEY)).toBe(false);
    expect(saveScenes(store, DEFAULT_PROGRAM, 'data:text/html;base64,PGgxPg==')).toBe(false);
    store.map.set(LOGO_STORAGE_KEY, 'javascript:alert(1)');
    expect(loadScenes(store).logo).toBeUndefined();
  });

  it('survives corrupt entries and a full or missing storage', () => {
    const store = memoryStore();
    store.map.set(SCENES_STORAGE_KEY, '{not json');
    expect(loadScenes(store).program).toBe(DEFAULT_PROGRAM);
    expect(loadScenes(undefined)).toEqual({ program: DEFAULT_PROGRAM, logo: undefined });
    expect(saveScenes(memoryStore(10), DEFAULT_PROGRAM)).toBe(false);
  });
});

/** Records what the compositor draws, enough to follow fades and the lower third frame by frame. */
function recorder(): { ctx: CompositorContext<Pic, Pic>; calls: string[] } {
  const calls: string[] = [];
  const ctx: CompositorContext<Pic, Pic> = {
    fillStyle: '#000',
    globalAlpha: 1,
    font: '',
    textBaseline: 'top',
    textAlign: 'start',
    fillRect(x, y, w, h) {
      calls.push(`fill ${String(this.fillStyle)} ${this.globalAlpha.toFixed(2)} ${x},${y},${w},${h}`);
    },
    fillText(text) {
      calls.push(`text ${text}`);
    },
    drawImage(image, _sx, _sy, _sw, _sh, dx, dy, dw, dh) {
      calls.push(`image ${image.name} ${this.globalAlpha.toFixed(2)} ${dx},${dy},${dw},${dh}`);
    },
  };
  return { ctx, calls };
}

interface Pic {
  name: string;
  displayWidth: number;
  displayHeight: number;
}

describe('Compositor', () => {
  const camera: Pic = { name: 'camera', displayWidth: 1280, displayHeight: 720 };
  const screen: Pic = { name: 'screen', displayWidth: 1920, displayHeight: 1080 };

  it('a cut lands on the very next frame', () => {
    const c = new Compositor<Pic, Pic>(1280, 720, 30);
    c.setProgram({ ...DEFAULT_PROGRAM, scene: 'pip' });
    const { ctx, calls } = recorder();
    c.draw(ctx, { camera, screen });
    expect(calls.filter((l) => l.startsWith('image')).map((l) => l.split(' ')[1])).toEqual(['screen', 'camera']);
    calls.length = 0;
    c.setProgram({ ...DEFAULT_PROGRAM, scene: 'side' });
    c.draw(ctx, { camera, screen });
    // Both fit their half, bars above and below.
    expect(calls.filter((l) => l.startsWith('image'))).toEqual(['image screen 1.00 0,180,640,360', 'image camera 1.00 640,180,640,360']);
    // The camera set to fill covers its half, cropped at the sides.
    calls.length = 0;
    c.setProgram({ ...DEFAULT_PROGRAM, scene: 'side', cameraFit: 'fill' });
    c.draw(ctx, { camera, screen });
    expect(calls.filter((l) => l.startsWith('image'))[1]).toBe('image camera 1.00 640,0,640,720');
  });

  it('a fade takes 300 ms of output frames, the new scene rising over the old', () => {
    const c = new Compositor<Pic, Pic>(1280, 720, 30);
    const { ctx, calls } = recorder();
    c.draw(ctx, { camera, screen });
    c.setProgram({ ...DEFAULT_PROGRAM, scene: 'screen', transition: 'fade' });
    const alphas: string[] = [];
    for (let i = 0; i < 12; i++) {
      calls.length = 0;
      c.draw(ctx, { camera, screen });
      alphas.push(calls.filter((l) => l.startsWith('image')).join(' | '));
    }
    // 300 ms at 30 fps: 9 frames, the ninth all new.
    expect(alphas[0]).toBe('image camera 1.00 0,0,1280,720 | image screen 0.11 0,0,1280,720');
    expect(alphas[4]).toBe('image camera 1.00 0,0,1280,720 | image screen 0.56 0,0,1280,720');
    expect(alphas[8]).toBe('image camera 1.00 0,0,1280,720 | image screen 1.00 0,0,1280,720');
    expect(alphas[9]).toBe('image screen 1.00 0,0,1280,720');
  });

  it('passes the camera frame through untouched only when nothing is drawn over it', () => {
    const c = new Compositor<Pic, Pic>(1280, 720, 30);
    expect(c.passThrough({ camera }, false)).toBe(camera);
    expect(c.passThrough({ camera }, true)).toBeUndefined();
    expect(c.passThrough({ camera: screen }, false)).toBeUndefined();
    c.setLogo({ name: 'logo', displayWidth: 64, displayHeight: 64 });
    expect(c.passThrough({ camera }, false)).toBeUndefined();
    c.setProgram({ ...DEFAULT_PROGRAM, logo: { ...DEFAULT_PROGRAM.logo, visible: false } });
    expect(c.passThrough({ camera }, false)).toBe(camera);
  });

  it('the lower third slides in and out over 400 ms, with its texts', () => {
    const c = new Compositor<Pic, Pic>(1280, 720, 30);
    const { ctx, calls } = recorder();
    c.setProgram({ ...DEFAULT_PROGRAM, lowerThird: { visible: true, name: 'Ada', title: 'Host' } });
    const bars: string[] = [];
    for (let i = 0; i < 14; i++) {
      calls.length = 0;
      c.draw(ctx, { camera });
      bars.push(calls.find((l) => l.startsWith('fill #c8102e')) ?? '');
    }
    expect(bars[11]).toBe('fill #c8102e 1.00 64,533,538,101');
    expect(bars[0]).not.toBe(bars[11]);
    expect(calls).toContain('text Ada');
    expect(calls).toContain('text Host');
    c.setProgram({ ...DEFAULT_PROGRAM, lowerThird: { visible: false, name: 'Ada', title: 'Host' } });
    for (let i = 0; i < 12; i++) c.draw(ctx, { camera });
    calls.length = 0;
    c.draw(ctx, { camera });
    expect(calls.some((l) => l.startsWith('fill #c8102e'))).toBe(false);
  });

  it('draws nothing when no source brought a new frame and nothing moves or changed', () => {
    const c = new Compositor<Pic, Pic>(1280, 720, 30);
    const { ctx } = recorder();
    c.setProgram({ ...DEFAULT_PROGRAM, scene: 'pip' });
    expect(c.draw(ctx, { camera, screen }, undefined, false)).toBe(true);
    expect(c.draw(ctx, { camera, screen }, undefined, false)).toBe(false);
    expect(c.draw(ctx, { camera, screen }, undefined, true)).toBe(true);
    // A source gone changes the scene drawn; a new program, a logo, a clock each need a drawing.
    expect(c.draw(ctx, { camera }, undefined, false)).toBe(true);
    expect(c.draw(ctx, { camera }, undefined, false)).toBe(false);
    c.setProgram({ ...DEFAULT_PROGRAM, scene: 'pip', slate: 'x' });
    expect(c.draw(ctx, { camera }, undefined, false)).toBe(true);
    c.setLogo({ name: 'logo', displayWidth: 64, displayHeight: 64 });
    expect(c.draw(ctx, { camera }, undefined, false)).toBe(true);
    expect(c.draw(ctx, { camera }, 5, false)).toBe(true);
    expect(c.draw(ctx, { camera }, undefined, false)).toBe(true);
    expect(c.draw(ctx, { camera }, undefined, false)).toBe(false);
    // While the lower third slides, every frame is drawn.
    c.setProgram({ ...DEFAULT_PROGRAM, lowerThird: { visible: true, name: 'A', title: 'B' } });
    for (let i = 0; i < 12; i++) expect(c.draw(ctx, { camera }, undefined, false)).toBe(true);
    expect(c.draw(ctx, { camera }, undefined, false)).toBe(false);
    // After a pass-through the canvas is stale.
    c.setProgram({ ...DEFAULT_PROGRAM, logo: { ...DEFAULT_PROGRAM.logo, visible: false } });
    c.setLogo(undefined);
    c.draw(ctx, { camera }, undefined, false);
    for (let i = 0; i < 12; i++) c.draw(ctx, { camera }, undefined, false);
    expect(c.passThrough({ camera }, false)).toBe(camera);
    expect(c.draw(ctx, { camera }, undefined, false)).toBe(true);
  });

  it('the slate needs no source', () => {
    const c = new Compositor<Pic, Pic>(1280, 720, 30);
    c.setProgram({ ...DEFAULT_PROGRAM, scene: 'slate', slate: 'Be right back' });
    const { ctx, calls } = recorder();
    c.draw(ctx, {});
    expect(calls).toEqual(['fill #101820 1.00 0,0,1280,720', 'text Be right back']);
  });
});

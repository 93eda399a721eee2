import { describe, expect, it } from 'vitest';
import { WorkerSources } from './sources.js';

/** Stands in for a VideoFrame: what the sources do with one is hold it and close it. */
class Frame {
  closed = false;
  constructor(readonly name: string) {}
  close(): void {
    this.closed = true;
  }
}

const asFrame = (f: Frame): VideoFrame => f as unknown as VideoFrame;

/** A stream of frames the test pushes, as a MediaStreamTrackProcessor's readable would give them. */
function track(): { readable: ReadableStream<VideoFrame>; push(f: Frame): void; end(): void } {
  let controller!: ReadableStreamDefaultController<VideoFrame>;
  const readable = new ReadableStream<VideoFrame>({ start: (c) => void (controller = c) });
  return { readable, push: (f) => controller.enqueue(asFrame(f)), end: () => controller.close() };
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

describe('WorkerSources', () => {
  it('keeps the newest frame of each source, closing the one it replaces', () => {
    let arrivals = 0;
    const sources = new WorkerSources({ frame: () => arrivals++, pcm: () => {} });
    const frames = Array.from({ length: 50 }, (_, i) => new Frame(`camera ${i}`));
    for (const f of frames) sources.offerFrame(asFrame(f), 'camera');
    const screen = new Frame('screen');
    sources.offerFrame(asFrame(screen), 'screen');
    expect(arrivals).toBe(51);
    expect(frames.slice(0, -1).every((f) => f.closed)).toBe(true);
    const taken = sources.take();
    expect(taken.fresh).toBe(true);
    expect(taken.frames).toEqual({ camera: frames[49], screen });
    // Taking again gives the same frames, no longer fresh; nothing was closed by taking.
    expect(sources.take()).toEqual({ frames: { camera: frames[49], screen }, fresh: false });
    expect(frames[49]!.closed || screen.closed).toBe(false);
    sources.close();
    expect(frames[49]!.closed && screen.closed).toBe(true);
    const late = new Frame('late');
    sources.offerFrame(asFrame(late), 'screen');
    expect(late.closed).toBe(true);
    expect(sources.take().frames).toEqual({});
  });

  it('reads camera and screen streams at once; a source no longer given drops its frame', async () => {
    const sources = new WorkerSources({ frame: () => {}, pcm: () => {} });
    const camera = track();
    const screen = track();
    sources.set({ video: camera.readable, screen: screen.readable });
    const c1 = new Frame('c1');
    const s1 = new Frame('s1');
    camera.push(c1);
    screen.push(s1);
    await tick();
    expect(sources.take().frames).toEqual({ camera: c1, screen: s1 });
    // Sharing stops: the page gives a new camera stream and no screen.
    const camera2 = track();
    sources.set({ video: camera2.readable });
    expect(s1.closed).toBe(true);
    expect(c1.closed).toBe(false);
    expect(sources.take().frames).toEqual({ camera: c1 });
    // The old screen stream's next frame is closed by its stale read loop, not kept.
    const s2 = new Frame('s2');
    screen.push(s2);
    await tick();
    expect(s2.closed).toBe(true);
    const c2 = new Frame('c2');
    camera2.push(c2);
    await tick();
    expect(sources.take().frames).toEqual({ camera: c2 });
    expect(c1.closed).toBe(true);
    sources.close();
    expect(c2.closed).toBe(true);
  });

  it('frames posted by the page (no MediaStreamTrackProcessor) stay while that source is still announced', () => {
    const sources = new WorkerSources({ frame: () => {}, pcm: () => {} });
    sources.set({ videoByMessage: true, screenByMessage: true });
    const c = new Frame('c');
    const s = new Frame('s');
    sources.offerFrame(asFrame(c), 'camera');
    sources.offerFrame(asFrame(s), 'screen');
    sources.set({ videoByMessage: true });
    expect(sources.take().frames).toEqual({ camera: c });
    expect(s.closed).toBe(true);
  });
});

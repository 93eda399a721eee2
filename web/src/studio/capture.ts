import type { AudioOutput } from './mixer/mixer.svelte.js';
import type { SourceHandles, ToWorker, VideoSource } from './worker-protocol.js';

// MediaStreamTrackProcessor is not in TypeScript's DOM typings yet (Chromium ships it on the page).
interface TrackProcessorConstructor {
  new (init: { track: MediaStreamTrack; maxBufferSize?: number }): { readable: ReadableStream<VideoFrame | AudioData> };
}

function trackProcessor(): TrackProcessorConstructor | undefined {
  return (globalThis as unknown as { MediaStreamTrackProcessor?: TrackProcessorConstructor }).MediaStreamTrackProcessor;
}

export const hasTrackProcessor = (): boolean => trackProcessor() !== undefined;

/** A running capture source feeding the worker; `stop()` releases everything it added. */
export interface Feed {
  handles: SourceHandles;
  transfer: Transferable[];
  stop(): void;
}

/**
 * Builds the worker's sources from the current tracks: the camera and the shared screen, both at
 * once (the compositor draws whichever the scene needs), and the mixer's output. With
 * MediaStreamTrackProcessor (Chromium) every track becomes a stream read in the worker, so a hidden
 * tab keeps full rate. Elsewhere (Firefox) video frames come from requestVideoFrameCallback and
 * audio from an AudioWorklet on the mixer's graph whose port goes straight to the worker.
 */
export async function createFeed(video: Partial<Record<VideoSource, MediaStreamTrack>>, audio: AudioOutput | undefined, worker: Worker): Promise<Feed> {
  const Processor = trackProcessor();
  const handles: SourceHandles = {};
  const transfer: Transferable[] = [];
  const cleanups: (() => void)[] = [];

  for (const kind of ['camera', 'screen'] as const) {
    const source = video[kind];
    if (source === undefined) continue;
    const track = source.clone();
    cleanups.push(() => track.stop());
    if (Processor !== undefined) {
      const readable = new Processor({ track, maxBufferSize: 2 }).readable as ReadableStream<VideoFrame>;
      if (kind === 'camera') handles.video = readable;
      else handles.screen = readable;
      transfer.push(readable);
    } else {
      if (kind === 'camera') handles.videoByMessage = true;
      else handles.screenByMessage = true;
      cleanups.push(await postFrames(track, kind, worker));
    }
  }

  if (audio !== undefined) {
    if (Processor !== undefined) {
      const track = audio.track.clone();
      cleanups.push(() => track.stop());
      handles.audio = new Processor({ track }).readable as ReadableStream<AudioData>;
      transfer.push(handles.audio);
    } else {
      const tap = await audio.tapPcm();
      handles.audioPort = tap.port;
      transfer.push(tap.port);
      cleanups.push(() => tap.stop());
    }
  }

  return {
    handles,
    transfer,
    stop() {
      for (const c of cleanups) c();
    },
  };
}

/** Posts each frame of `track` to the worker as it is shown (no MediaStreamTrackProcessor); returns how to stop. */
async function postFrames(track: MediaStreamTrack, source: VideoSource, worker: Worker): Promise<() => void> {
  const el = document.createElement('video');
  el.muted = true;
  el.playsInline = true;
  el.srcObject = new MediaStream([track]);
  await el.play();
  let handle = 0;
  const onFrame = (): void => {
    try {
      const frame = new VideoFrame(el, { timestamp: Math.round(performance.now() * 1000) });
      const msg: ToWorker = { type: 'frame', frame, source };
      worker.postMessage(msg, [frame]);
    } catch {
      // The element has no frame yet.
    }
    handle = el.requestVideoFrameCallback(onFrame);
  };
  handle = el.requestVideoFrameCallback(onFrame);
  return () => {
    el.cancelVideoFrameCallback(handle);
    el.srcObject = null;
  };
}

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

const WORKLET = `
class OnairPcmTap extends AudioWorkletProcessor {
  constructor() { super(); this.buf = []; this.n = 0; this.start = 0; }
  process(inputs) {
    const input = inputs[0];
    if (input && input.length > 0) {
      if (this.n === 0) this.start = currentFrame;
      this.buf.push(input.map((c) => c.slice()));
      this.n += input[0].length;
      if (this.n >= 1024) {
        const channels = input.map((_, c) => {
          const out = new Float32Array(this.n);
          let at = 0;
          for (const block of this.buf) { out.set(block[c], at); at += block[c].length; }
          return out;
        });
        this.port.postMessage({ sampleRate, timestampUs: (this.start / sampleRate) * 1e6, channels }, channels.map((c) => c.buffer));
        this.buf = []; this.n = 0;
      }
    }
    return true;
  }
}
registerProcessor('onair-pcm-tap', OnairPcmTap);
`;

/**
 * Builds the worker's sources from the current tracks: the camera and the shared screen, both at
 * once (the compositor draws whichever the scene needs), and the audio. With
 * MediaStreamTrackProcessor (Chromium) every track becomes a stream read in the worker, so a hidden
 * tab keeps full rate. Elsewhere (Firefox) video frames come from requestVideoFrameCallback and
 * audio from an AudioWorklet whose port goes straight to the worker.
 */
export async function createFeed(video: Partial<Record<VideoSource, MediaStreamTrack>>, audio: MediaStreamTrack | undefined, worker: Worker): Promise<Feed> {
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
    const track = audio.clone();
    cleanups.push(() => track.stop());
    if (Processor !== undefined) {
      handles.audio = new Processor({ track }).readable as ReadableStream<AudioData>;
      transfer.push(handles.audio);
    } else {
      const ctx = new AudioContext({ sampleRate: 48_000 });
      const url = URL.createObjectURL(new Blob([WORKLET], { type: 'text/javascript' }));
      await ctx.audioWorklet.addModule(url);
      URL.revokeObjectURL(url);
      const node = new AudioWorkletNode(ctx, 'onair-pcm-tap', { numberOfOutputs: 0 });
      ctx.createMediaStreamSource(new MediaStream([track])).connect(node);
      handles.audioPort = node.port;
      transfer.push(node.port);
      cleanups.push(() => void ctx.close());
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

/**
 * Mixes several audio tracks (microphone + shared screen/tab audio) into one, so the encoder
 * sees a single source. One track passes through untouched.
 */
export class AudioMix {
  #ctx: AudioContext | undefined;
  #track: MediaStreamTrack | undefined;

  mix(tracks: MediaStreamTrack[]): MediaStreamTrack | undefined {
    this.close();
    if (tracks.length <= 1) return tracks[0];
    const ctx = new AudioContext({ sampleRate: 48_000 });
    const dest = ctx.createMediaStreamDestination();
    dest.channelCount = 2;
    for (const t of tracks) ctx.createMediaStreamSource(new MediaStream([t])).connect(dest);
    this.#ctx = ctx;
    this.#track = dest.stream.getAudioTracks()[0];
    return this.#track;
  }

  close(): void {
    this.#track?.stop();
    void this.#ctx?.close();
    this.#ctx = undefined;
    this.#track = undefined;
  }
}

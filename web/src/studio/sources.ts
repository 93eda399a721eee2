import type { PcmBlock, SourceHandles, VideoSource } from './worker-protocol.js';

const VIDEO_SOURCES: readonly VideoSource[] = ['camera', 'screen'];

export interface SourceEvents {
  /** A camera or screen frame arrived (the first one starts the output clock). */
  frame(): void;
  /** Captured audio: planar Float32 at `rate`, first sample captured at `captureUs`. */
  pcm(planes: Float32Array[], rate: number, captureUs: number): void;
}

/**
 * The worker's capture inputs: the camera and the shared screen, each a video stream (or frames
 * posted by the page), and an audio stream (or PCM blocks from the page's AudioWorklet). Only the
 * newest frame of each video source is kept: the output clock repeats or drops frames to hold its
 * rate, and the compositor draws whichever sources the scene needs.
 */
export class WorkerSources {
  readonly #events: SourceEvents;
  readonly #latest: Record<VideoSource, VideoFrame | undefined> = { camera: undefined, screen: undefined };
  #fresh = false;
  readonly #videoReaders: Record<VideoSource, ReadableStreamDefaultReader<VideoFrame> | undefined> = { camera: undefined, screen: undefined };
  #audioReader: ReadableStreamDefaultReader<AudioData> | undefined;
  #audioPort: MessagePort | undefined;
  #closed = false;

  constructor(events: SourceEvents) {
    this.#events = events;
  }

  /** True while a microphone (or screen audio) feeds the worker. */
  get hasAudio(): boolean {
    return this.#audioReader !== undefined || this.#audioPort !== undefined;
  }

  /**
   * Switches to new sources. The old streams end when the page stops their tracks; their read
   * loops see they are stale, close what they hold and cancel. (Cancelling from here could drop a
   * frame mid-read without closing it.) A video source that is gone drops its last frame, so a
   * scene falls back instead of freezing on it.
   */
  set(sources: SourceHandles): void {
    this.#audioReader = undefined;
    if (this.#audioPort !== undefined) this.#audioPort.onmessage = null;
    this.#audioPort = undefined;
    const streams: Record<VideoSource, ReadableStream<VideoFrame> | undefined> = { camera: sources.video, screen: sources.screen };
    const byMessage: Record<VideoSource, boolean> = { camera: sources.videoByMessage === true, screen: sources.screenByMessage === true };
    for (const kind of VIDEO_SOURCES) {
      this.#videoReaders[kind] = undefined;
      if (streams[kind] === undefined && !byMessage[kind]) {
        this.#latest[kind]?.close();
        this.#latest[kind] = undefined;
      }
    }
    if (this.#closed) return;
    for (const kind of VIDEO_SOURCES) {
      const stream = streams[kind];
      if (stream === undefined) continue;
      const reader = stream.getReader();
      this.#videoReaders[kind] = reader;
      void this.#drain(reader, () => this.#videoReaders[kind], (frame) => this.offerFrame(frame, kind));
    }
    if (sources.audio !== undefined) {
      const reader = sources.audio.getReader();
      this.#audioReader = reader;
      void this.#drain(reader, () => this.#audioReader, (data) => this.#takeAudio(data));
    }
    if (sources.audioPort !== undefined) {
      this.#audioPort = sources.audioPort;
      this.#audioPort.onmessage = (e: MessageEvent<PcmBlock>) => this.#events.pcm(e.data.channels, e.data.sampleRate, e.data.timestampUs);
    }
  }

  /** Keeps only the newest frame of each source. */
  offerFrame(frame: VideoFrame, kind: VideoSource = 'camera'): void {
    if (this.#closed) {
      frame.close();
      return;
    }
    this.#latest[kind]?.close();
    this.#latest[kind] = frame;
    this.#fresh = true;
    this.#events.frame();
  }

  /** The newest frame of each source (still owned here), and whether any arrived since the last call. */
  take(): { frames: Partial<Record<VideoSource, VideoFrame>>; fresh: boolean } {
    const fresh = this.#fresh;
    this.#fresh = false;
    const frames: Partial<Record<VideoSource, VideoFrame>> = {};
    for (const kind of VIDEO_SOURCES) {
      const f = this.#latest[kind];
      if (f !== undefined) frames[kind] = f;
    }
    return { frames, fresh };
  }

  close(): void {
    this.set({});
    this.#closed = true;
    for (const kind of VIDEO_SOURCES) {
      this.#latest[kind]?.close();
      this.#latest[kind] = undefined;
    }
  }
  /**
   * Hands each value `reader` gives to `take` until its track ends, the sources close or another
   * reader replaced it (`current`). Ends quietly; every rejection is handled inside.
   */
  async #drain<T extends { close(): void }>(reader: ReadableStreamDefaultReader<T>, current: () => ReadableStreamDefaultReader<T> | undefined, take: (value: T) => void): Promise<void> {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.#closed || reader !== current()) {
          value?.close();
          if (!done) await reader.cancel();
          break;
        }
        take(value);
      }
    } catch {
      // The track ended.
    }
  }

  #takeAudio(data: AudioData): void {
    const planes: Float32Array[] = [];
    for (let c = 0; c < data.numberOfChannels; c++) {
      const plane = new Float32Array(data.numberOfFrames);
      data.copyTo(plane, { planeIndex: c, format: 'f32-planar' });
      planes.push(plane);
    }
    const rate = data.sampleRate;
    const captureUs = data.timestamp;
    data.close();
    this.#events.pcm(planes, rate, captureUs);
  }
}

import type { PcmBlock, SourceHandles } from './worker-protocol.js';

export interface SourceEvents {
  /** A camera/screen frame arrived (the first one starts the output clock). */
  frame(): void;
  /** Captured audio: planar Float32 at `rate`, first sample captured at `captureUs`. */
  pcm(planes: Float32Array[], rate: number, captureUs: number): void;
}

/**
 * The worker's capture inputs: a video stream (or frames posted by the page), an audio stream (or
 * PCM blocks from the page's AudioWorklet). Only the newest video frame is kept: the output clock
 * repeats or drops frames to hold its rate.
 */
export class WorkerSources {
  readonly #events: SourceEvents;
  #latest: VideoFrame | undefined;
  #fresh = false;
  #videoReader: ReadableStreamDefaultReader<VideoFrame> | undefined;
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
   * frame mid-read without closing it.)
   */
  set(sources: SourceHandles): void {
    this.#videoReader = undefined;
    this.#audioReader = undefined;
    if (this.#audioPort !== undefined) this.#audioPort.onmessage = null;
    this.#audioPort = undefined;
    if (this.#closed) return;
    if (sources.video !== undefined) {
      const reader = sources.video.getReader();
      this.#videoReader = reader;
      void this.#drain(reader, () => this.#videoReader, (frame) => this.offerFrame(frame));
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

  /** Keeps only the newest frame. */
  offerFrame(frame: VideoFrame): void {
    if (this.#closed) {
      frame.close();
      return;
    }
    this.#latest?.close();
    this.#latest = frame;
    this.#fresh = true;
    this.#events.frame();
  }

  /** The newest frame (still owned here), and whether it arrived since the last call. */
  take(): { frame: VideoFrame | undefined; fresh: boolean } {
    const fresh = this.#fresh;
    this.#fresh = false;
    return { frame: this.#latest, fresh };
  }

  close(): void {
    this.set({});
    this.#closed = true;
    this.#latest?.close();
    this.#latest = undefined;
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

import { PcmConverter } from '../../lib/pcm.js';
import type { AacEncoder } from '../aac-encoder.js';
import { AudioClock } from '../audio-clock.js';

/**
 * Captured audio to the AAC encoder: each block converted to the output rate and layout, placed on
 * the session clock by its capture time (`AudioClock`), with silence wherever the capture left a
 * hole or there is no audio source at all, so the audio track never falls behind the video.
 */
export class AudioPath {
  readonly #rate: number;
  readonly #channels: number;
  readonly #pcm: PcmConverter;
  readonly #clock: AudioClock;
  readonly #dropped: () => void;
  encoder: AacEncoder | undefined;

  /** `dropped` counts a block the encoder turned away (its gap is filled with silence later). */
  constructor(sampleRate: number, channels: number, dropped: () => void) {
    this.#rate = sampleRate;
    this.#channels = channels;
    this.#pcm = new PcmConverter(sampleRate, channels);
    this.#clock = new AudioClock(sampleRate);
    this.#dropped = dropped;
  }

  /** The sources changed: the next block sets the clock's offset again. */
  resync(): void {
    this.#clock.resync();
  }

  /** A captured block: planar Float32 at `rate`, first sample captured at `captureUs`; `nowUs` on the session clock. */
  push(planes: Float32Array[], rate: number, captureUs: number, nowUs: number): void {
    if (this.encoder === undefined) return;
    const place = this.#clock.place(captureUs, nowUs);
    const out = this.#pcm.convert(planes, rate, place.trim);
    this.#writeSilence(place.silence);
    const frames = out[0]?.length ?? 0;
    if (frames <= place.skip) return;
    this.#write(place.skip > 0 ? out.map((p) => p.subarray(place.skip)) : out);
  }

  /** Silence up to `nowUs` when there is no audio source, or it stalled. */
  fill(nowUs: number, hasSource: boolean): void {
    if (this.encoder === undefined) return;
    this.#writeSilence(this.#clock.fill(nowUs, hasSource));
  }

  /** Audio to the encoder at the next place on its timeline. */
  #write(planes: Float32Array[]): void {
    const frames = planes[0]?.length ?? 0;
    if (this.encoder?.encode(planes, (this.#clock.written / this.#rate) * 1e6) === true) this.#clock.wrote(frames);
    else this.#dropped();
  }

  #writeSilence(samples: number): void {
    for (let left = samples; left > 0; ) {
      const n = Math.min(left, 4096);
      this.#write(Array.from({ length: this.#channels }, () => new Float32Array(n)));
      left -= n;
    }
  }
}

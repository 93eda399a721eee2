/**
 * The mixer's AudioWorklet processors, loaded into its AudioContext (`?worker&url` bundles this
 * file with the meter maths it imports):
 * - `onair-meter` measures what reaches it and posts a MeterReading per METER_WINDOW_S;
 * - `onair-pcm-tap` posts the master output as PCM blocks to a port the encode worker reads, where
 *   MediaStreamTrackProcessor is missing (Firefox, Safari).
 * Both are sinks (no outputs): the graph pulls them as long as something is connected.
 */
import { METER_WINDOW_S, MeterWindow } from './meter.js';
import type { PcmBlock } from '../worker-protocol.js';

// The AudioWorkletGlobalScope, which TypeScript's libraries do not describe.
declare const sampleRate: number;
declare const currentFrame: number;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
}
declare function registerProcessor(
  name: string,
  processor: new () => AudioWorkletProcessor & { process(inputs: Float32Array[][], outputs: Float32Array[][], parameters: Record<string, Float32Array>): boolean },
): void;

/** A render quantum's worth of silence, for an input with nothing connected (no channels). */
const QUANTUM = 128;

class OnairMeter extends AudioWorkletProcessor {
  readonly #window = new MeterWindow(METER_WINDOW_S * sampleRate);
  readonly #silence = [new Float32Array(QUANTUM)];
  #wasSilent = false;

  process(inputs: Float32Array[][]): boolean {
    const input = inputs[0];
    const planes = input !== undefined && input.length > 0 ? input : this.#silence;
    for (const reading of this.#window.add(planes)) {
      // A strip with nothing on it says so once, not 40 times a second.
      const silent = reading.peak === 0;
      if (!(silent && this.#wasSilent)) this.port.postMessage(reading);
      this.#wasSilent = silent;
    }
    return true;
  }
}

/** Gathers at least 1024 frames per message: fewer, larger posts to the worker. */
const TAP_BLOCK = 1024;

class OnairPcmTap extends AudioWorkletProcessor {
  /** The page sets `active` to 0 when the feed stops (the port is the worker's by then): the processor ends. */
  static get parameterDescriptors(): { name: string; defaultValue: number; minValue: number; maxValue: number; automationRate: 'k-rate' }[] {
    return [{ name: 'active', defaultValue: 1, minValue: 0, maxValue: 1, automationRate: 'k-rate' }];
  }

  readonly #silence = [new Float32Array(QUANTUM), new Float32Array(QUANTUM)];
  #blocks: Float32Array[][] = [];
  #frames = 0;
  #start = 0;

  process(inputs: Float32Array[][], _outputs: Float32Array[][], parameters: Record<string, Float32Array>): boolean {
    if (parameters['active']?.[0] === 0) return false;
    // With no source playing the master is not processing and the input has no channels: that is
    // silence, and the encoder gets it as such.
    const given = inputs[0];
    const input = given !== undefined && given.length > 0 ? given : this.#silence;
    if (this.#frames === 0) this.#start = currentFrame;
    this.#blocks.push(input.map((c) => c.slice()));
    this.#frames += input[0]!.length;
    if (this.#frames >= TAP_BLOCK) {
      const channels = input.map((_, c) => {
        const out = new Float32Array(this.#frames);
        let at = 0;
        for (const block of this.#blocks) {
          // A block may have fewer channels than the last one (an input connected mid-way).
          const plane = block[c] ?? block[0]!;
          out.set(plane, at);
          at += plane.length;
        }
        return out;
      });
      const msg: PcmBlock = { sampleRate, timestampUs: (this.#start / sampleRate) * 1e6, channels };
      this.port.postMessage(msg, channels.map((c) => c.buffer));
      this.#blocks = [];
      this.#frames = 0;
    }
    return true;
  }
}

registerProcessor('onair-meter', OnairMeter);
registerProcessor('onair-pcm-tap', OnairPcmTap);

import { TagClass } from '../outbox.js';
import type { OutTag } from '../stream-timeline.js';
import type { BitrateDecision } from './bitrate-controller.js';
import type { EncodeStats } from '../worker-protocol.js';

/** How many of the newest timings make a median. */
const COST_SAMPLES = 600;

/** The newest timings of one step (ms): median and 95th percentile of the last 600, mean of all. */
export class CostSamples {
  readonly #samples = new Float64Array(COST_SAMPLES);
  #count = 0;
  #sum = 0;

  get count(): number {
    return this.#count;
  }

  add(ms: number): void {
    this.#samples[this.#count++ % COST_SAMPLES] = ms;
    this.#sum += ms;
  }

  get mean(): number {
    return this.#count > 0 ? this.#sum / this.#count : 0;
  }

  medianP95(): [number, number] {
    const n = Math.min(this.#count, COST_SAMPLES);
    const sorted = Array.from(this.#samples.subarray(0, n)).sort((a, b) => a - b);
    return [sorted[Math.floor(n / 2)] ?? 0, sorted[Math.floor(n * 0.95)] ?? 0];
  }
}

/** Why the output clock let a frame go (each has its own counter in `EncodeStats`). */
export type DropReason = 'late' | 'encoderBusy' | 'backlog';

const DROP_COUNTER = { late: 'droppedLate', encoderBusy: 'droppedEncoderBusy', backlog: 'droppedBacklog' } as const;

/** What the parts of the pipeline report now, read when the stats are posted. */
export interface StatsProbe {
  encodeQueue: number;
  /** The encoders were flushed and closed: what they still hold will never come out. */
  stopped: boolean;
  wsBufferedBytes: number;
  reconnects: number;
  resendBufferBytes: number;
  compose: CostSamples;
}

/**
 * The session's numbers: what went out (per stats period), why frames were dropped, what the
 * encoder holds, the real keyframe interval, and the cost of muxing and sending. Every part counts
 * here; `snapshot` makes the message the page draws its graphs from.
 */
export class SessionStats {
  readonly #stats: EncodeStats;
  #sentBytes = 0;
  #sentFrames = 0;
  readonly muxSend = new CostSamples();
  /** Frames handed to the encoder, and chunks it gave back. */
  #submitted = 0;
  #chunks = 0;
  /** Presentation times of frames the studio asked to be keyframes, and of the keyframes that came out. */
  readonly #keysAsked = new Set<number>();
  #keyTimes: number[] = [];
  #unaskedKeys = 0;

  constructor(targetBitrate: number) {
    this.#stats = {
      fps: 0,
      bitrate: 0,
      encodeQueue: 0,
      framesDropped: 0,
      droppedLate: 0,
      droppedEncoderBusy: 0,
      droppedBacklog: 0,
      droppedByEncoder: 0,
      framesInEncoder: 0,
      reorders: false,
      keyframeIntervalMs: 0,
      encoderKeyframes: false,
      framesRepeated: 0,
      wsBufferedBytes: 0,
      framesSent: 0,
      framesEncoded: 0,
      audioFramesSent: 0,
      muxSendMedianMs: 0,
      muxSendP95Ms: 0,
      muxSendMeanMs: 0,
      composeMedianMs: 0,
      composeP95Ms: 0,
      framesComposed: 0,
      codec: '',
      audioEncoder: 'none',
      reconnects: 0,
      gaps: 0,
      gapFrames: 0,
      gapMs: 0,
      resendBufferBytes: 0,
      audioBlocksDropped: 0,
      targetBitrate,
      bitrateReason: 'chosen',
      frameRateHalved: false,
    };
  }

  get framesSent(): number {
    return this.#stats.framesSent;
  }

  encoders(codec: string, reorders: boolean, audio: EncodeStats['audioEncoder']): void {
    this.#stats.codec = codec;
    this.#stats.reorders = reorders;
    this.#stats.audioEncoder = audio;
  }

  targetBitrate(bps: number): void {
    this.#stats.targetBitrate = bps;
  }

  /** What the bitrate controller decided (the rate itself arrives through targetBitrate, when it lands). */
  adapted(decision: BitrateDecision): void {
    this.#stats.bitrateReason = decision.reason;
    this.#stats.frameRateHalved = decision.halfFrameRate;
  }

  dropped(reason: DropReason, frames = 1): void {
    this.#stats.framesDropped += frames;
    this.#stats[DROP_COUNTER[reason]] += frames;
  }

  repeated(): void {
    this.#stats.framesRepeated++;
  }

  audioBlockDropped(): void {
    this.#stats.audioBlocksDropped++;
  }

  gap(frames: number, ms: number): void {
    this.#stats.gaps++;
    this.#stats.gapFrames += frames;
    this.#stats.gapMs += ms;
  }

  /** A tag left for the bridge (a video tag may leave on a later call, with reordering). */
  sent(tag: OutTag): void {
    this.#sentBytes += tag.bytes.length;
    if (tag.cls === TagClass.Keyframe || tag.cls === TagClass.Frame) {
      this.#sentFrames++;
      this.#stats.framesSent++;
      this.#stats.framesEncoded++;
    } else if (tag.cls === TagClass.Audio) {
      this.#stats.audioFramesSent++;
    }
  }

  /** A frame went to the encoder; a keyframe asked for is remembered by its timestamp. */
  submitted(timestampUs: number, key: boolean): void {
    this.#submitted++;
    if (!key) return;
    this.#keysAsked.add(timestampUs);
    if (this.#keysAsked.size > 64) this.#keysAsked.delete(this.#keysAsked.values().next().value!);
  }

  /** A chunk came out of the encoder: a keyframe updates the real interval, and whether it was asked for. */
  chunk(key: boolean, ptsUs: number): void {
    this.#chunks++;
    if (!key) return;
    if (!this.#keysAsked.delete(ptsUs)) this.#unaskedKeys++;
    this.#keyTimes.push(ptsUs);
    if (this.#keyTimes.length > 9) this.#keyTimes.shift();
    const gaps = this.#keyTimes
      .slice(1)
      .map((t, i) => t - this.#keyTimes[i]!)
      .sort((a, b) => a - b);
    if (gaps.length > 0) this.#stats.keyframeIntervalMs = Math.round(gaps[Math.floor(gaps.length / 2)]! / 1000);
    // More than the first one or two (a trial, a start) means the encoder decides for itself.
    this.#stats.encoderKeyframes = this.#unaskedKeys > 2;
  }

  /** The stats of the period just ended (rates per second over `periodMs`); the period's counters restart. */
  snapshot(periodMs: number, probe: StatsProbe): EncodeStats {
    const st = this.#stats;
    st.fps = this.#sentFrames * (1000 / periodMs);
    st.bitrate = this.#sentBytes * 8 * (1000 / periodMs);
    this.#sentFrames = 0;
    this.#sentBytes = 0;
    st.encodeQueue = probe.encodeQueue;
    // Until the encoder is flushed, what it holds may still come out: only then is it dropped.
    const inside = Math.max(0, this.#submitted - this.#chunks - st.encodeQueue);
    if (probe.stopped) st.droppedByEncoder = inside;
    else st.framesInEncoder = inside;
    st.wsBufferedBytes = probe.wsBufferedBytes;
    st.reconnects = probe.reconnects;
    st.resendBufferBytes = probe.resendBufferBytes;
    if (this.muxSend.count > 0) {
      [st.muxSendMedianMs, st.muxSendP95Ms] = this.muxSend.medianP95();
      st.muxSendMeanMs = this.muxSend.mean;
    }
    if (probe.compose.count > 0) [st.composeMedianMs, st.composeP95Ms] = probe.compose.medianP95();
    st.framesComposed = probe.compose.count;
    return { ...st };
  }
}

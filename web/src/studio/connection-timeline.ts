import { FlvMuxer, type StreamMetadata } from '../lib/flv-muxer.js';

export interface ConnectionTimelineLimits {
  /** AAC frames held while waiting for the first keyframe (about 21 ms each at 48 kHz). */
  maxHeldAudio: number;
}

export const DEFAULT_TIMELINE_LIMITS: ConnectionTimelineLimits = { maxHeldAudio: 200 };

/**
 * What one WebSocket connection to the bridge gets, as FLV tags: the headers, then media from the
 * first keyframe on, with both tracks rebased so that keyframe is at 0 (DESIGN.md: one clock per
 * RTMP connection, rebased to 0). Audio that comes before that keyframe is held (bounded) and
 * released with it when it is not older; video before it and audio older than it are dropped.
 * Sans-I/O: callers pass encoder output with timestamps on the session clock and send what comes
 * back, in order.
 */
export class ConnectionTimeline {
  readonly #muxer = new FlvMuxer();
  readonly #limits: ConnectionTimelineLimits;
  #originUs: number | undefined;
  #held: { data: Uint8Array; timestampUs: number }[] = [];
  #dropped = 0;

  constructor(limits: ConnectionTimelineLimits = DEFAULT_TIMELINE_LIMITS) {
    this.#limits = limits;
  }

  /** True once the first keyframe went out. */
  get started(): boolean {
    return this.#originUs !== undefined;
  }

  /** Media tags dropped on this connection before its first keyframe. */
  get dropped(): number {
    return this.#dropped;
  }

  /** onMetaData, the AAC sequence header, and the AVC sequence header once the encoder gave one. */
  headers(meta: StreamMetadata, audioSpecificConfig: Uint8Array, avcC: Uint8Array | undefined): Uint8Array<ArrayBuffer>[] {
    const tags = [this.#muxer.metadata(meta), this.#muxer.audioConfig(audioSpecificConfig)];
    if (avcC !== undefined) tags.push(this.#muxer.videoConfig(avcC));
    return tags;
  }

  videoConfig(avcC: Uint8Array): Uint8Array<ArrayBuffer> {
    return this.#muxer.videoConfig(avcC);
  }

  /**
   * The video tag, followed by the held audio when this is the connection's first keyframe; empty
   * when the frame is dropped. The video tag is a view reused by the next call (FlvMuxer.video).
   */
  video(data: Uint8Array, keyframe: boolean, timestampUs: number, fillerBytes = 0): Uint8Array<ArrayBuffer>[] {
    if (this.#originUs === undefined) {
      if (!keyframe) {
        this.#dropped++;
        return [];
      }
      this.#originUs = timestampUs;
    }
    const origin = this.#originUs;
    if (timestampUs < origin) {
      this.#dropped++;
      return [];
    }
    const tags = [this.#muxer.video(data, keyframe, timestampUs - origin, timestampUs - origin, fillerBytes)];
    if (this.#held.length > 0) {
      for (const a of this.#held) {
        const tag = this.audio(a.data, a.timestampUs);
        if (tag !== undefined) tags.push(tag);
      }
      this.#held = [];
    }
    return tags;
  }

  /** The audio tag, or undefined when it is held for the first keyframe or dropped. */
  audio(data: Uint8Array, timestampUs: number): Uint8Array<ArrayBuffer> | undefined {
    const origin = this.#originUs;
    if (origin === undefined) {
      if (this.#held.length >= this.#limits.maxHeldAudio) {
        this.#held.shift();
        this.#dropped++;
      }
      this.#held.push({ data: data.slice(), timestampUs });
      return undefined;
    }
    if (timestampUs < origin) {
      this.#dropped++;
      return undefined;
    }
    return this.#muxer.audio(data, timestampUs - origin);
  }
}

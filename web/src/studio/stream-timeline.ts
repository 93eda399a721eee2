import { FlvMuxer, type StreamMetadata } from '../lib/flv-muxer.js';
import { TagClass } from './outbox.js';

export interface StreamTimelineLimits {
  /** AAC frames held while waiting for the first keyframe (about 21 ms each at 48 kHz). */
  maxHeldAudio: number;
}

export const DEFAULT_TIMELINE_LIMITS: StreamTimelineLimits = { maxHeldAudio: 200 };

/** One FLV tag for the bridge, with what the outbox needs to know of it. */
export interface OutTag {
  bytes: Uint8Array<ArrayBuffer>;
  cls: TagClass;
  /** Its timestamp, ms on the broadcast's timeline. */
  ms: number;
  /** Headers: which one ('meta', 'audio', 'video'), so a restart sends the newest of each. */
  header?: string;
}

/**
 * What one broadcast sends, as FLV tags: the headers, then media from the first keyframe on, with
 * both tracks rebased so that keyframe is at 0 (DESIGN.md: one clock per session). Audio that comes
 * before that keyframe is held (bounded) and released with it when it is not older; video before
 * it and audio older than it are dropped. The timeline runs on across sockets and bridge sessions:
 * the bridge and its destinations place what they get. Sans-I/O: callers pass encoder output with
 * timestamps on the session clock and send what comes back, in order.
 */
export class StreamTimeline {
  readonly #muxer = new FlvMuxer();
  readonly #limits: StreamTimelineLimits;
  #originUs: number | undefined;
  #held: { data: Uint8Array; timestampUs: number }[] = [];
  #dropped = 0;
  /** Timestamp of the newest video tag, ms: where a new sequence header goes. */
  #videoMs = 0;

  constructor(limits: StreamTimelineLimits = DEFAULT_TIMELINE_LIMITS) {
    this.#limits = limits;
  }

  /** True once the first keyframe went out. */
  get started(): boolean {
    return this.#originUs !== undefined;
  }

  /** Media tags dropped before the first keyframe. */
  get dropped(): number {
    return this.#dropped;
  }

  /** onMetaData and the AAC sequence header. */
  headers(meta: StreamMetadata, audioSpecificConfig: Uint8Array): OutTag[] {
    return [
      { bytes: this.#muxer.metadata(meta), cls: TagClass.Header, ms: 0, header: 'meta' },
      { bytes: this.#muxer.audioConfig(audioSpecificConfig), cls: TagClass.Header, ms: 0, header: 'audio' },
    ];
  }

  /** The AVC sequence header, whenever the encoder announces a (new) configuration. */
  videoConfig(avcC: Uint8Array): OutTag {
    return { bytes: this.#muxer.videoConfig(avcC), cls: TagClass.Header, ms: this.#videoMs, header: 'video' };
  }

  /**
   * The video tag, followed by the held audio when this is the first keyframe; empty when the frame
   * is dropped. The video tag's bytes are a view reused by the next call (FlvMuxer.video).
   */
  video(data: Uint8Array, keyframe: boolean, timestampUs: number, fillerBytes = 0): OutTag[] {
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
    const ms = Math.round((timestampUs - origin) / 1000);
    this.#videoMs = ms;
    const tags: OutTag[] = [{ bytes: this.#muxer.video(data, keyframe, timestampUs - origin, timestampUs - origin, fillerBytes), cls: keyframe ? TagClass.Keyframe : TagClass.Frame, ms }];
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
  audio(data: Uint8Array, timestampUs: number): OutTag | undefined {
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
    return { bytes: this.#muxer.audio(data, timestampUs - origin), cls: TagClass.Audio, ms: Math.round((timestampUs - origin) / 1000) };
  }
}

import { FLV_TAG_HEADER_SIZE, FlvTagType, TagKind, tagKind } from '@onair/shared';
import { DecodeTimes } from '../lib/decode-times.js';
import { FlvMuxer, type StreamMetadata } from '../lib/flv-muxer.js';
import { TagInterleaver } from '../lib/tag-interleaver.js';
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

/** What a tag in FLV file form is, for the outbox: read from its header and first body bytes. */
export function outTag(bytes: Uint8Array<ArrayBuffer>): OutTag {
  const ms = ((bytes[4]! << 16) | (bytes[5]! << 8) | bytes[6]!) + bytes[7]! * 0x1000000;
  const b1 = bytes[FLV_TAG_HEADER_SIZE + 1];
  switch (bytes[0]) {
    case FlvTagType.Video: {
      // The one classifier, for legacy and Enhanced RTMP (ex-header) tags alike.
      const kind = tagKind({ type: FlvTagType.Video, timestamp: ms, data: bytes.subarray(FLV_TAG_HEADER_SIZE) });
      if (kind === TagKind.VideoConfig) return { bytes, cls: TagClass.Header, ms, header: 'video' };
      return { bytes, cls: kind === TagKind.Keyframe ? TagClass.Keyframe : TagClass.Frame, ms };
    }
    case FlvTagType.Audio:
      return b1 === 0 ? { bytes, cls: TagClass.Header, ms, header: 'audio' } : { bytes, cls: TagClass.Audio, ms };
    default:
      return { bytes, cls: TagClass.Header, ms, header: 'meta' };
  }
}

/**
 * What one broadcast sends, as FLV tags: the headers, then media from the first keyframe on, with
 * both tracks rebased so that keyframe is at 0 (DESIGN.md: one clock per session). Audio that comes
 * before that keyframe is held (bounded) and released with it when it is not older; video before
 * it and audio older than it are dropped. The timeline runs on across sockets and bridge sessions:
 * the bridge and its destinations place what they get. Sans-I/O: callers pass encoder output with
 * timestamps on the session clock and send what comes back, in order.
 *
 * Video tags carry decode times derived from the encoder's output order (`DecodeTimes`), and the
 * composition time to the picture. Once the encoder turns out to reorder frames (B-frames, as
 * Firefox's does), audio and video go through a `TagInterleaver` so the wire stays in timestamp
 * order; an encoder that does not reorder pays nothing for it.
 */
export class StreamTimeline {
  readonly #muxer = new FlvMuxer();
  readonly #limits: StreamTimelineLimits;
  #originUs: number | undefined;
  #held: { data: Uint8Array; timestampUs: number }[] = [];
  #dropped = 0;
  /** Timestamp of the newest video tag, ms: where a new sequence header goes. */
  #videoMs = 0;

  readonly #decode: DecodeTimes;
  readonly #interleaver = new TagInterleaver();
  /** The encoder lost its reordering (decode times gave up): ask it for a keyframe. */
  keyframeWanted = false;

  constructor(frameDurationUs: number, limits: StreamTimelineLimits = DEFAULT_TIMELINE_LIMITS) {
    this.#limits = limits;
    this.#decode = new DecodeTimes({ frameDurationUs });
  }

  /** How many frames the encoder reorders (0 without B-frames). */
  get reorderFrames(): number {
    return this.#decode.reorderFrames;
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
  videoConfig(avcC: Uint8Array): OutTag[] {
    const bytes = this.#muxer.videoConfig(avcC);
    if (this.#decode.reorderFrames === 0) return [{ bytes, cls: TagClass.Header, ms: this.#videoMs, header: 'video' }];
    return this.#interleave(bytes);
  }

  /**
   * The tags to send for an encoded video chunk (`ptsUs`: its presentation time): its tag, the
   * audio held for the first keyframe, and, once the encoder reorders, whatever the interleaver
   * releases. Empty when the frame is dropped or held. A tag's bytes may be a view reused by the
   * next call (FlvMuxer.video): send or copy them before then.
   */
  video(data: Uint8Array, keyframe: boolean, ptsUs: number, fillerBytes = 0): OutTag[] {
    if (this.#originUs === undefined) {
      if (!keyframe) {
        this.#dropped++;
        return [];
      }
      this.#originUs = ptsUs;
    }
    const origin = this.#originUs;
    if (ptsUs < origin) {
      this.#dropped++;
      return [];
    }
    const dtsUs = this.#decode.next(ptsUs, keyframe);
    if (dtsUs === undefined) {
      // The encoder reordered deeper at once than decode times can follow: restart at a keyframe.
      this.#dropped++;
      this.keyframeWanted = true;
      return [];
    }
    if (keyframe) this.keyframeWanted = false;
    const ms = Math.round((dtsUs - origin) / 1000);
    this.#videoMs = ms;
    const bytes = this.#muxer.video(data, keyframe, dtsUs - origin, ptsUs - origin, fillerBytes);
    const tags: OutTag[] = this.#decode.reorderFrames === 0 && this.#interleaver.held === 0 ? [{ bytes, cls: keyframe ? TagClass.Keyframe : TagClass.Frame, ms }] : this.#interleave(bytes);
    if (this.#held.length > 0) {
      for (const a of this.#held) tags.push(...this.audio(a.data, a.timestampUs));
      this.#held = [];
    }
    return tags;
  }

  /** A video chunk the caller dropped: the interleaver stops waiting for it. */
  skipVideo(ptsUs: number, keyframe: boolean): OutTag[] {
    const origin = this.#originUs;
    if (origin === undefined || ptsUs < origin) return [];
    const dtsUs = this.#decode.next(ptsUs, keyframe);
    if (dtsUs === undefined || this.#decode.reorderFrames === 0) return [];
    return this.#interleaver.skip(FlvTagType.Video, Math.round((dtsUs - origin) / 1000)).map((b) => outTag(b as Uint8Array<ArrayBuffer>));
  }

  /** The audio tags to send for an encoded AAC frame: none while it is held for the first keyframe or dropped. */
  audio(data: Uint8Array, timestampUs: number): OutTag[] {
    const origin = this.#originUs;
    if (origin === undefined) {
      if (this.#held.length >= this.#limits.maxHeldAudio) {
        this.#held.shift();
        this.#dropped++;
      }
      this.#held.push({ data: data.slice(), timestampUs });
      return [];
    }
    if (timestampUs < origin) {
      this.#dropped++;
      return [];
    }
    const bytes = this.#muxer.audio(data, timestampUs - origin);
    if (this.#decode.reorderFrames === 0 && this.#interleaver.held === 0) return [{ bytes, cls: TagClass.Audio, ms: Math.round((timestampUs - origin) / 1000) }];
    return this.#interleave(bytes);
  }

  /** Everything the interleaver still holds (at the end of the broadcast). */
  flush(): OutTag[] {
    return this.#interleaver.flush().map((b) => outTag(b as Uint8Array<ArrayBuffer>));
  }

  #interleave(bytes: Uint8Array<ArrayBuffer>): OutTag[] {
    return this.#interleaver.push(bytes).map((b) => outTag(b as Uint8Array<ArrayBuffer>));
  }
}

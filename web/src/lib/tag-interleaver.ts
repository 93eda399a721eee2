import { FlvTagType } from '@onair/shared';

export interface InterleaveLimits {
  /** Tags held for one track; beyond this its oldest goes out anyway (the other track stalled). */
  maxHeldTags: number;
  /** Bytes held for both tracks together, with the same remedy. */
  maxHeldBytes: number;
}

/**
 * About a second of either track (AAC at 48 kHz: 47 frames a second; video at up to 60 fps),
 * far above what reordering needs (a few frame intervals), and a few big keyframes.
 */
export const DEFAULT_INTERLEAVE_LIMITS: InterleaveLimits = { maxHeldTags: 48, maxHeldBytes: 4 * 1024 * 1024 };

interface Held {
  tag: Uint8Array;
  ms: number;
}

class Track {
  readonly queue: Held[] = [];
  /** No later tag of this track has a smaller timestamp: the last one pushed (or skipped). */
  progress = Number.NEGATIVE_INFINITY;
}

/** Timestamp and TimestampExtended of a tag in FLV tag form (FLV spec §E.4.1). */
function timestampOf(tag: Uint8Array): number {
  return ((tag[4]! << 16) | (tag[5]! << 8) | tag[6]!) + tag[7]! * 0x1000000;
}

/**
 * Puts the audio and video tags of one connection on the wire in non-decreasing timestamp order,
 * as ffmpeg's FLV muxer interleaves by DTS; nginx-rtmp's recorder and other servers take the
 * order they receive as the file's. Sans-I/O: push every tag as it is made, send what comes
 * back, in order.
 *
 * Why it holds anything. A video tag is stamped with its decode time, an audio tag with its
 * presentation time. With B-frames the video's decode times run behind its pictures (by the
 * reorder depth, DecodeTimes), and video arrives in bursts (P4 B2 b1 b3 come out together once
 * frame 4 is in), so audio made now has later timestamps than the video still to come and waits
 * for it. Without reordering video can be ahead of audio (the AAC encoder's delay) and waits
 * instead. A tag goes out once the other track has reached its timestamp: each track's own tags
 * never go back (DTS increases; audio is held at its last), so nothing earlier can follow it.
 *
 * A/V sync does not depend on the order: a player takes each audio tag's timestamp as its
 * presentation time and each video tag's timestamp + composition time as the picture's
 * (ffmpeg's FLV demuxer; FlvToFmp4, which puts the composition time in the trun sample offset).
 * Both are on the one connection clock, so audio and pictures meet whatever the tags' order.
 *
 * Bounded: when a track holds more than `maxHeldTags`, or all held tags more than
 * `maxHeldBytes` (the other track stalled, or its tags are being dropped without `skip`), the
 * oldest goes out anyway. A tag of the other track that then comes with an earlier timestamp
 * goes out at once, out of order, and is counted in `late`.
 *
 * Tags held are copied (FlvMuxer.video returns a view it reuses); a tag that can go out at once,
 * the usual case for whichever track is behind, is returned as it was given.
 */
export class TagInterleaver {
  readonly #limits: InterleaveLimits;
  readonly #audio = new Track();
  readonly #video = new Track();
  #heldBytes = 0;
  /** The timestamp of the last tag returned. */
  #wire = Number.NEGATIVE_INFINITY;
  #late = 0;

  constructor(limits: InterleaveLimits = DEFAULT_INTERLEAVE_LIMITS) {
    this.#limits = limits;
  }

  /** Tags held now. */
  get held(): number {
    return this.#audio.queue.length + this.#video.queue.length;
  }

  /** Tags that went out with a timestamp below one already sent (after a forced release). */
  get late(): number {
    return this.#late;
  }

  /**
   * One tag in FLV tag form; returns the tags to send now, in order. Audio and video tags are
   * ordered; script data goes out at once. A sequence header keeps its place in its track (a new
   * avcC never overtakes frames encoded before it), ordered as if stamped like the tag before it.
   */
  push(tag: Uint8Array): Uint8Array[] {
    const type = tag[0]! & 0x1f;
    if (type !== FlvTagType.Audio && type !== FlvTagType.Video) return [tag];
    const track = type === FlvTagType.Audio ? this.#audio : this.#video;
    const ms = Math.max(timestampOf(tag), track.progress);
    track.progress = ms;
    const held: Held = { tag, ms };
    track.queue.push(held);
    this.#heldBytes += tag.length;
    const out = this.#release();
    // Still held: keep a copy, the caller may reuse its buffer.
    if (track.queue.at(-1) === held) held.tag = tag.slice();
    return out;
  }

  /**
   * A track moved on without a tag (one dropped for backpressure, say): none of its tags to come
   * has a timestamp below `ms`. Returns what that lets out.
   */
  skip(type: FlvTagType.Audio | FlvTagType.Video, ms: number): Uint8Array[] {
    const track = type === FlvTagType.Audio ? this.#audio : this.#video;
    track.progress = Math.max(track.progress, ms);
    return this.#release();
  }

  /** Everything held, in order: the end of the stream (both tracks are done). */
  flush(): Uint8Array[] {
    this.#audio.progress = this.#video.progress = Number.POSITIVE_INFINITY;
    return this.#release();
  }

  #release(): Uint8Array[] {
    const out: Uint8Array[] = [];
    const a = this.#audio;
    const v = this.#video;
    for (;;) {
      const ha = a.queue[0];
      const hv = v.queue[0];
      let from: Track;
      if (ha !== undefined && hv !== undefined) from = ha.ms < hv.ms ? a : v;
      else if (hv !== undefined && (hv.ms <= a.progress || hv.ms <= this.#wire)) from = v;
      else if (ha !== undefined && (ha.ms <= v.progress || ha.ms <= this.#wire)) from = a;
      else if (a.queue.length > this.#limits.maxHeldTags || v.queue.length > this.#limits.maxHeldTags || this.#heldBytes > this.#limits.maxHeldBytes) {
        from = a.queue.length > 0 ? a : v;
      } else {
        break;
      }
      const next = from.queue.shift()!;
      this.#heldBytes -= next.tag.length;
      if (next.ms < this.#wire) this.#late++;
      else this.#wire = next.ms;
      out.push(next.tag);
    }
    return out;
  }
}

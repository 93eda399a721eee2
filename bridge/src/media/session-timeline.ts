import { TagKind } from '@onair/shared';

/** Video frame interval assumed before two frames have been seen (30 fps). */
const DEFAULT_FRAME_MS = 33;

/**
 * The timestamps a session relays to its destinations, whatever its source does. A studio page's
 * clock runs on unchanged while its socket comes and goes and every frame is resent; a restream
 * input's encoder may disconnect and start again from 0. Only a gap (media the page could no longer
 * resend, an input that dropped and came back) moves the timeline: from `gap()` on, media is
 * dropped until the next video keyframe, which is placed one frame after the last media relayed,
 * and everything after it shifts with it. Every destination so sees one stream with continuous
 * timestamps. Sans-I/O.
 */
export class SessionTimeline {
  /** Output = source timestamp − offset. */
  #offset = 0;
  #rebase = false;
  #lastOut: number | undefined;
  #lastVideoIn: number | undefined;
  #frameMs = DEFAULT_FRAME_MS;
  /** Media placed before this (audio captured before the keyframe that closed a gap) is dropped. */
  #floor = 0;

  /** The source lost media or started again: continue at the next keyframe. */
  gap(): void {
    if (this.#lastOut === undefined) return;
    this.#rebase = true;
  }

  /**
   * The output timestamp of a tag with source timestamp `ts`, or undefined when it is dropped
   * (media after a gap, before its keyframe). Configuration and metadata always pass.
   */
  map(ts: number, kind: TagKind): number | undefined {
    const media = kind === TagKind.Keyframe || kind === TagKind.Frame || kind === TagKind.Audio || kind === TagKind.Other;
    if (!media) return Math.max(0, ts - this.#offset, this.#lastOut ?? 0);
    if (this.#rebase) {
      if (kind !== TagKind.Keyframe) return undefined;
      const last = this.#lastOut ?? 0;
      this.#offset = ts - (last + this.#frameMs);
      this.#floor = last + this.#frameMs;
      this.#lastVideoIn = undefined;
      this.#rebase = false;
    }
    const out = ts - this.#offset;
    if (out < this.#floor) return undefined;
    if (kind === TagKind.Keyframe || kind === TagKind.Frame) {
      if (this.#lastVideoIn !== undefined && ts > this.#lastVideoIn) this.#frameMs = Math.min(ts - this.#lastVideoIn, 1000);
      this.#lastVideoIn = ts;
    }
    const clamped = Math.max(0, out);
    this.#lastOut = Math.max(this.#lastOut ?? 0, clamped);
    return clamped;
  }
}

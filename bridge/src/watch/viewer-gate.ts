import { TagKind } from '@onair/shared';

export interface ViewerLimits {
  /** Bytes queued towards a viewer past which it is skipped forward to the next keyframe. */
  maxBufferedBytes: number;
}

export const DEFAULT_VIEWER_LIMITS: ViewerLimits = { maxBufferedBytes: 2 * 1024 * 1024 };

/**
 * Decides, tag by tag, what one viewer receives. A viewer starts on a keyframe; one whose
 * connection cannot keep up (its send queue passes the limit) loses everything up to the next
 * keyframe the queue has room for, so its memory stays bounded and its picture never breaks.
 */
export class ViewerGate {
  readonly #limits: ViewerLimits;
  #waitingForKeyframe = true;
  dropped = 0;
  skips = 0;

  constructor(limits: ViewerLimits = DEFAULT_VIEWER_LIMITS) {
    this.#limits = limits;
  }

  /**
   * `hasVideo`: the stream carries video (a video configuration was seen), so audio waits for
   * the picture; an audio-only stream flows without keyframes.
   */
  admit(kind: TagKind, bufferedBytes: number, hasVideo: boolean): boolean {
    if (kind === TagKind.Metadata || kind === TagKind.VideoConfig || kind === TagKind.AudioConfig) return true;
    if (bufferedBytes > this.#limits.maxBufferedBytes) {
      if (!this.#waitingForKeyframe) this.skips++;
      this.#waitingForKeyframe = hasVideo;
      this.dropped++;
      return false;
    }
    if (this.#waitingForKeyframe) {
      if (kind === TagKind.Keyframe || !hasVideo) {
        this.#waitingForKeyframe = false;
        return true;
      }
      this.dropped++;
      return false;
    }
    return true;
  }
}

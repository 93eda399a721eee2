/** What `HTMLVideoElement.getVideoPlaybackQuality()` reports. */
export interface FrameCounts {
  totalVideoFrames: number;
  droppedVideoFrames: number;
}

/**
 * The browser's decoded and dropped video frames, summed over restarts of its counters.
 * WebKitGTK 2.50 starts `getVideoPlaybackQuality()` from zero at every seek, and it applies a
 * `playbackRate` change as a seek (measured: both counters back to 0 right after `playbackRate
 * = 1.03`, and the playhead still for about 0.2 s); Chromium and Firefox count on. Read it
 * often (every 100 ms): the frames counted between the last reading and a restart are lost.
 */
export class FrameCounter {
  decoded = 0;
  dropped = 0;
  /** How many times the counters went back. */
  restarts = 0;
  #last: FrameCounts | undefined;

  update(q: FrameCounts): void {
    const last = this.#last;
    this.#last = { totalVideoFrames: q.totalVideoFrames, droppedVideoFrames: q.droppedVideoFrames };
    if (last === undefined) {
      this.decoded = q.totalVideoFrames;
      this.dropped = q.droppedVideoFrames;
      return;
    }
    const restarted = q.totalVideoFrames < last.totalVideoFrames;
    if (restarted) this.restarts++;
    this.decoded += q.totalVideoFrames - (restarted ? 0 : last.totalVideoFrames);
    this.dropped += q.droppedVideoFrames - (restarted || q.droppedVideoFrames < last.droppedVideoFrames ? 0 : last.droppedVideoFrames);
  }
}

export interface VideoFlowLimits {
  /** Above this many bytes queued in the WebSocket, video is dropped until the next keyframe. */
  highWater: number;
  /** The keyframe that ends a drop episode is asked for only once the queue is below this. */
  lowWater: number;
  /** Frames waiting in the encoder beyond which a new frame is dropped instead of queued. */
  maxEncodeQueue: number;
}

export const DEFAULT_VIDEO_FLOW_LIMITS: VideoFlowLimits = { highWater: 1024 * 1024, lowWater: 512 * 1024, maxEncodeQueue: 3 };

export const enum FramePlan {
  Drop,
  Delta,
  Key,
}

/**
 * Which output frames to encode, which to make keyframes, and which encoded chunks to send, given
 * the encoder's queue and the WebSocket's backlog. Sans-I/O. A drop episode (backlog over the
 * high-water mark, or a new connection) asks for one keyframe, once the backlog is below the
 * low-water mark; a keyframe never jumps the encoder queue limit, its request waits instead.
 */
export class VideoFlow {
  readonly #gop: number;
  readonly #limits: VideoFlowLimits;
  #nextKey = 0;
  /** A keyframe was asked for and not yet handed to the encoder. */
  #keyWanted = false;
  /** Dropping chunks until a keyframe can go out. */
  #waitKey = true;

  /** `gop`: output frames between scheduled keyframes. */
  constructor(gop: number, limits: VideoFlowLimits = DEFAULT_VIDEO_FLOW_LIMITS) {
    this.#gop = gop;
    this.#limits = limits;
  }

  /** A new connection: nothing goes out before a keyframe, asked for now. */
  restart(): void {
    this.#waitKey = true;
    this.#keyWanted = true;
  }

  /** What to do with output frame `n`. */
  plan(n: number, encodeQueue: number, buffered: number): FramePlan {
    if (encodeQueue >= this.#limits.maxEncodeQueue) return FramePlan.Drop;
    if (n >= this.#nextKey) return FramePlan.Key;
    return this.#keyWanted && buffered < this.#limits.lowWater ? FramePlan.Key : FramePlan.Delta;
  }

  /** Frame `n` went to the encoder; a keyframe restarts the cadence. */
  encoded(n: number, key: boolean): void {
    if (!key) return;
    this.#keyWanted = false;
    this.#nextKey = n + this.#gop;
  }

  /** Whether an encoded chunk is sent; `buffered` is the WebSocket's backlog before it. */
  admit(key: boolean, buffered: number): boolean {
    if (buffered > this.#limits.highWater) {
      // One request per episode; a keyframe lost to the backlog needs another.
      if (!this.#waitKey || key) this.#keyWanted = true;
      this.#waitKey = true;
      return false;
    }
    if (this.#waitKey && !key) return false;
    this.#waitKey = false;
    return true;
  }
}

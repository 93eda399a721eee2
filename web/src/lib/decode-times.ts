/**
 * H.264 keeps at most 16 frames in the decoded picture buffer (A.3.1 h), so no frame can follow
 * more than 16 others in decode order and precede them on screen.
 */
export const MAX_REORDER_FRAMES = 16;
/**
 * Two presentation times further apart than this many frame intervals leave room for a frame
 * between them (a frame that may still come, reordered further than any seen so far).
 */
const GAP_FRAMES = 1.5;
/** Consecutive decode times stay this far apart, so they still increase once rounded to FLV's ms. */
const MIN_STEP_US = 1000;
/**
 * An encoder that has kept presentation order this many frames does not reorder (B-frames show
 * within the first mini-GOP): gaps from dropped frames are taken as gaps from then on.
 */
export const SETTLE_FRAMES = 64;

export interface DecodeTimesOptions {
  /** The nominal frame interval, 1e6 / fps. */
  frameDurationUs: number;
  /**
   * Reorder depth known in advance (what an earlier connection of the same encoder learned);
   * learning only raises it. Default 0.
   */
  reorderFrames?: number;
}

/**
 * Decode timestamps for an encoder's output. WebCodecs hands chunks over in decode order with
 * their presentation time only; an encoder that uses B-frames hands them over with presentation
 * times that go back (I0 P3 B1 B2 …). FLV stamps each video tag with its decode time (DTS) and
 * carries PTS − DTS as the composition time, so DTS must increase strictly (also once rounded to
 * milliseconds) and never pass the frame's own PTS nor the PTS of any frame still to come.
 * Sans-I/O: `next()` once per chunk, in output order.
 *
 * The rule. Let d be the reorder depth: the most frames that came before some frame in decode
 * order yet show after it. A frame that arrives now can have at most d frames seen so far above
 * it, so every frame still to come shows after the (d+1)-th largest PTS seen so far; that PTS is
 * also at most the current frame's own, which has at most d above it. So DTS = the (d+1)-th
 * largest PTS seen is always valid, and it increases with each frame (one more PTS seen, one
 * place further up). With a constant frame rate it is the presentation time of the frame d places
 * earlier in display order: the video's timestamps run d frame intervals behind its pictures,
 * as x264's own DTS do. Without reordering d = 0 and DTS = PTS.
 *
 * Learning d. Nothing says d in advance (the SPS may not), so d is learned as frames show it: the
 * most frames seen above any arriving frame. Learning it after the fact is too late for the frame
 * that reveals it, which would need a DTS below the one already given (I0 P3 B1: P3 was given
 * DTS 3 while d looked like 0; B1 needs one in (3, 1]). So each DTS also stays below any gap in
 * the presentation times that a frame reordered one place deeper than d could still fill: when
 * the (d+1)-th and (d+2)-th largest PTS are more than 1.5 frame intervals apart, DTS is the
 * (d+2)-th. A B-pyramid shows its depth one level at a time (P8 B4 B2 b1: each frame is one
 * place deeper than the one before), so each level is guarded before it appears; a frame two
 * places deeper at once is not guarded (see below).
 *
 * The first frames. The first frame gets DTS = PTS (a connection's first keyframe is its 0, and
 * FLV timestamps cannot be negative). Frames whose rule value is not above the previous DTS get
 * the previous DTS + 1 ms: after a keyframe K, a depth-d stream's next d frames are stamped
 * K+1 ms … K+d ms, below the next B-frame's PTS (at 30 fps, 33 ms later); the same happens to a
 * frame the gap guard holds down while d is still growing. Decoders only need DTS increasing and
 * not past PTS; presentation (PTS = DTS + composition time) is exact. Then the rule takes over.
 * A reconnect starts a new `DecodeTimes` seeded with the depth learned so far: its first keyframe
 * is again DTS = PTS, and the d frames after it are squeezed the same way.
 *
 * What it costs. No latency: each chunk's DTS is known when it arrives and nothing is held.
 * Without reordering DTS = PTS (composition time 0), except that in the first SETTLE_FRAMES a frame
 * right after a gap in the presentation times (frames dropped before the encoder) gets a DTS just
 * above the previous one, since the gap could have been a reordered frame still to come; once an
 * encoder has kept presentation order that long, a gap is just a gap. With reordering the video's
 * FLV timestamps run d frame intervals behind its presentation times; whoever interleaves audio
 * by timestamp (TagInterleaver) holds audio for that long.
 *
 * When it cannot. A frame that needs a DTS at or below the one already given (it shows a depth
 * more than one place deeper than learned, all at once, or a presentation time not above the
 * previous DTS) cannot go out: `next()` returns undefined for it and for every frame up to the
 * next keyframe, which references nothing before it. The depth it showed is learned, so from
 * that keyframe on the stream is valid again. The caller drops those frames and asks the
 * encoder for a keyframe.
 */
export class DecodeTimes {
  readonly #gapUs: number;
  /** The largest presentation times seen, largest first: `#top[j]` has j larger ones above it. */
  readonly #top = new Float64Array(MAX_REORDER_FRAMES + 2);
  #count = 0;
  #depth: number;
  #lastUs: number | undefined;
  #waitKey = false;
  #dropped = 0;
  /** Frames seen while the depth was 0. */
  #inOrder = 0;

  constructor(options: DecodeTimesOptions) {
    if (!(options.frameDurationUs > 0)) throw new RangeError(`frame duration ${options.frameDurationUs} µs is not positive`);
    const depth = options.reorderFrames ?? 0;
    if (!Number.isInteger(depth) || depth < 0 || depth > MAX_REORDER_FRAMES) {
      throw new RangeError(`reorder depth ${depth} outside 0..${MAX_REORDER_FRAMES}`);
    }
    this.#gapUs = options.frameDurationUs * GAP_FRAMES;
    this.#depth = depth;
  }

  /** The reorder depth learned so far, in frames (0: the encoder keeps presentation order). */
  get reorderFrames(): number {
    return this.#depth;
  }

  /** Frames `next()` answered undefined for. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * The decode time (µs, on the clock of `ptsUs`) for the next chunk in output order, or
   * undefined when it cannot have one: drop it and every following frame until `next()` accepts
   * a keyframe. Decode times increase by at least 1 ms and never pass their PTS, so after any
   * shift and rounding to milliseconds DTS still increases strictly and PTS − DTS is never
   * negative.
   */
  next(ptsUs: number, keyframe: boolean): number | undefined {
    const above = this.#insert(ptsUs);
    if (above > MAX_REORDER_FRAMES) return this.#drop();
    if (above > this.#depth) this.#depth = above;
    if (this.#depth === 0) this.#inOrder++;
    if (this.#waitKey && !keyframe) return this.#drop();
    let dts = ptsUs;
    if (this.#lastUs !== undefined) {
      const d = this.#depth;
      const top = this.#top;
      let rule = d < this.#count ? top[d]! : Number.NEGATIVE_INFINITY;
      const learning = d > 0 || this.#inOrder <= SETTLE_FRAMES;
      if (learning && d + 1 < this.#count && rule - top[d + 1]! > this.#gapUs) rule = top[d + 1]!;
      dts = Math.max(this.#lastUs + MIN_STEP_US, rule);
    }
    if (dts > ptsUs) return this.#drop();
    this.#waitKey = false;
    this.#lastUs = dts;
    return dts;
  }

  #drop(): undefined {
    this.#waitKey = true;
    this.#dropped++;
    return undefined;
  }

  /** Adds `pts` to the kept largest; returns how many seen are larger (more than kept: past the limit). */
  #insert(pts: number): number {
    const top = this.#top;
    let at = 0;
    while (at < this.#count && top[at]! > pts) at++;
    if (at === top.length) return MAX_REORDER_FRAMES + 1;
    const end = Math.min(this.#count, top.length - 1);
    top.copyWithin(at + 1, at, end);
    top[at] = pts;
    this.#count = end + 1;
    return at;
  }
}

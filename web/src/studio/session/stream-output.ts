import type { CbrFiller } from '../../lib/cbr-filler.js';
import type { StreamMetadata } from '../../lib/flv-muxer.js';
import type { BridgeLink } from '../bridge-link.js';
import type { H264Chunk } from '../h264-encoder.js';
import { StreamTimeline, type OutTag } from '../stream-timeline.js';
import { DEFAULT_VIDEO_FLOW_LIMITS, type VideoFlow } from '../video-flow.js';
import type { SessionStats } from './session-stats.js';

const WS_HIGH_WATER = DEFAULT_VIDEO_FLOW_LIMITS.highWater;

/**
 * One go-live, from Go live to End stream: the link to the bridge (outbox, resume) and the FLV
 * timeline that turns encoded chunks into tags for it. The link opens first, while the encoders do;
 * `begin` starts the timeline with the stream's headers. Encoding never waits for it: while the
 * link is backed up, whole frames are skipped (`VideoFlow`) and the CBR filler is left out.
 */
export class StreamOutput {
  readonly link: BridgeLink;
  readonly #frameUs: number;
  readonly #stats: SessionStats;
  #timeline: StreamTimeline | undefined;

  constructor(link: BridgeLink, frameUs: number, stats: SessionStats) {
    this.link = link;
    this.#frameUs = frameUs;
    this.#stats = stats;
  }

  /** The timeline starts: metadata, the audio config, and the video config when the encoder gave one already. */
  begin(meta: StreamMetadata, asc: Uint8Array, avcC: Uint8Array | undefined): void {
    const timeline = new StreamTimeline(this.#frameUs);
    this.#timeline = timeline;
    this.#send(timeline.headers(meta, asc));
    if (avcC !== undefined) this.#send(timeline.videoConfig(avcC));
  }

  get begun(): boolean {
    return this.#timeline !== undefined;
  }

  /** A new onMetaData (the bitrate changed), for destinations that connect from now on. */
  metadata(meta: StreamMetadata, asc: Uint8Array): void {
    const tag = this.#timeline?.headers(meta, asc)[0];
    if (tag !== undefined) this.#send([tag]);
  }

  /**
   * An encoded frame, unless the link is too far behind (then the timeline skips it, and a
   * keyframe is asked for). Throws when the muxer refuses its timestamp: a bug, not bad luck.
   */
  video(chunk: H264Chunk, flow: VideoFlow, filler: CbrFiller | undefined): void {
    const timeline = this.#timeline;
    if (timeline === undefined) return;
    if (chunk.avcC !== undefined) this.#send(timeline.videoConfig(chunk.avcC));
    const t = performance.now();
    const backlog = this.link.backlog();
    if (!flow.admit(chunk.key, backlog)) {
      this.#stats.dropped('backlog');
      this.#send(timeline.skipVideo(chunk.timestampUs, chunk.key));
      return;
    }
    // No padding while the link is backed up: it would only deepen the backlog.
    const pad = backlog > WS_HIGH_WATER / 2 ? 0 : (filler?.fillerFor(chunk.data.length) ?? 0);
    const before = this.#stats.framesSent;
    this.#send(timeline.video(chunk.data, chunk.key, chunk.timestampUs, pad));
    if (timeline.keyframeWanted) flow.restart();
    if (this.#stats.framesSent > before) this.#stats.muxSend.add(performance.now() - t);
  }

  /** An encoded audio frame; left out while the link is twice its high-water mark behind. */
  audio(data: Uint8Array, timestampUs: number): void {
    const timeline = this.#timeline;
    if (timeline === undefined) return;
    if (timeline.started && this.link.backlog() > 2 * WS_HIGH_WATER) return;
    this.#send(timeline.audio(data, timestampUs));
  }

  /** What the timeline still holds (frames waiting for reordering) goes out. */
  flush(): void {
    if (this.#timeline !== undefined) this.#send(this.#timeline.flush());
  }

  /** Ends the stream cleanly: what is held goes out, then the bridge unpublishes. */
  async stop(): Promise<void> {
    this.flush();
    this.#timeline = undefined;
    await this.link.stop();
  }

  /** Drops the link at once (it failed). */
  close(): void {
    this.#timeline = undefined;
    this.link.close();
  }

  #send(tags: readonly OutTag[]): void {
    for (const tag of tags) {
      this.link.send(tag.bytes, tag.cls, tag.ms, tag.header);
      this.#stats.sent(tag);
    }
  }
}

import { AacObjectType, buildAudioSpecificConfig } from '@onair/shared';
import { CbrFiller, fillerFits } from '../lib/cbr-filler.js';
import { MAX_TIMESTAMP_MS, type StreamMetadata } from '../lib/flv-muxer.js';
import { clockNow } from '../lib/latency-clock.js';
import { PcmConverter } from '../lib/pcm.js';
import { openAacEncoder, type AacEncoder } from './aac-encoder.js';
import { AudioClock } from './audio-clock.js';
import { BridgeLink } from './bridge-link.js';
import { Compositor } from './compositor/compositor.js';
import { readProgram } from './compositor/program.js';
import { openH264Encoder, type H264Chunk, type H264Encoder } from './h264-encoder.js';
import { Recorder } from './recorder/recorder.js';
import { WorkerSources } from './sources.js';
import { TagClass } from './outbox.js';
import { StreamTimeline, type OutTag } from './stream-timeline.js';
import { DEFAULT_VIDEO_FLOW_LIMITS, FramePlan, VideoFlow } from './video-flow.js';
import type { EncodeSettings, EncodeStats, FromWorker, LiveTarget, SourceHandles, VideoSource } from './worker-protocol.js';

const WS_HIGH_WATER = DEFAULT_VIDEO_FLOW_LIMITS.highWater;
/** The session ends cleanly a minute before FLV's 32-bit millisecond timestamps would wrap. */
const MAX_SESSION_MS = MAX_TIMESTAMP_MS - 60_000;
/** Output frames emitted at once to catch up after the worker was held up. */
const MAX_CATCH_UP = 2;
const FIRST_FRAME_WAIT_MS = 2000;
const STATS_INTERVAL_MS = 1000;
/**
 * How long End stream waits for the encoders to give back what they hold. Firefox's H.264 encoder
 * holds about 42 frames (1.4 s at 30 fps) and needs a moment to encode them.
 */
const FLUSH_TIMEOUT_MS = 4000;
const COST_SAMPLES = 600;
/** Video bitrates a change while live may ask for, bits per second. */
const MIN_VIDEO_BITRATE = 100_000;
const MAX_VIDEO_BITRATE = 50_000_000;

/** Median and 95th percentile of the first `count` (at most the buffer's length) samples. */
function medianP95(samples: Float64Array, count: number): [number, number] {
  const n = Math.min(count, samples.length);
  const sorted = Array.from(samples.subarray(0, n)).sort((a, b) => a - b);
  return [sorted[Math.floor(n / 2)] ?? 0, sorted[Math.floor(n * 0.95)] ?? 0];
}

/**
 * The encode pipeline in the worker: sources → output clock → H.264 and AAC encoders, feeding
 * the stream (its FLV timeline → the bridge link: outbox, resume) and the recording (fragmented
 * MP4 in OPFS), each attached and detached on its own; the pipeline runs while either is on.
 * Encoding never waits for the network: while the bridge is away the outbox keeps what is made,
 * within its bounds.
 */
export class EncodeSession {
  readonly #s: EncodeSettings;
  readonly #post: (msg: FromWorker) => void;
  readonly #pcm: PcmConverter;
  readonly #audioClock: AudioClock;
  readonly #flow: VideoFlow;
  /** onMetaData: its videodatarate follows a bitrate change. */
  readonly #meta: StreamMetadata;
  readonly #asc: Uint8Array;
  readonly #sources: WorkerSources;
  /** Encoders open, first frame in, clock running (or the reason it could not). */
  #ready: Promise<void> = Promise.reject(new Error('the pipeline is not open'));
  /** The stream: set while live (from `goLive` to `endStream`), each go-live a new timeline. */
  #link: BridgeLink | undefined;
  #timeline: StreamTimeline | undefined;
  #recorder: Recorder | undefined;
  #recordStarting = false;
  /** The video bitrate now (changes while live), and the newest avcC (a new stream or recording starts with it). */
  #bitrate: number;
  #avcC: Uint8Array | undefined;
  /** The next output frame is a keyframe (a recording starts, the bitrate changed). */
  #keyNow = false;
  #video: H264Encoder | undefined;
  #audio: AacEncoder | undefined;
  /** Set by stop(): no new frames, but what the encoders still hold goes out. */
  #closing = false;
  #stopped = false;
  #firstFrame: () => void = () => {};

  // Output clock: frame n is due at t0 + n / fps.
  #t0 = 0;
  #n = 0;
  #tick: ReturnType<typeof setTimeout> | undefined;
  #canvas: OffscreenCanvas | undefined;
  #ctx: OffscreenCanvasRenderingContext2D | undefined;
  readonly #compositor: Compositor<VideoFrame, VideoFrame>;
  #logo: VideoFrame | undefined;
  /** Time to compose a frame (drawing and the VideoFrame made of the canvas), ms. */
  #composeCosts = new Float64Array(COST_SAMPLES);
  #composeCount = 0;
  /** "Measure latency": every output frame carries the latency clock. */
  #latencyClock = false;
  #filler: CbrFiller | undefined;

  // Stats.
  #stats: EncodeStats;
  #sentBytes = 0;
  #sentFrames = 0;
  #costs = new Float64Array(COST_SAMPLES);
  #costCount = 0;
  #costSum = 0;
  #statsTimer: ReturnType<typeof setInterval> | undefined;
  /** Frames handed to the encoder, and chunks it gave back. */
  #submitted = 0;
  #chunks = 0;
  /** Presentation times of frames the studio asked to be keyframes, and of the keyframes that came out. */
  readonly #keysAsked = new Set<number>();
  #keyTimes: number[] = [];
  #unaskedKeys = 0;

  constructor(settings: EncodeSettings, post: (msg: FromWorker) => void) {
    this.#s = settings;
    this.#post = post;
    this.#pcm = new PcmConverter(settings.sampleRate, settings.channels);
    this.#audioClock = new AudioClock(settings.sampleRate);
    this.#flow = new VideoFlow(settings.fps * settings.keyframeIntervalS);
    this.#bitrate = settings.videoBitrate;
    this.#ready.catch(() => undefined);
    const s = settings;
    this.#meta = { width: s.width, height: s.height, framerate: s.fps, videoBitrate: s.videoBitrate, audioBitrate: s.audioBitrate, sampleRate: s.sampleRate, channels: s.channels };
    this.#asc = buildAudioSpecificConfig({ objectType: AacObjectType.Lc, sampleRate: s.sampleRate, channels: s.channels });
    this.#compositor = new Compositor(s.width, s.height, s.fps);
    this.#sources = new WorkerSources({
      frame: () => this.#firstFrame(),
      pcm: (planes, rate, captureUs) => this.#pushPcm(planes, rate, captureUs),
    });
    this.#stats = {
      fps: 0,
      bitrate: 0,
      encodeQueue: 0,
      framesDropped: 0,
      droppedLate: 0,
      droppedEncoderBusy: 0,
      droppedBacklog: 0,
      droppedByEncoder: 0,
      framesInEncoder: 0,
      reorders: false,
      keyframeIntervalMs: 0,
      encoderKeyframes: false,
      framesRepeated: 0,
      wsBufferedBytes: 0,
      framesSent: 0,
      framesEncoded: 0,
      audioFramesSent: 0,
      muxSendMedianMs: 0,
      muxSendP95Ms: 0,
      muxSendMeanMs: 0,
      composeMedianMs: 0,
      composeP95Ms: 0,
      framesComposed: 0,
      codec: '',
      audioEncoder: 'none',
      reconnects: 0,
      gaps: 0,
      gapFrames: 0,
      gapMs: 0,
      resendBufferBytes: 0,
      audioBlocksDropped: 0,
      targetBitrate: settings.videoBitrate,
    };
  }

  /** Opens the pipeline and goes live and/or records as asked; rejects when the encoders cannot open. */
  async start(sources: SourceHandles, live?: LiveTarget, record?: string): Promise<void> {
    this.#ready = this.#open(sources);
    if (live !== undefined) void this.goLive(live);
    if (record !== undefined) void this.record(record);
    await this.#ready;
  }

  async #open(sources: SourceHandles): Promise<void> {
    const gotFrame = new Promise<void>((resolve) => (this.#firstFrame = resolve));
    this.#sources.set(sources);
    const s = this.#s;
    const [video, audio] = await Promise.all([
      openH264Encoder({ width: s.width, height: s.height, fps: s.fps, bitrate: this.#bitrate, codecs: s.codecs, preferInOrder: s.preferInOrder }, (c) => this.#onVideo(c), (e) => this.fail(`video encoder: ${e.message}`)),
      openAacEncoder({ sampleRate: s.sampleRate, channels: s.channels, bitrate: s.audioBitrate }, (d, t) => this.#onAudio(d, t), (e) => this.fail(`audio encoder: ${e.message}`)),
    ]);
    if (this.#closing) {
      video.close();
      audio.close();
      throw new Error('stopped');
    }
    this.#video = video;
    this.#audio = audio;
    // A bitrate changed while the encoder was opening.
    if (this.#bitrate !== s.videoBitrate) video.setBitrate(this.#bitrate);
    this.#stats.codec = video.codec;
    this.#stats.reorders = video.reorders;
    this.#stats.audioEncoder = audio.kind;
    // Both tracks start at the first camera frame (or after a short wait, on black).
    await Promise.race([gotFrame, new Promise((r) => setTimeout(r, FIRST_FRAME_WAIT_MS))]);
    if (this.#closing) throw new Error('stopped');
    this.#t0 = performance.now();
    this.#statsTimer = setInterval(() => this.#postStats(), STATS_INTERVAL_MS);
    this.#onTick();
  }

  /**
   * Goes live: a link to the bridge and a new FLV timeline, which starts at a keyframe (asked
   * for at once when the pipeline already runs for a recording). The link opens while the
   * encoders do.
   */
  async goLive(target: LiveTarget): Promise<void> {
    if (this.#closing || this.#link !== undefined) return;
    this.#post({ type: 'state', state: 'starting' });
    const running = this.#t0 !== 0;
    const link: BridgeLink = new BridgeLink(target.wsUrl, target.destinations, {
      server: (message) => this.#post({ type: 'server', message }),
      link: (state) => this.#post({ type: 'link', link: state }),
      gap: (gap) => {
        this.#stats.gaps++;
        this.#stats.gapFrames += gap.frames;
        this.#stats.gapMs += gap.ms;
      },
      fail: (message) => this.#failStream(link, message),
    });
    this.#link = link;
    try {
      await Promise.all([this.#ready, link.open()]);
    } catch {
      // The encoders could not open: fail() said why and ends everything.
      if (this.#link === link) this.#link = undefined;
      link.close();
      return;
    }
    if (this.#closing || this.#link !== link) return;
    const timeline = new StreamTimeline(1e6 / this.#s.fps);
    this.#timeline = timeline;
    this.#sendAll(timeline.headers(this.#meta, this.#asc));
    if (this.#avcC !== undefined) this.#sendAll(timeline.videoConfig(this.#avcC));
    // A fresh pipeline starts on a keyframe anyway; a running one is asked for one.
    if (running) this.#flow.restart();
    this.#post({ type: 'state', state: 'live' });
  }

  /** Ends the stream; a recording carries on (else the whole pipeline stops, flushing the encoders into the stream). */
  async endStream(): Promise<void> {
    const link = this.#link;
    if (link === undefined || this.#closing) return;
    if (this.#recorder === undefined && !this.#recordStarting) return this.stop();
    const timeline = this.#timeline;
    if (timeline !== undefined) this.#sendAll(timeline.flush());
    this.#link = undefined;
    this.#timeline = undefined;
    await link.stop();
    this.#post({ type: 'state', state: 'stopped' });
  }

  /** The bridge link gave up: the stream ends, with the reason; a recording carries on. */
  #failStream(link: BridgeLink, message: string): void {
    if (link !== this.#link) return;
    if (this.#recorder === undefined && !this.#recordStarting) {
      this.fail(message);
      return;
    }
    this.#link = undefined;
    this.#timeline = undefined;
    link.close();
    this.#post({ type: 'state', state: 'error', message });
  }

  /** Starts recording to `name` in OPFS from the next keyframe, asked for at once. */
  async record(name: string): Promise<void> {
    if (this.#closing || this.#recorder !== undefined || this.#recordStarting) return;
    this.#recordStarting = true;
    this.#post({ type: 'recording', recording: { state: 'starting' } });
    let recorder: Recorder;
    try {
      await this.#ready;
      const s = this.#s;
      recorder = await Recorder.open(name, { width: s.width, height: s.height, fps: s.fps, sampleRate: s.sampleRate, channels: s.channels, asc: this.#asc }, this.#avcC, {
        fail: (message) => this.#failRecording(recorder, message),
      });
    } catch (err) {
      this.#recordStarting = false;
      if (this.#closing) return;
      this.#post({ type: 'recording', recording: { state: 'error', message: `cannot record: ${err instanceof Error ? err.message : String(err)}` } });
      if (this.#link === undefined) await this.stop();
      return;
    }
    this.#recordStarting = false;
    if (this.#closing) {
      await recorder.close(true);
      return;
    }
    this.#recorder = recorder;
    this.#keyNow = true;
    this.#post({ type: 'recording', recording: { state: 'recording', status: recorder.status() } });
  }

  /** Stops recording; the stream carries on (else the whole pipeline stops, flushing the encoders into the file). */
  async stopRecording(): Promise<void> {
    const recorder = this.#recorder;
    if (recorder === undefined || this.#closing) return;
    if (this.#link === undefined) return this.stop();
    this.#recorder = undefined;
    await this.#closeRecorder(recorder);
  }

  async #closeRecorder(recorder: Recorder): Promise<void> {
    try {
      await recorder.close();
      this.#post({ type: 'recording', recording: { state: 'stopped', status: recorder.status() } });
    } catch (err) {
      this.#post({ type: 'recording', recording: { state: 'error', message: `the recording did not close: ${err instanceof Error ? err.message : String(err)}`, status: recorder.status() } });
    }
  }

  /** The recording stopped by itself (storage full): the stream carries on. */
  #failRecording(recorder: Recorder, message: string): void {
    if (recorder !== this.#recorder) return;
    this.#recorder = undefined;
    this.#post({ type: 'recording', recording: { state: 'error', message, status: recorder.status() } });
    if (this.#link === undefined) this.stop().catch(() => undefined);
  }

  /**
   * A new video bitrate, from the next keyframe (asked for at once): the encoder is configured
   * again, the CBR filler follows, and onMetaData with the new videodatarate goes to the bridge
   * for destinations that connect from now on.
   */
  setBitrate(bps: number): void {
    if (this.#closing || !Number.isFinite(bps) || bps < MIN_VIDEO_BITRATE || bps > MAX_VIDEO_BITRATE || bps === this.#bitrate) return;
    this.#bitrate = bps;
    this.#meta.videoBitrate = bps;
    this.#stats.targetBitrate = bps;
    this.#video?.setBitrate(bps);
    if (this.#filler !== undefined) this.#filler = new CbrFiller(bps, this.#s.fps);
    this.#keyNow = true;
    const meta = this.#timeline?.headers(this.#meta, this.#asc)[0];
    if (meta !== undefined) this.#sendAll([meta]);
  }

  setSources(sources: SourceHandles): void {
    this.#audioClock.resync();
    this.#sources.set(sources);
  }

  offerFrame(frame: VideoFrame, kind?: VideoSource): void {
    this.#sources.offerFrame(frame, kind);
  }

  /** A program from the page, checked field by field; its scene is on air from the next output frame. */
  setProgram(program: unknown): void {
    const p = readProgram(program, this.#compositor.program);
    this.#compositor.setProgram(p);
    this.#post({ type: 'program', scene: p.scene, frame: this.#n });
  }

  /** The logo's image (taken over and closed here), or none. */
  setLogo(image: ImageBitmap | null): void {
    this.#logo?.close();
    this.#logo = undefined;
    if (image !== null) {
      if (!this.#closing && image.width > 0 && image.height > 0) this.#logo = new VideoFrame(image, { timestamp: 0 });
      image.close();
    }
    this.#compositor.setLogo(this.#logo);
  }

  setLatencyClock(on: boolean): void {
    this.#latencyClock = on;
  }

  #send(tag: OutTag): void {
    this.#link?.send(tag.bytes, tag.cls, tag.ms, tag.header);
  }

  /** A captured block, placed on the session clock by its capture time (`AudioClock`). */
  #pushPcm(planes: Float32Array[], rate: number, captureUs: number): void {
    if (this.#audio === undefined || this.#t0 === 0 || this.#closing) return;
    const place = this.#audioClock.place(captureUs, (performance.now() - this.#t0) * 1000);
    const out = this.#pcm.convert(planes, rate, place.trim);
    this.#writeSilence(place.silence);
    const frames = out[0]?.length ?? 0;
    if (frames <= place.skip) return;
    this.#writeAudio(place.skip > 0 ? out.map((p) => p.subarray(place.skip)) : out);
  }

  /** Audio to the encoder at the next place on its timeline; a block it turns away leaves a gap the clock fills later. */
  #writeAudio(planes: Float32Array[]): void {
    const frames = planes[0]?.length ?? 0;
    if (this.#audio?.encode(planes, (this.#audioClock.written / this.#s.sampleRate) * 1e6) === true) this.#audioClock.wrote(frames);
    else this.#stats.audioBlocksDropped++;
  }

  #writeSilence(samples: number): void {
    for (let left = samples; left > 0; ) {
      const n = Math.min(left, 4096);
      this.#writeAudio(Array.from({ length: this.#s.channels }, () => new Float32Array(n)));
      left -= n;
    }
  }

  /** Silence up to the clock when there is no microphone, or it stalled. */
  #fillSilence(nowUs: number): void {
    if (this.#audio === undefined) return;
    this.#writeSilence(this.#audioClock.fill(nowUs, this.#sources.hasAudio));
  }

  #onTick(): void {
    if (this.#closing) return;
    const interval = 1000 / this.#s.fps;
    const now = performance.now();
    if (now - this.#t0 >= MAX_SESSION_MS) {
      this.fail("the stream reached FLV's 49.7-day timestamp limit and was ended; go live again to continue");
      return;
    }
    const due = Math.floor((now - this.#t0) / interval);
    if (due - this.#n > MAX_CATCH_UP) {
      this.#stats.framesDropped += due - this.#n - MAX_CATCH_UP;
      this.#stats.droppedLate += due - this.#n - MAX_CATCH_UP;
      this.#n = due - MAX_CATCH_UP;
    }
    while (this.#n <= due) {
      this.#emit(this.#n);
      this.#n++;
    }
    this.#fillSilence((now - this.#t0) * 1000);
    this.#tick = setTimeout(() => this.#onTick(), Math.max(0, this.#t0 + this.#n * interval - performance.now()));
  }

  #emit(n: number): void {
    const video = this.#video;
    if (video === undefined) return;
    let plan = this.#flow.plan(n, video.queue, this.#link?.backlog() ?? 0);
    if (plan === FramePlan.Delta && this.#keyNow) plan = FramePlan.Key;
    if (plan === FramePlan.Drop) {
      this.#stats.framesDropped++;
      this.#stats.droppedEncoderBusy++;
      return;
    }
    const { frames, fresh } = this.#sources.take();
    if (!fresh && (frames.camera ?? frames.screen) !== undefined) this.#stats.framesRepeated++;
    const frame = this.#frameFor(frames, fresh, Math.round((n * 1e6) / this.#s.fps));
    if (frame === undefined) return;
    const key = plan === FramePlan.Key;
    if (key) this.#keyNow = false;
    this.#flow.encoded(n, key);
    this.#submitted++;
    if (key) {
      this.#keysAsked.add(frame.timestamp);
      if (this.#keysAsked.size > 64) this.#keysAsked.delete(this.#keysAsked.values().next().value!);
    }
    video.encode(frame, key);
    frame.close();
  }

  /**
   * The program composed from the newest frame of each source (compositor/), with the latency clock
   * when it is on, stamped on the output clock. A lone source frame of the output size with nothing
   * over it is re-stamped without a copy.
   */
  #frameFor(sources: Partial<Record<VideoSource, VideoFrame>>, fresh: boolean, timestamp: number): VideoFrame | undefined {
    const { width, height, fps } = this.#s;
    const duration = Math.round(1e6 / fps);
    const as = this.#compositor.passThrough(sources, this.#latencyClock);
    if (as !== undefined) return new VideoFrame(as, { timestamp, duration });
    if (this.#canvas === undefined) {
      this.#canvas = new OffscreenCanvas(width, height);
      this.#ctx = this.#canvas.getContext('2d', { alpha: false }) ?? undefined;
    }
    const ctx = this.#ctx;
    if (ctx === undefined) return undefined;
    const t = performance.now();
    const drew = this.#compositor.draw(ctx, sources, this.#latencyClock ? clockNow() : undefined, fresh);
    const frame = new VideoFrame(this.#canvas, { timestamp, duration });
    if (drew) this.#composeCosts[this.#composeCount++ % COST_SAMPLES] = performance.now() - t;
    return frame;
  }

  #onVideo(chunk: H264Chunk): void {
    if (this.#stopped) return;
    this.#chunks++;
    if (chunk.key) this.#keyframeOut(chunk.timestampUs);
    if (chunk.avcC !== undefined) {
      this.#avcC = chunk.avcC;
      // Filler NAL units are written with 4-byte lengths.
      this.#filler = this.#video?.constantBitrate === true && fillerFits(chunk.avcC) ? (this.#filler ?? new CbrFiller(this.#bitrate, this.#s.fps)) : undefined;
    }
    // The recording takes every chunk as it is, without the stream's filler and drops.
    this.#recorder?.video(chunk.data, chunk.key, chunk.timestampUs, chunk.avcC);
    const link = this.#link;
    const timeline = this.#timeline;
    if (link === undefined || timeline === undefined) return;
    try {
      if (chunk.avcC !== undefined) this.#sendAll(timeline.videoConfig(chunk.avcC));
      const t = performance.now();
      const backlog = link.backlog();
      if (!this.#flow.admit(chunk.key, backlog)) {
        this.#stats.framesDropped++;
        this.#stats.droppedBacklog++;
        this.#sendAll(timeline.skipVideo(chunk.timestampUs, chunk.key));
        return;
      }
      // No padding while the link is backed up: it would only deepen the backlog.
      const filler = backlog > WS_HIGH_WATER / 2 ? 0 : (this.#filler?.fillerFor(chunk.data.length) ?? 0);
      const before = this.#stats.framesEncoded;
      this.#sendAll(timeline.video(chunk.data, chunk.key, chunk.timestampUs, filler));
      if (timeline.keyframeWanted) this.#flow.restart();
      if (this.#stats.framesEncoded > before) {
        const cost = performance.now() - t;
        this.#costs[this.#costCount++ % COST_SAMPLES] = cost;
        this.#costSum += cost;
      }
    } catch (err) {
      // The muxer refuses timestamps that would make an invalid stream: a bug, not bad luck.
      this.fail(`video: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  #onAudio(data: Uint8Array, timestampUs: number): void {
    if (this.#stopped) return;
    this.#recorder?.audio(data, timestampUs);
    const link = this.#link;
    const timeline = this.#timeline;
    if (link === undefined || timeline === undefined) return;
    if (timeline.started && link.backlog() > 2 * WS_HIGH_WATER) return;
    this.#sendAll(timeline.audio(data, timestampUs));
  }

  /** Sends tags in order, counting what goes out (a video tag may leave on a later call, with reordering). */
  #sendAll(tags: readonly OutTag[]): void {
    for (const tag of tags) {
      this.#send(tag);
      this.#sentBytes += tag.bytes.length;
      if (tag.cls === TagClass.Keyframe || tag.cls === TagClass.Frame) {
        this.#sentFrames++;
        this.#stats.framesSent++;
        this.#stats.framesEncoded++;
      } else if (tag.cls === TagClass.Audio) {
        this.#stats.audioFramesSent++;
      }
    }
  }

  /** Notes a keyframe the encoder produced: the real interval, and whether it was asked for. */
  #keyframeOut(ptsUs: number): void {
    if (!this.#keysAsked.delete(ptsUs)) this.#unaskedKeys++;
    this.#keyTimes.push(ptsUs);
    if (this.#keyTimes.length > 9) this.#keyTimes.shift();
    const gaps = this.#keyTimes.slice(1).map((t, i) => t - this.#keyTimes[i]!).sort((a, b) => a - b);
    if (gaps.length > 0) this.#stats.keyframeIntervalMs = Math.round(gaps[Math.floor(gaps.length / 2)]! / 1000);
    // More than the first one or two (a trial, a start) means the encoder decides for itself.
    this.#stats.encoderKeyframes = this.#unaskedKeys > 2;
  }

  #postStats(): void {
    const st = this.#stats;
    st.fps = this.#sentFrames * (1000 / STATS_INTERVAL_MS);
    st.bitrate = this.#sentBytes * 8 * (1000 / STATS_INTERVAL_MS);
    this.#sentFrames = 0;
    this.#sentBytes = 0;
    st.encodeQueue = this.#video?.queue ?? 0;
    // Until the encoder is flushed, what it holds may still come out: only then is it dropped.
    const inside = Math.max(0, this.#submitted - this.#chunks - st.encodeQueue);
    if (this.#stopped) st.droppedByEncoder = inside;
    else st.framesInEncoder = inside;
    st.wsBufferedBytes = this.#link?.bufferedAmount ?? 0;
    st.reconnects = this.#link?.reconnects ?? 0;
    st.resendBufferBytes = this.#link?.outbox.bytes ?? 0;
    if (this.#costCount > 0) {
      [st.muxSendMedianMs, st.muxSendP95Ms] = medianP95(this.#costs, this.#costCount);
      st.muxSendMeanMs = this.#costSum / this.#costCount;
    }
    if (this.#composeCount > 0) [st.composeMedianMs, st.composeP95Ms] = medianP95(this.#composeCosts, this.#composeCount);
    st.framesComposed = this.#composeCount;
    this.#post({ type: 'stats', stats: { ...st } });
    if (this.#recorder !== undefined) this.#post({ type: 'recording', recording: { state: 'recording', status: this.#recorder.status() } });
    const link = this.#link;
    if (link !== undefined && !link.up) this.#post({ type: 'link', link: link.state() });
  }

  fail(message: string): void {
    if (this.#closing) return;
    this.#post({ type: 'state', state: 'error', message });
    this.stop().catch(() => undefined);
  }

  async stop(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearTimeout(this.#tick);
    clearInterval(this.#statsTimer);
    this.#sources.close();
    this.setLogo(null);
    // Both encoders give back what they hold (audio: the last partial frame and its delay line).
    const flushed = [this.#video?.flush(), this.#audio?.flush()].map((p) => p?.catch(() => undefined));
    await Promise.race([Promise.all(flushed), new Promise((r) => setTimeout(r, FLUSH_TIMEOUT_MS))]);
    this.#stopped = true;
    this.#video?.close();
    this.#audio?.close();
    const recorder = this.#recorder;
    this.#recorder = undefined;
    if (this.#timeline !== undefined) this.#sendAll(this.#timeline.flush());
    this.#postStats();
    if (recorder !== undefined) await this.#closeRecorder(recorder);
    await this.#link?.stop();
    this.#post({ type: 'state', state: 'stopped' });
    this.#post({ type: 'closed' });
  }
}

import { AacObjectType, buildAudioSpecificConfig } from '@onair/shared';
import { CbrFiller, fillerFits } from '../../lib/cbr-filler.js';
import { MAX_TIMESTAMP_MS, type StreamMetadata } from '../../lib/flv-muxer.js';
import { openAacEncoder, type AacEncoder } from '../aac-encoder.js';
import { BridgeLink } from '../bridge-link.js';
import { readProgram } from '../compositor/program.js';
import { openH264Encoder, type H264Chunk, type H264Encoder } from '../h264-encoder.js';
import { Recorder } from '../recorder/recorder.js';
import { WorkerSources } from '../sources.js';
import { FramePlan, VideoFlow } from '../video-flow.js';
import type { EncodeSettings, FromWorker, LiveTarget, SourceHandles, VideoSource } from '../worker-protocol.js';
import { AudioPath } from './audio-path.js';
import { BitrateController, SAMPLE_MS } from './bitrate-controller.js';
import { ProgramFrames } from './program-frames.js';
import { SessionStats } from './session-stats.js';
import { StreamOutput } from './stream-output.js';

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
/** Output frames the page's preview gets a second. */
const PREVIEW_FPS = 15;
/** Video bitrates a change while live may ask for, bits per second. */
const MIN_VIDEO_BITRATE = 100_000;
const MAX_VIDEO_BITRATE = 50_000_000;

/**
 * The encode pipeline in the worker, put together from its parts: the sources (`WorkerSources`),
 * the output clock here, the program's frames (`ProgramFrames`, the compositor), the H.264 and AAC
 * encoders (audio through `AudioPath`), and two outputs each attached and detached on its own: the
 * stream (`StreamOutput`: FLV timeline → bridge link, outbox, resume) and the recording
 * (`Recorder`: fragmented MP4 in OPFS). The pipeline runs while either output is on; every part
 * counts in `SessionStats`. Encoding never waits for the network.
 */
export class EncodeSession {
  readonly #s: EncodeSettings;
  readonly #post: (msg: FromWorker) => void;
  readonly #flow: VideoFlow;
  /** onMetaData: its videodatarate follows a bitrate change. */
  readonly #meta: StreamMetadata;
  readonly #asc: Uint8Array;
  readonly #sources: WorkerSources;
  readonly #program: ProgramFrames;
  readonly #audioPath: AudioPath;
  readonly #stats: SessionStats;
  /** Encoders open, first frame in, clock running (or the reason it could not). */
  #ready: Promise<void> = Promise.reject(new Error('the pipeline is not open'));
  /** The stream: set while live (from `goLive` to `endStream`), each go-live a new timeline. */
  #stream: StreamOutput | undefined;
  #recorder: Recorder | undefined;
  #recordStarting = false;
  /** The video bitrate now (changes while live), and the newest avcC (a new stream or recording starts with it). */
  #bitrate: number;
  /** The streamer's choice: the bitrate controller's ceiling, and the rate whenever it does not adapt. */
  #chosen: number;
  #adaptive: boolean;
  /** Adapts the bitrate to the uplink while live (one per go-live, when adaptive). */
  #abr: BitrateController | undefined;
  /** At the bitrate floor and still congested: odd output frames are not encoded. */
  #halfRate = false;
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
  #statsTimer: ReturnType<typeof setInterval> | undefined;
  #abrTimer: ReturnType<typeof setInterval> | undefined;
  /** "Measure latency": every output frame carries the latency clock. */
  #latencyClock = false;
  /** Output frames go to the page's preview. */
  #previewing = true;
  #filler: CbrFiller | undefined;

  constructor(settings: EncodeSettings, post: (msg: FromWorker) => void) {
    const s = settings;
    this.#s = s;
    this.#post = post;
    this.#flow = new VideoFlow(s.fps * s.keyframeIntervalS);
    this.#bitrate = s.videoBitrate;
    this.#chosen = s.videoBitrate;
    this.#adaptive = s.adaptBitrate;
    this.#ready.catch(() => undefined);
    this.#meta = { width: s.width, height: s.height, framerate: s.fps, videoBitrate: s.videoBitrate, audioBitrate: s.audioBitrate, sampleRate: s.sampleRate, channels: s.channels };
    this.#asc = buildAudioSpecificConfig({ objectType: AacObjectType.Lc, sampleRate: s.sampleRate, channels: s.channels });
    this.#stats = new SessionStats(s.videoBitrate);
    this.#program = new ProgramFrames(s.width, s.height, s.fps);
    this.#audioPath = new AudioPath(s.sampleRate, s.channels, () => this.#stats.audioBlockDropped());
    this.#sources = new WorkerSources({
      frame: () => this.#firstFrame(),
      pcm: (planes, rate, captureUs) => this.#pushPcm(planes, rate, captureUs),
    });
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
    this.#audioPath.encoder = audio;
    // A bitrate changed while the encoder was opening.
    if (this.#bitrate !== s.videoBitrate) video.setBitrate(this.#bitrate);
    this.#stats.encoders(video.codec, video.reorders, audio.kind);
    // Both tracks start at the first camera frame (or after a short wait, on black).
    await Promise.race([gotFrame, new Promise((r) => setTimeout(r, FIRST_FRAME_WAIT_MS))]);
    if (this.#closing) throw new Error('stopped');
    this.#t0 = performance.now();
    this.#statsTimer = setInterval(() => this.#postStats(), STATS_INTERVAL_MS);
    this.#abrTimer = setInterval(() => this.#adapt(), SAMPLE_MS);
    this.#onTick();
  }

  /**
   * Goes live: a link to the bridge and a new FLV timeline, which starts at a keyframe (asked
   * for at once when the pipeline already runs for a recording). The link opens while the
   * encoders do.
   */
  async goLive(target: LiveTarget): Promise<void> {
    if (this.#closing || this.#stream !== undefined) return;
    this.#post({ type: 'state', state: 'starting' });
    const running = this.#t0 !== 0;
    const link: BridgeLink = new BridgeLink(target.wsUrl, target.destinations, {
      server: (message) => this.#post({ type: 'server', message }),
      link: (state) => this.#post({ type: 'link', link: state }),
      gap: (gap) => this.#stats.gap(gap.frames, gap.ms),
      fail: (message) => this.#failStream(stream, message),
    });
    const stream = new StreamOutput(link, 1e6 / this.#s.fps, this.#stats);
    this.#stream = stream;
    try {
      await Promise.all([this.#ready, link.open()]);
    } catch {
      // The encoders could not open: fail() said why and ends everything.
      if (this.#stream === stream) this.#stream = undefined;
      stream.close();
      return;
    }
    if (this.#closing || this.#stream !== stream) return;
    stream.begin(this.#meta, this.#asc, this.#avcC);
    if (this.#adaptive) this.#startAdapting();
    // A fresh pipeline starts on a keyframe anyway; a running one is asked for one.
    if (running) this.#flow.restart();
    this.#post({ type: 'state', state: 'live' });
  }

  /** Ends the stream; a recording carries on (else the whole pipeline stops, flushing the encoders into the stream). */
  async endStream(): Promise<void> {
    const stream = this.#stream;
    if (stream === undefined || this.#closing) return;
    if (this.#recorder === undefined && !this.#recordStarting) return this.stop();
    this.#stream = undefined;
    this.#endAdapting();
    await stream.stop();
    this.#post({ type: 'state', state: 'stopped' });
  }

  /** The bridge link gave up: the stream ends, with the reason; a recording carries on. */
  #failStream(stream: StreamOutput, message: string): void {
    if (stream !== this.#stream) return;
    if (this.#recorder === undefined && !this.#recordStarting) {
      this.fail(message);
      return;
    }
    this.#stream = undefined;
    this.#endAdapting();
    stream.close();
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
      if (this.#stream === undefined) await this.stop();
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
    if (this.#stream === undefined) return this.stop();
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
    if (this.#stream === undefined) this.stop().catch(() => undefined);
  }

  /**
   * The streamer chose a video bitrate: the encoder goes to it from the next keyframe, it is the
   * adaptation's new ceiling, and onMetaData with the new videodatarate goes to the bridge for
   * destinations that connect from now on. (Adapted rates are not announced: players and
   * platforms read videodatarate as the stream's nominal rate.)
   */
  setBitrate(bps: number): void {
    if (this.#closing || !Number.isFinite(bps) || bps < MIN_VIDEO_BITRATE || bps > MAX_VIDEO_BITRATE || bps === this.#chosen) return;
    this.#chosen = bps;
    this.#abr?.setCeiling(bps);
    this.#halfRate = false;
    if (this.#abr !== undefined) this.#stats.adapted(this.#abr.decision);
    this.#applyBitrate(bps);
    this.#meta.videoBitrate = bps;
    this.#stream?.metadata(this.#meta, this.#asc);
  }

  /** "Adapt to the network" on or off; off goes back to the streamer's choice at once. */
  setAdaptive(on: boolean): void {
    if (this.#closing || on === this.#adaptive) return;
    this.#adaptive = on;
    if (!on) this.#endAdapting();
    else if (this.#stream?.begun === true) this.#startAdapting();
  }

  /** The controller's turn: what the link measured goes in, a new rate (at the next keyframe) may come out. */
  #adapt(): void {
    const abr = this.#abr;
    const link = this.#stream?.link;
    // A link that is down measures nothing; the resend after it is not congestion either.
    if (abr === undefined || link === undefined || !link.up) return;
    const decision = abr.update({ atMs: performance.now(), ackedBytes: link.outbox.acknowledgedBytes, backlogBytes: link.backlog() });
    this.#halfRate = decision.halfFrameRate;
    this.#stats.adapted(decision);
    this.#applyBitrate(decision.bps);
  }

  /** Adapting starts from the streamer's choice, which stays its ceiling. */
  #startAdapting(): void {
    this.#abr = new BitrateController({ ceiling: this.#chosen, audioBps: this.#s.audioBitrate });
  }

  /** No more adapting (off air, or turned off): the streamer's choice again, at full frame rate. */
  #endAdapting(): void {
    if (this.#abr === undefined) return;
    this.#abr = undefined;
    this.#halfRate = false;
    this.#stats.adapted({ bps: this.#chosen, reason: 'chosen', halfFrameRate: false });
    this.#applyBitrate(this.#chosen);
  }

  /** The encoder runs at `bps` from the next keyframe, asked for at once; the CBR filler follows. */
  #applyBitrate(bps: number): void {
    if (bps === this.#bitrate) return;
    this.#bitrate = bps;
    this.#stats.targetBitrate(bps);
    this.#video?.setBitrate(bps);
    if (this.#filler !== undefined) this.#filler = new CbrFiller(bps, this.#s.fps);
    this.#keyNow = true;
  }

  setSources(sources: SourceHandles): void {
    this.#audioPath.resync();
    this.#sources.set(sources);
  }

  offerFrame(frame: VideoFrame, kind?: VideoSource): void {
    this.#sources.offerFrame(frame, kind);
  }

  /** A program from the page, checked field by field; its scene is on air from the next output frame. */
  setProgram(program: unknown): void {
    const p = readProgram(program, this.#program.program);
    this.#program.setProgram(p);
    this.#post({ type: 'program', scene: p.scene, frame: this.#n });
  }

  /** The logo's image (taken over and closed here), or none. */
  setLogo(image: ImageBitmap | null): void {
    this.#program.setLogo(image);
  }

  setLatencyClock(on: boolean): void {
    this.#latencyClock = on;
  }

  /** A captured block, placed on the session clock by its capture time. */
  #pushPcm(planes: Float32Array[], rate: number, captureUs: number): void {
    if (this.#t0 === 0 || this.#closing) return;
    this.#audioPath.push(planes, rate, captureUs, (performance.now() - this.#t0) * 1000);
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
      this.#stats.dropped('late', due - this.#n - MAX_CATCH_UP);
      this.#n = due - MAX_CATCH_UP;
    }
    while (this.#n <= due) {
      this.#emit(this.#n);
      this.#n++;
    }
    // Silence up to the clock when there is no microphone, or it stalled.
    this.#audioPath.fill((now - this.#t0) * 1000, this.#sources.hasAudio);
    this.#tick = setTimeout(() => this.#onTick(), Math.max(0, this.#t0 + this.#n * interval - performance.now()));
  }

  #emit(n: number): void {
    const video = this.#video;
    if (video === undefined) return;
    // Half the frame rate: the skipped frames keep their place on the output clock.
    if (this.#halfRate && n % 2 === 1) return;
    let plan = this.#flow.plan(n, video.queue, this.#stream?.link.backlog() ?? 0);
    if (plan === FramePlan.Delta && this.#keyNow) plan = FramePlan.Key;
    if (plan === FramePlan.Drop) {
      this.#stats.dropped('encoderBusy');
      return;
    }
    const { frames, fresh } = this.#sources.take();
    if (!fresh && (frames.camera ?? frames.screen) !== undefined) this.#stats.repeated();
    const frame = this.#program.frame(frames, fresh, Math.round((n * 1e6) / this.#s.fps), this.#latencyClock);
    if (frame === undefined) return;
    const key = plan === FramePlan.Key;
    if (key) this.#keyNow = false;
    this.#flow.encoded(n, key);
    this.#stats.submitted(frame.timestamp, key);
    video.encode(frame, key);
    if (n % Math.max(1, Math.round(this.#s.fps / PREVIEW_FPS)) === 0) this.#preview(frame);
    frame.close();
  }

  /**
   * The preview shows the frames as encoded; a clone shares the picture, it copies nothing. Where
   * a frame cannot be posted to the page, the page composes its preview itself.
   */
  #preview(frame: VideoFrame): void {
    if (!this.#previewing) return;
    const clone = frame.clone();
    try {
      this.#post({ type: 'preview', frame: clone });
    } catch {
      clone.close();
      this.#previewing = false;
    }
  }

  #onVideo(chunk: H264Chunk): void {
    if (this.#stopped) return;
    this.#stats.chunk(chunk.key, chunk.timestampUs);
    if (chunk.avcC !== undefined) {
      this.#avcC = chunk.avcC;
      // Filler NAL units are written with 4-byte lengths.
      this.#filler = this.#video?.constantBitrate === true && fillerFits(chunk.avcC) ? (this.#filler ?? new CbrFiller(this.#bitrate, this.#s.fps)) : undefined;
    }
    // The recording takes every chunk as it is, without the stream's filler and drops.
    this.#recorder?.video(chunk.data, chunk.key, chunk.timestampUs, chunk.avcC);
    try {
      this.#stream?.video(chunk, this.#flow, this.#filler);
    } catch (err) {
      this.fail(`video: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  #onAudio(data: Uint8Array, timestampUs: number): void {
    if (this.#stopped) return;
    this.#recorder?.audio(data, timestampUs);
    this.#stream?.audio(data, timestampUs);
  }

  #postStats(): void {
    const link = this.#stream?.link;
    const stats = this.#stats.snapshot(STATS_INTERVAL_MS, {
      encodeQueue: this.#video?.queue ?? 0,
      stopped: this.#stopped,
      wsBufferedBytes: link?.bufferedAmount ?? 0,
      reconnects: link?.reconnects ?? 0,
      resendBufferBytes: link?.outbox.bytes ?? 0,
      compose: this.#program.costs,
    });
    this.#post({ type: 'stats', stats });
    if (this.#recorder !== undefined) this.#post({ type: 'recording', recording: { state: 'recording', status: this.#recorder.status() } });
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
    clearInterval(this.#abrTimer);
    this.#sources.close();
    this.#program.close();
    // Both encoders give back what they hold (audio: the last partial frame and its delay line).
    const flushed = [this.#video?.flush(), this.#audio?.flush()].map((p) => p?.catch(() => undefined));
    await Promise.race([Promise.all(flushed), new Promise((r) => setTimeout(r, FLUSH_TIMEOUT_MS))]);
    this.#stopped = true;
    this.#video?.close();
    this.#audio?.close();
    const recorder = this.#recorder;
    this.#recorder = undefined;
    this.#stream?.flush();
    this.#postStats();
    if (recorder !== undefined) await this.#closeRecorder(recorder);
    await this.#stream?.stop();
    this.#post({ type: 'state', state: 'stopped' });
    this.#post({ type: 'closed' });
  }
}

/// <reference lib="webworker" />
import { AacObjectType, FINAL_CLOSE_CODES, backoffMs, buildAudioSpecificConfig, parseStudioServerMessage } from '@onair/shared';
import { CbrFiller, fillerFits } from '../lib/cbr-filler.js';
import { MAX_TIMESTAMP_MS, type StreamMetadata } from '../lib/flv-muxer.js';
import { clockNow } from '../lib/latency-clock.js';
import { PcmConverter } from '../lib/pcm.js';
import { openAacEncoder, type AacEncoder } from './aac-encoder.js';
import { AudioClock } from './audio-clock.js';
import { composeFrame } from './compose.js';
import { ConnectionTimeline } from './connection-timeline.js';
import { openH264Encoder, type H264Chunk, type H264Encoder } from './h264-encoder.js';
import { BRIDGE_RECONNECT } from './reconnect.js';
import { DEFAULT_VIDEO_FLOW_LIMITS, FramePlan, VideoFlow } from './video-flow.js';
import type { BridgeLink, EncodeSettings, EncodeStats, FromWorker, PcmBlock, SourceHandles, ToWorker } from './worker-protocol.js';

declare const self: DedicatedWorkerGlobalScope;

const WS_HIGH_WATER = DEFAULT_VIDEO_FLOW_LIMITS.highWater;
/** The session ends cleanly a minute before FLV's 32-bit millisecond timestamps would wrap. */
const MAX_SESSION_MS = MAX_TIMESTAMP_MS - 60_000;
/** Output frames emitted at once to catch up after the worker was held up. */
const MAX_CATCH_UP = 2;
const FIRST_FRAME_WAIT_MS = 2000;
const STATS_INTERVAL_MS = 1000;
const COST_SAMPLES = 600;
const BRIDGE_UNREACHABLE = 'cannot connect to the onair bridge';

function post(msg: FromWorker): void {
  self.postMessage(msg);
}

class Session {
  readonly #s: EncodeSettings;
  readonly #pcm: PcmConverter;
  readonly #audioClock: AudioClock;
  readonly #flow: VideoFlow;
  readonly #meta: StreamMetadata;
  readonly #asc: Uint8Array;
  #wsUrl = '';
  #destinations: { id: string; url: string }[] = [];
  /** The open connection to the bridge and what it has been sent; undefined while reconnecting. */
  #ws: WebSocket | undefined;
  #timeline: ConnectionTimeline | undefined;
  /** A connection attempt in flight. */
  #dialing: WebSocket | undefined;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #retryAt = 0;
  #attempt = 0;
  #link: BridgeLink = { state: 'connecting' };
  /** The latest avcC from the encoder, sent again to every new connection. */
  #avcC: Uint8Array | undefined;
  #video: H264Encoder | undefined;
  #audio: AacEncoder | undefined;
  /** Set by stop(): no new frames, but what the encoders still hold goes out. */
  #closing = false;
  #stopped = false;

  // Sources.
  #latest: VideoFrame | undefined;
  #latestFresh = false;
  #videoReader: ReadableStreamDefaultReader<VideoFrame> | undefined;
  #audioReader: ReadableStreamDefaultReader<AudioData> | undefined;
  #audioPort: MessagePort | undefined;
  #firstFrame: () => void = () => {};

  // Output clock: frame n is due at t0 + n / fps.
  #t0 = 0;
  #n = 0;
  #tick: ReturnType<typeof setTimeout> | undefined;
  #canvas: OffscreenCanvas | undefined;
  #ctx: OffscreenCanvasRenderingContext2D | undefined;
  /** "Measure latency": every output frame carries the latency clock. */
  #latencyClock = false;
  /** The last video chunk's timestamp: the encoder must not reorder (FLV gets pts = dts). */
  #lastVideoUs = -1;

  // Transport.
  #filler: CbrFiller | undefined;

  // Stats.
  #stats: EncodeStats;
  #sentBytes = 0;
  #sentFrames = 0;
  #costs = new Float64Array(COST_SAMPLES);
  #costCount = 0;
  #costSum = 0;
  #statsTimer: ReturnType<typeof setInterval> | undefined;

  constructor(settings: EncodeSettings) {
    this.#s = settings;
    this.#pcm = new PcmConverter(settings.sampleRate, settings.channels);
    this.#audioClock = new AudioClock(settings.sampleRate);
    this.#flow = new VideoFlow(settings.fps * settings.keyframeIntervalS);
    const s = settings;
    this.#meta = { width: s.width, height: s.height, framerate: s.fps, videoBitrate: s.videoBitrate, audioBitrate: s.audioBitrate, sampleRate: s.sampleRate, channels: s.channels };
    this.#asc = buildAudioSpecificConfig({ objectType: AacObjectType.Lc, sampleRate: s.sampleRate, channels: s.channels });
    this.#stats = {
      fps: 0,
      bitrate: 0,
      encodeQueue: 0,
      framesDropped: 0,
      framesRepeated: 0,
      wsBufferedBytes: 0,
      framesSent: 0,
      audioFramesSent: 0,
      muxSendMedianMs: 0,
      muxSendP95Ms: 0,
      muxSendMeanMs: 0,
      codec: '',
      audioEncoder: 'none',
      reconnects: 0,
      droppedWhileReconnecting: 0,
      audioBlocksDropped: 0,
    };
  }

  async start(wsUrl: string, destinations: { id: string; url: string }[], sources: SourceHandles): Promise<void> {
    post({ type: 'state', state: 'starting' });
    const gotFrame = new Promise<void>((resolve) => (this.#firstFrame = resolve));
    this.#wsUrl = wsUrl;
    this.#destinations = destinations;
    this.setSources(sources);
    const s = this.#s;
    const dialed = this.#dial();
    const [ws, video, audio] = await Promise.all([
      dialed,
      openH264Encoder({ width: s.width, height: s.height, fps: s.fps, bitrate: s.videoBitrate, codecs: s.codecs }, (c) => this.#onVideo(c), (e) => this.fail(`video encoder: ${e.message}`)),
      openAacEncoder({ sampleRate: s.sampleRate, channels: s.channels, bitrate: s.audioBitrate }, (d, t) => this.#onAudio(d, t), (e) => this.fail(`audio encoder: ${e.message}`)),
    ]).catch((err: unknown) => {
      // An encoder that cannot open leaves no session for the socket.
      dialed.then((opened) => opened.close(1000, 'stopped'), () => undefined);
      throw err;
    });
    if (this.#closing) {
      video.close();
      audio.close();
      ws.close();
      return;
    }
    this.#video = video;
    this.#audio = audio;
    this.#stats.codec = video.codec;
    this.#stats.audioEncoder = audio.kind;
    this.#attach(ws);
    // Both tracks start at the first camera frame (or after a short wait, on black).
    await Promise.race([gotFrame, new Promise((r) => setTimeout(r, FIRST_FRAME_WAIT_MS))]);
    if (this.#closing) return;
    this.#t0 = performance.now();
    this.#statsTimer = setInterval(() => this.#postStats(), STATS_INTERVAL_MS);
    post({ type: 'state', state: 'live' });
    this.#onTick();
  }

  /** Opens a WebSocket to the bridge; rejects when it closes before it opens. */
  #dial(): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.#wsUrl);
      this.#dialing = ws;
      ws.binaryType = 'arraybuffer';
      ws.onopen = () => {
        if (this.#dialing === ws) this.#dialing = undefined;
        resolve(ws);
      };
      ws.onclose = () => {
        if (this.#dialing === ws) this.#dialing = undefined;
        reject(new Error(BRIDGE_UNREACHABLE));
      };
    });
  }

  /**
   * Starts a bridge session on a newly opened socket: the same destinations, the headers again,
   * media from the next keyframe (asked for now) on a timeline that starts at 0.
   */
  #attach(ws: WebSocket): void {
    if (this.#closing) {
      ws.close(1000, 'stopped');
      return;
    }
    this.#ws = ws;
    ws.onclose = (e: CloseEvent) => this.#lost(ws, e.code, e.reason);
    if (ws.readyState !== WebSocket.OPEN) {
      // It closed while the encoders were opening.
      this.#lost(ws, 1006, '');
      return;
    }
    const timeline = new ConnectionTimeline();
    this.#timeline = timeline;
    this.#flow.restart();
    this.#attempt = 0;
    ws.onmessage = (e: MessageEvent) => {
      if (typeof e.data !== 'string' || ws !== this.#ws) return;
      try {
        const message = parseStudioServerMessage(e.data);
        post({ type: 'server', message });
        if (message.type === 'error') this.fail(`bridge: ${message.message} [${message.code}]`);
      } catch (err) {
        this.fail(`bad message from the bridge: ${(err as Error).message}`);
      }
    };
    ws.send(JSON.stringify({ type: 'start', destinations: this.#destinations }));
    for (const tag of timeline.headers(this.#meta, this.#asc, this.#avcC)) ws.send(tag);
    this.#setLink({ state: 'up' });
  }

  #lost(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.#ws || this.#closing) return;
    this.#ws = undefined;
    this.#timeline = undefined;
    const why = `connection to the bridge closed (${code}${reason ? `: ${reason}` : ''})`;
    if (FINAL_CLOSE_CODES.has(code)) this.fail(why);
    else this.#scheduleReconnect(why);
  }

  /** Encoding goes on while the bridge is away; its output is dropped and counted. */
  #scheduleReconnect(reason: string): void {
    const delay = backoffMs(this.#attempt, BRIDGE_RECONNECT);
    this.#retryAt = performance.now() + delay;
    this.#attempt++;
    this.#setLink({ state: 'reconnecting', reason, attempt: this.#attempt, retryInMs: delay });
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#closing) return;
      this.#dial().then(
        (ws) => {
          this.#stats.reconnects++;
          this.#attach(ws);
        },
        () => {
          if (!this.#closing) this.#scheduleReconnect(reason);
        },
      );
    }, delay);
  }

  #setLink(link: BridgeLink): void {
    this.#link = link;
    post({ type: 'link', link });
  }

  /**
   * Switches to new sources. The old streams end when the page stops their tracks; their read
   * loops see they are stale, close what they hold and cancel. (Cancelling from here could drop a
   * frame mid-read without closing it.)
   */
  setSources(sources: SourceHandles): void {
    this.#videoReader = undefined;
    this.#audioReader = undefined;
    if (this.#audioPort !== undefined) this.#audioPort.onmessage = null;
    this.#audioPort = undefined;
    this.#audioClock.resync();
    if (sources.video !== undefined) {
      const reader = sources.video.getReader();
      this.#videoReader = reader;
      void this.#readVideo(reader);
    }
    if (sources.audio !== undefined) {
      const reader = sources.audio.getReader();
      this.#audioReader = reader;
      void this.#readAudio(reader);
    }
    if (sources.audioPort !== undefined) {
      this.#audioPort = sources.audioPort;
      this.#audioPort.onmessage = (e: MessageEvent<PcmBlock>) => this.#pushPcm(e.data.channels, e.data.sampleRate, e.data.timestampUs);
    }
  }

  async #readVideo(reader: ReadableStreamDefaultReader<VideoFrame>): Promise<void> {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.#closing || reader !== this.#videoReader) {
          value?.close();
          if (!done) await reader.cancel();
          break;
        }
        this.offerFrame(value);
      }
    } catch {
      // The track ended.
    }
  }

  /** Keeps only the newest camera frame: the output clock repeats or drops to hold its rate. */
  offerFrame(frame: VideoFrame): void {
    if (this.#closing) {
      frame.close();
      return;
    }
    this.#latest?.close();
    this.#latest = frame;
    this.#latestFresh = true;
    this.#firstFrame();
  }

  async #readAudio(reader: ReadableStreamDefaultReader<AudioData>): Promise<void> {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.#closing || reader !== this.#audioReader) {
          value?.close();
          if (!done) await reader.cancel();
          break;
        }
        const planes: Float32Array[] = [];
        for (let c = 0; c < value.numberOfChannels; c++) {
          const plane = new Float32Array(value.numberOfFrames);
          value.copyTo(plane, { planeIndex: c, format: 'f32-planar' });
          planes.push(plane);
        }
        const rate = value.sampleRate;
        const captureUs = value.timestamp;
        value.close();
        this.#pushPcm(planes, rate, captureUs);
      }
    } catch {
      // The track ended.
    }
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
    this.#writeSilence(this.#audioClock.fill(nowUs, this.#audioReader !== undefined || this.#audioPort !== undefined));
  }

  #onTick(): void {
    if (this.#closing) return;
    const interval = 1000 / this.#s.fps;
    const now = performance.now();
    if (now - this.#t0 >= MAX_SESSION_MS) {
      this.fail('the stream reached FLV\'s 49.7-day timestamp limit and was ended; go live again to continue');
      return;
    }
    const due = Math.floor((now - this.#t0) / interval);
    if (due - this.#n > MAX_CATCH_UP) {
      this.#stats.framesDropped += due - this.#n - MAX_CATCH_UP;
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
    const plan = this.#flow.plan(n, video.queue, this.#ws?.bufferedAmount ?? 0);
    if (plan === FramePlan.Drop) {
      this.#stats.framesDropped++;
      return;
    }
    if (this.#latestFresh) this.#latestFresh = false;
    else if (this.#latest !== undefined) this.#stats.framesRepeated++;
    const frame = this.#frameFor(Math.round((n * 1e6) / this.#s.fps));
    if (frame === undefined) return;
    const key = plan === FramePlan.Key;
    this.#flow.encoded(n, key);
    video.encode(frame, key);
    frame.close();
  }

  setLatencyClock(on: boolean): void {
    this.#latencyClock = on;
  }

  /**
   * The newest camera frame at the output size (letterboxed), with the latency clock when it is
   * on, stamped on the output clock.
   */
  #frameFor(timestamp: number): VideoFrame | undefined {
    const { width, height, fps } = this.#s;
    const src = this.#latest;
    const duration = Math.round(1e6 / fps);
    if (!this.#latencyClock && src !== undefined && src.displayWidth === width && src.displayHeight === height) {
      return new VideoFrame(src, { timestamp, duration });
    }
    if (this.#canvas === undefined) {
      this.#canvas = new OffscreenCanvas(width, height);
      this.#ctx = this.#canvas.getContext('2d', { alpha: false }) ?? undefined;
    }
    const ctx = this.#ctx;
    if (ctx === undefined) return undefined;
    composeFrame<VideoFrame>(ctx, width, height, src, this.#latencyClock ? clockNow() : undefined);
    return new VideoFrame(this.#canvas, { timestamp, duration });
  }

  #onVideo(chunk: H264Chunk): void {
    if (this.#stopped) return;
    if (chunk.timestampUs <= this.#lastVideoUs) {
      this.fail(`the H.264 encoder (${this.#stats.codec}) reorders frames, which FLV from the studio cannot carry`);
      return;
    }
    this.#lastVideoUs = chunk.timestampUs;
    if (chunk.avcC !== undefined) {
      this.#avcC = chunk.avcC;
      // Filler NAL units are written with 4-byte lengths.
      this.#filler = this.#video?.constantBitrate === true && fillerFits(chunk.avcC) ? (this.#filler ?? new CbrFiller(this.#s.videoBitrate, this.#s.fps)) : undefined;
      if (this.#timeline !== undefined) this.#ws?.send(this.#timeline.videoConfig(chunk.avcC));
    }
    const ws = this.#ws;
    const timeline = this.#timeline;
    if (ws === undefined || timeline === undefined) {
      this.#stats.framesDropped++;
      this.#stats.droppedWhileReconnecting++;
      return;
    }
    const t = performance.now();
    const buffered = ws.bufferedAmount;
    if (!this.#flow.admit(chunk.key, buffered)) {
      this.#stats.framesDropped++;
      return;
    }
    // No padding while the socket is backed up: it would only deepen the backlog.
    const filler = buffered > WS_HIGH_WATER / 2 ? 0 : (this.#filler?.fillerFor(chunk.data.length) ?? 0);
    const tags = timeline.video(chunk.data, chunk.key, chunk.timestampUs, filler);
    const tag = tags[0];
    if (tag === undefined) {
      this.#stats.framesDropped++;
      return;
    }
    ws.send(tag);
    const cost = performance.now() - t;
    this.#costs[this.#costCount++ % COST_SAMPLES] = cost;
    this.#costSum += cost;
    this.#sentBytes += tag.length;
    this.#sentFrames++;
    this.#stats.framesSent++;
    // Audio held for this connection's first keyframe.
    for (let i = 1; i < tags.length; i++) ws.send(tags[i]!);
  }

  #onAudio(data: Uint8Array, timestampUs: number): void {
    if (this.#stopped) return;
    const ws = this.#ws;
    const timeline = this.#timeline;
    if (ws === undefined || timeline === undefined) {
      this.#stats.droppedWhileReconnecting++;
      return;
    }
    if (timeline.started && ws.bufferedAmount > 2 * WS_HIGH_WATER) return;
    const tag = timeline.audio(data, timestampUs);
    if (tag === undefined) return;
    this.#sentBytes += tag.length;
    this.#stats.audioFramesSent++;
    ws.send(tag);
  }

  #postStats(): void {
    const st = this.#stats;
    st.fps = this.#sentFrames * (1000 / STATS_INTERVAL_MS);
    st.bitrate = this.#sentBytes * 8 * (1000 / STATS_INTERVAL_MS);
    this.#sentFrames = 0;
    this.#sentBytes = 0;
    st.encodeQueue = this.#video?.queue ?? 0;
    st.wsBufferedBytes = this.#ws?.bufferedAmount ?? 0;
    const n = Math.min(this.#costCount, COST_SAMPLES);
    if (n > 0) {
      const sorted = Array.from(this.#costs.subarray(0, n)).sort((a, b) => a - b);
      st.muxSendMedianMs = sorted[Math.floor(n / 2)] ?? 0;
      st.muxSendP95Ms = sorted[Math.floor(n * 0.95)] ?? 0;
      st.muxSendMeanMs = this.#costSum / this.#costCount;
    }
    post({ type: 'stats', stats: { ...st } });
    if (this.#link.state === 'reconnecting') this.#setLink({ ...this.#link, retryInMs: Math.max(0, Math.round(this.#retryAt - performance.now())) });
  }

  fail(message: string): void {
    if (this.#closing) return;
    post({ type: 'state', state: 'error', message });
    void this.stop();
  }

  async stop(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearTimeout(this.#tick);
    clearInterval(this.#statsTimer);
    clearTimeout(this.#retry);
    this.#dialing?.close(1000, 'stopped');
    this.setSources({});
    // Both encoders give back what they hold (audio: the last partial frame and its delay line).
    const flushed = [this.#video?.flush(), this.#audio?.flush()].map((p) => p?.catch(() => undefined));
    await Promise.race([Promise.all(flushed), new Promise((r) => setTimeout(r, 1000))]);
    this.#stopped = true;
    this.#video?.close();
    this.#audio?.close();
    this.#latest?.close();
    this.#latest = undefined;
    const ws = this.#ws;
    if (ws !== undefined && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: 'stop' }));
      // Let queued media reach the bridge before the socket closes (bounded).
      const deadline = performance.now() + 3000;
      while (ws.bufferedAmount > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 300));
      ws.close(1000, 'stopped');
    }
    post({ type: 'state', state: 'stopped' });
  }
}

let session: Session | undefined;

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  switch (msg.type) {
    case 'start': {
      void session?.stop();
      const s = new Session(msg.settings);
      session = s;
      s.setLatencyClock(msg.latencyClock);
      s.start(msg.wsUrl, msg.destinations, msg.sources).catch((err: unknown) => s.fail(err instanceof Error ? err.message : String(err)));
      break;
    }
    case 'sources':
      session?.setSources(msg.sources);
      break;
    case 'latencyClock':
      session?.setLatencyClock(msg.on);
      break;
    case 'frame':
      if (session === undefined) msg.frame.close();
      else session.offerFrame(msg.frame);
      break;
    case 'stop':
      void session?.stop();
      break;
  }
};

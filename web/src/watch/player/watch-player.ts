import type { FlvTag } from '@onair/shared';
import { FlvToFmp4, type RemuxEvent, type RemuxTrack, type RemuxTrackKind } from '@onair/shared';
import type { WatchServerMessage } from '@onair/shared';
import { ArrivalJitter } from './arrival-jitter.js';
import { BufferController, DEFAULT_BUFFER_OPTIONS } from './buffer-controller.js';
import { FrameCounter } from './frame-counter.js';
import { GapController } from './gap-controller.js';
import { GlassMeter, type GlassMeterOptions } from './glass-meter.js';
import { LatencyController, type LatencyOptions } from './latency-controller.js';
import { PlayController, type PlayOptions } from './play-controller.js';
import { WatchTransport, type TransportOptions } from './transport.js';

/**
 * `connecting`: no media yet. `live`: playing. `sound-only`: playing, the picture a black
 * stand-in until the stream's first keyframe. `blocked`: media is here but the browser will not
 * start playback without a tap (`WatchPlayer.userPlay()`). `waiting`: the source stopped
 * (publisher gone or socket down); the last frame stays up while the player retries.
 * `failed`: given up.
 */
export type PlayerState = 'connecting' | 'live' | 'sound-only' | 'blocked' | 'waiting' | 'failed';

export interface PlayerStatus {
  state: PlayerState;
  reason?: string;
  retryInMs?: number;
}

export interface PlayerStats {
  /**
   * How far the playhead is behind the expected live edge (where the stream's end would be had
   * everything arrived as early as its earliest arrival), seconds.
   */
  latencyS: number | undefined;
  /** Seconds of media the page holds ahead of the playhead: buffered end − playhead. */
  bufferS: number | undefined;
  /** The distance behind the expected edge the player steers towards: jitter + margin, bounded. */
  targetS: number | undefined;
  /** How late the stream's end arrives at worst: reached by two separate events in the last 10 s. */
  jitterS: number | undefined;
  /** The video track shows a black stand-in until the stream's first keyframe. */
  waitingForKeyframe: boolean;
  bitrateKbps: number;
  fps: number;
  decodedFrames: number;
  droppedFrames: number;
  width: number | undefined;
  height: number | undefined;
  codecs: string[];
  /** The Media Source API the player feeds: ManagedMediaSource where the browser has it. */
  mediaSource: 'MediaSource' | 'ManagedMediaSource' | undefined;
  viewers: number | undefined;
  jumps: number;
  stalls: number;
  reconnects: number;
  resyncs: number;
  /** MediaSources built again for a track that appeared unannounced. */
  rebuilds: number;
  /** Kicks given to a playhead that stood still with media ahead. */
  kicks: number;
  /**
   * Glass-to-glass latency from the clock code the studio draws with Measure latency, median over
   * the last ~5 s and the latest reading, in ms; undefined while frames carry no code.
   */
  glassP50Ms: number | undefined;
  glassLastMs: number | undefined;
}

export interface PlayerEvents {
  status: PlayerStatus;
  stats: PlayerStats;
}

export interface WatchPlayerOptions {
  latency?: Partial<LatencyOptions>;
  play?: Partial<PlayOptions>;
  transport?: Partial<TransportOptions>;
  /** `false`: do not look for a clock code in frames. */
  glass?: Partial<GlassMeterOptions> | false;
  /** How often the latency and gap controllers look at the video element. */
  tickMs?: number;
}

const STATS_EVERY_MS = 1000;
const EVICT_EVERY_MS = 5000;

/**
 * The watch player: WebSocket FLV tags → remux to fMP4 → MSE, with latency control, stall
 * recovery and reconnects that keep the same video element and MediaSource (a new one only when
 * a track appears that the stream had not announced).
 */
export class WatchPlayer {
  readonly #video: HTMLVideoElement;
  readonly #remux = new FlvToFmp4();
  #buffer: BufferController;
  readonly #jitter = new ArrivalJitter();
  readonly #frames = new FrameCounter();
  readonly #latency: LatencyController;
  readonly #play: PlayController;
  readonly #gap: GapController;
  readonly #transport: WatchTransport;
  readonly #glass: GlassMeter | undefined;
  readonly #listeners: { [K in keyof PlayerEvents]: Set<(e: PlayerEvents[K]) => void> } = { status: new Set(), stats: new Set() };
  readonly #timer: ReturnType<typeof setInterval>;
  // Remux output held until the SourceBuffers exist.
  #backlog: RemuxEvent[] | undefined = [];
  #tracksRequested = false;
  /** Bumped by every MediaSource (re)build, so a stale one's late completion is ignored. */
  #generation = 0;
  /** End of the media output so far per track of the current set: the least is the playable edge. */
  readonly #ends = new Map<RemuxTrackKind, number>();
  #status: PlayerStatus = { state: 'connecting' };
  #stats: PlayerStats = {
    latencyS: undefined,
    bufferS: undefined,
    targetS: undefined,
    jitterS: undefined,
    waitingForKeyframe: false,
    bitrateKbps: 0,
    fps: 0,
    decodedFrames: 0,
    droppedFrames: 0,
    width: undefined,
    height: undefined,
    codecs: [],
    mediaSource: undefined,
    viewers: undefined,
    jumps: 0,
    stalls: 0,
    resyncs: 0,
    rebuilds: 0,
    kicks: 0,
    reconnects: 0,
    glassP50Ms: undefined,
    glassLastMs: undefined,
  };
  #bytesWindow = 0;
  #framesAt = 0;
  #statsAt = performance.now();
  #evictAt = performance.now();
  #opens = 0;
  #positioned = false;
  #positionTries = 0;
  #settledTicks = 0;
  #lastEdge: number | undefined;
  #destroyed = false;

  constructor(video: HTMLVideoElement, wsUrl: string, opts: WatchPlayerOptions = {}) {
    this.#video = video;
    this.#buffer = this.#newBuffer();
    this.#latency = new LatencyController(video, this.#jitter, this.#frames, opts.latency);
    this.#play = new PlayController(
      video,
      () => {
        if (this.#status.state === 'blocked' || this.#playing()) this.#setPlaying();
      },
      opts.play,
    );
    this.#gap = new GapController(video);
    this.#glass = opts.glass !== false && GlassMeter.supported ? new GlassMeter(video, opts.glass) : undefined;
    this.#transport = new WatchTransport(
      wsUrl,
      {
        onOpen: () => {
          if (this.#opens++ > 0) this.#discontinuity();
        },
        onTag: (tag, bytes) => this.#onTag(tag, bytes),
        onMessage: (msg) => this.#onMessage(msg),
        onClose: (reason, retryInMs) => {
          if (retryInMs === undefined) this.#setStatus({ state: 'failed', reason });
          else this.#setStatus({ state: 'waiting', reason: `reconnecting: ${reason}`, retryInMs });
        },
      },
      opts.transport,
    );
    this.#timer = setInterval(() => this.#tick(), opts.tickMs ?? 100);
  }

  get status(): PlayerStatus {
    return this.#status;
  }

  get stats(): PlayerStats {
    return this.#stats;
  }

  on<K extends keyof PlayerEvents>(event: K, fn: (e: PlayerEvents[K]) => void): () => void {
    this.#listeners[event].add(fn);
    return () => this.#listeners[event].delete(fn);
  }

  /** Call from a user gesture (a tap or click): starts playback with sound. */
  userPlay(): void {
    this.#play.userPlay();
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    clearInterval(this.#timer);
    this.#transport.destroy();
    this.#latency.destroy();
    this.#play.destroy();
    this.#glass?.destroy();
    this.#buffer.destroy();
    this.#listeners.status.clear();
    this.#listeners.stats.clear();
  }

  #emit<K extends keyof PlayerEvents>(event: K, value: PlayerEvents[K]): void {
    for (const fn of this.#listeners[event]) fn(value);
  }

  #newBuffer(): BufferController {
    const buffer = new BufferController(this.#video, {
      ...DEFAULT_BUFFER_OPTIONS,
      onResync: () => {
        this.#stats.resyncs++;
        this.#discontinuity();
      },
      onError: () => {
        this.#stats.resyncs++;
        this.#discontinuity();
      },
    });
    this.#stats.mediaSource = buffer.managed ? 'ManagedMediaSource' : 'MediaSource';
    return buffer;
  }

  /** What follows does not continue what came before: video restarts at a keyframe. */
  #discontinuity(): void {
    this.#remux.discontinuity();
    this.#jitter.reset();
  }

  #playing(): boolean {
    const s = this.#status.state;
    return s === 'live' || s === 'sound-only';
  }

  /** Media is flowing: live, sound only (black stand-in picture), or blocked (needs a tap). */
  #setPlaying(): void {
    if (this.#play.blocked) this.#setStatus({ state: 'blocked', reason: 'tap to play' });
    else if (this.#stats.waitingForKeyframe) this.#setStatus({ state: 'sound-only', reason: 'waiting for a keyframe' });
    else this.#setStatus({ state: 'live' });
  }

  #setStatus(status: PlayerStatus): void {
    const s = this.#status;
    if (s.state === status.state && s.reason === status.reason && s.retryInMs === status.retryInMs) return;
    this.#status = status;
    this.#emit('status', status);
  }

  #onMessage(msg: WatchServerMessage): void {
    if (msg.type === 'error') {
      this.#setStatus({ state: 'failed', reason: `${msg.message} [${msg.code}]` });
    } else if (msg.type === 'status') {
      this.#stats.viewers = msg.viewers;
      if (msg.state === 'waiting') {
        const status: PlayerStatus = { state: 'waiting', reason: msg.reason ?? 'the stream stopped' };
        if (msg.retryInMs !== undefined) status.retryInMs = msg.retryInMs;
        // The next upstream session continues the timeline from where this one stopped: its
        // arrival times say nothing about this one's.
        if (this.#status.state !== 'waiting') this.#jitter.reset();
        this.#setStatus(status);
      } else if (msg.state === 'failed') {
        this.#setStatus({ state: 'failed', reason: msg.reason ?? 'the source failed' });
      }
    }
  }

  #onTag(tag: FlvTag, bytes: number): void {
    this.#bytesWindow += bytes;
    let events: RemuxEvent[];
    try {
      events = this.#remux.push(tag);
    } catch (err) {
      // One malformed tag: skip it and restart video on the next keyframe.
      console.warn('watch: dropped a tag the remuxer refused', err);
      this.#stats.resyncs++;
      this.#discontinuity();
      return;
    }
    let moved = false;
    for (const e of events) {
      if (e.kind === 'media') {
        this.#ends.set(e.track, Math.max(this.#ends.get(e.track) ?? 0, e.end));
        moved = true;
      }
      this.#handle(e);
    }
    if (moved) this.#arrived();
  }

  /** Tells the jitter estimator where the playable edge is now. */
  #arrived(): void {
    let edge = Infinity;
    for (const kind of this.#remux.tracks) edge = Math.min(edge, this.#ends.get(kind) ?? -Infinity);
    if (edge > 0 && edge < Infinity) this.#jitter.arrive(performance.now() / 1000, edge);
  }

  #handle(e: RemuxEvent): void {
    if (e.kind === 'tracks') {
      if (this.#tracksRequested) this.#rebuild();
      void this.#addTracks(e.tracks);
      return;
    }
    if (this.#backlog !== undefined) {
      this.#backlog.push(e);
      return;
    }
    if (e.kind === 'init') {
      this.#buffer.reconfigure(e.track);
      this.#describe(e.track);
      if (this.#playing()) this.#setPlaying();
    } else if (e.kind === 'media') {
      this.#buffer.append(e.track, e.data);
      const s = this.#status.state;
      if (s === 'connecting' || s === 'waiting') this.#setPlaying();
    }
  }

  /**
   * A track appeared that the MediaSource was not built for: MSE cannot add a SourceBuffer once
   * media is in, so a new MediaSource takes its place. The timeline continues; the playhead is
   * placed again once the new media is in.
   */
  #rebuild(): void {
    this.#stats.rebuilds++;
    this.#buffer.destroy();
    this.#buffer = this.#newBuffer();
    this.#backlog = [];
    this.#tracksRequested = false;
    this.#ends.clear();
    this.#positioned = false;
    this.#positionTries = 0;
    this.#settledTicks = 0;
    this.#lastEdge = undefined;
  }

  async #addTracks(tracks: RemuxTrack[]): Promise<void> {
    if (this.#tracksRequested) return;
    this.#tracksRequested = true;
    const generation = ++this.#generation;
    const playable = tracks.filter((t) => BufferController.isSupported(t));
    if (playable.length < tracks.length) console.warn(`watch: the browser cannot play ${tracks.filter((t) => !playable.includes(t)).map((t) => t.mimeType).join(', ')}`);
    if (playable.length === 0) {
      this.#setStatus({ state: 'failed', reason: `this browser cannot play ${tracks.map((t) => t.codec).join(', ')}` });
      return;
    }
    for (const t of playable) this.#describe(t);
    await this.#buffer.addTracks(playable);
    if (this.#destroyed || generation !== this.#generation) return;
    const backlog = this.#backlog ?? [];
    this.#backlog = undefined;
    for (const e of backlog) this.#handle(e);
  }

  #describe(track: RemuxTrack): void {
    if (track.kind === 'video') {
      // A stand-in's size and codec are not the stream's.
      this.#stats.waitingForKeyframe = track.filler;
      this.#stats.width = track.filler ? undefined : track.width;
      this.#stats.height = track.filler ? undefined : track.height;
    }
    if (track.filler) return;
    const others = this.#stats.codecs.filter((c) => !c.startsWith(track.codec.slice(0, 4)));
    this.#stats.codecs = [...others, track.codec];
  }

  /**
   * The first position: the target distance behind the expected edge, chosen before anything
   * plays. A joining viewer receives the GOP since the last keyframe (up to a keyframe interval
   * old); starting at its keyframe and jumping later would make the decoder run through those
   * frames again while playing, which Chromium counts as dropped.
   */
  #position(nowS: number, edge: number | undefined): boolean {
    const v = this.#video;
    if (edge === undefined) return false;
    // Wait, a second at most, until the cached GOP is in: nothing queued, and the edge moving at
    // the live pace (a tick's worth and a frame or so) rather than by the burst, twice in a row
    // (on a busy machine the GOP's appends spread over several ticks).
    const settled = this.#buffer.queuedBytes === 0 && this.#lastEdge !== undefined && edge - this.#lastEdge < 0.15;
    this.#lastEdge = edge;
    this.#settledTicks = settled ? this.#settledTicks + 1 : 0;
    if (this.#settledTicks < 2 && this.#positionTries++ < 10) return false;
    const b = v.buffered;
    const start = Math.max(b.length > 0 ? b.start(b.length - 1) : 0, this.#latency.startAt(nowS, edge));
    if (Math.abs(v.currentTime - start) > 0.01) v.currentTime = start;
    return true;
  }

  #tick(): void {
    const now = performance.now();
    const nowS = now / 1000;
    const v = this.#video;
    const edge = this.#buffer.bufferedEnd;
    this.#frames.update(v.getVideoPlaybackQuality());
    if (!this.#positioned) {
      this.#positioned = this.#position(nowS, edge);
      if (!this.#positioned) return;
    }
    this.#play.tick(now, edge, () => (edge === undefined ? 0 : this.#latency.startAt(nowS, edge)));
    this.#gap.tick(now);
    const behind = this.#latency.tick(nowS, edge);
    this.#stats.latencyS = behind;
    this.#stats.bufferS = edge === undefined ? undefined : edge - v.currentTime;
    this.#stats.jitterS = this.#jitter.jitterS(nowS);
    this.#stats.targetS = this.#latency.targetS(nowS);
    if (now - this.#evictAt >= EVICT_EVERY_MS) {
      this.#evictAt = now;
      this.#buffer.evict();
    }
    if (now - this.#statsAt >= STATS_EVERY_MS) {
      const seconds = (now - this.#statsAt) / 1000;
      const frames = this.#frames;
      this.#stats.bitrateKbps = Math.round((this.#bytesWindow * 8) / seconds / 1000);
      this.#stats.fps = Math.round(((frames.decoded - this.#framesAt) / seconds) * 10) / 10;
      this.#stats.decodedFrames = frames.decoded;
      this.#stats.droppedFrames = frames.dropped;
      this.#stats.jumps = this.#latency.jumps;
      this.#stats.stalls = this.#gap.stalls;
      this.#stats.kicks = this.#play.kicks;
      this.#stats.reconnects = this.#transport.reconnects;
      const glass = this.#glass?.value(now);
      this.#stats.glassP50Ms = glass?.p50Ms;
      this.#stats.glassLastMs = glass?.lastMs;
      this.#framesAt = frames.decoded;
      this.#bytesWindow = 0;
      this.#statsAt = now;
      this.#emit('stats', { ...this.#stats });
    }
  }
}

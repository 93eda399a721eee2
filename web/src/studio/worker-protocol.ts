import type { StudioDestination, StudioServerMessage } from '@onair/shared';
import type { Program, SceneId } from './compositor/program.js';
import type { RecorderStatus } from './recorder/recorder.js';
import type { BitrateReason } from './session/bitrate-controller.js';

/** Messages between the studio page and its encode worker (postMessage, same origin). */

export interface EncodeSettings {
  width: number;
  height: number;
  fps: number;
  videoBitrate: number;
  codecs: readonly string[];
  /** With a profile chosen, its encoder is used even when it reorders frames; `auto` prefers one that does not. */
  preferInOrder: boolean;
  keyframeIntervalS: number;
  /** "Adapt to the network": the video bitrate follows the uplink to the bridge (session/bitrate-controller.ts). */
  adaptBitrate: boolean;
  audioBitrate: number;
  sampleRate: number;
  channels: number;
}

export type VideoSource = 'camera' | 'screen';

export interface SourceHandles {
  /** Camera frames: a MediaStreamTrackProcessor's readable, created on the page. */
  video?: ReadableStream<VideoFrame>;
  /** Shared screen frames, the same way, captured beside the camera. */
  screen?: ReadableStream<VideoFrame>;
  /** Microphone/mix audio: a MediaStreamTrackProcessor's readable. */
  audio?: ReadableStream<AudioData>;
  /** Audio as PCM blocks from an AudioWorklet, where MediaStreamTrackProcessor is missing. */
  audioPort?: MessagePort;
  /** True when camera (screen) frames will arrive as `frame` messages (no MediaStreamTrackProcessor). */
  videoByMessage?: boolean;
  screenByMessage?: boolean;
}

/** Going live: the bridge to publish through and where to. */
export interface LiveTarget {
  wsUrl: string;
  destinations: StudioDestination[];
}

/**
 * `start` opens the encode pipeline (sources, output clock, encoders) with what to do first;
 * `live`/`endStream` and `record`/`stopRecording` then come and go independently on it, and it
 * closes itself once neither is on. `stop` ends everything.
 */
export type ToWorker =
  | { type: 'start'; settings: EncodeSettings; sources: SourceHandles; latencyClock: boolean; live?: LiveTarget; record?: string }
  | { type: 'live'; target: LiveTarget }
  | { type: 'endStream' }
  /** Record to this file name in OPFS (recorder/opfs.ts). */
  | { type: 'record'; name: string }
  | { type: 'stopRecording' }
  /** A new video bitrate, bits per second: from the next keyframe, asked for at once. */
  | { type: 'bitrate'; bps: number }
  /** "Adapt to the network" turned on or off while encoding. */
  | { type: 'adapt'; on: boolean }
  | { type: 'sources'; sources: SourceHandles }
  /** "Measure latency": draw the latency clock (web/src/lib/latency-clock.ts) into every output frame. */
  | { type: 'latencyClock'; on: boolean }
  | { type: 'frame'; frame: VideoFrame; source?: VideoSource }
  /** The scene, layout and overlays to compose (compositor/program.ts); checked with readProgram on arrival. */
  | { type: 'program'; program: Program }
  /** The logo overlay's image (null: none); the worker owns and closes it. */
  | { type: 'logo'; image: ImageBitmap | null }
  | { type: 'stop' };

export interface EncodeStats {
  /** Output frames per second over the last second. */
  fps: number;
  /** Bits per second sent over the WebSocket over the last second. */
  bitrate: number;
  encodeQueue: number;
  /** Frames not sent: encoder behind, or dropped to the next keyframe for backpressure. */
  framesDropped: number;
  /** Why: the worker ran late (output clock skipped ahead), the encoder's queue was full, the link was backed up. */
  droppedLate: number;
  droppedEncoderBusy: number;
  droppedBacklog: number;
  /** Frames the encoder took and gave nothing back for (realtime encoders skip frames when behind); known once it is flushed. */
  droppedByEncoder: number;
  /** Frames inside the encoder right now, beyond its queue: its own delay (lookahead, B-frames). */
  framesInEncoder: number;
  /** The encoder hands frames back out of presentation order (B-frames); decode times are derived. */
  reorders: boolean;
  /** The keyframe interval the encoder really produced, median of the recent ones, ms. */
  keyframeIntervalMs: number;
  /** The encoder makes keyframes the studio did not ask for (WebKit's every 0.5 s). */
  encoderKeyframes: boolean;
  /** Output frames that repeated the previous camera frame (camera slower than the preset). */
  framesRepeated: number;
  wsBufferedBytes: number;
  framesSent: number;
  audioFramesSent: number;
  /** Per-frame cost of FLV muxing + WebSocket send, milliseconds (median and 95th percentile). */
  muxSendMedianMs: number;
  muxSendP95Ms: number;
  /** Mean over the whole session: the worker's clock is coarse (100 µs) without cross-origin isolation. */
  muxSendMeanMs: number;
  /** Per-frame cost of composing the program (compositor/), ms, median and 95th percentile; 0 while frames pass through. */
  composeMedianMs: number;
  composeP95Ms: number;
  /** Output frames drawn by the compositor (the others passed a source frame through, or reused the canvas). */
  framesComposed: number;
  codec: string;
  audioEncoder: 'webcodecs' | 'wasm' | 'none';
  /** Video frames the encoder produced that went into the stream. */
  framesEncoded: number;
  /** Times the connection to the bridge dropped while live (each resumed or restarted). */
  reconnects: number;
  /** Media the page could not resend after a drop: gaps, video frames and milliseconds lost. */
  gaps: number;
  gapFrames: number;
  gapMs: number;
  /** Bytes held for resending (sent and not yet acknowledged by the bridge, or not sent yet). */
  resendBufferBytes: number;
  /** Audio blocks turned away because the AAC encoder was more than a second behind. */
  audioBlocksDropped: number;
  /** The video bitrate the encoder is set to now, bits per second. */
  targetBitrate: number;
  /**
   * Why: the streamer's choice, stepped down because the uplink to the bridge is congested, or
   * climbing back to the choice now that it is clear.
   */
  bitrateReason: BitrateReason;
  /** At the bitrate floor and still congested: every other output frame is encoded (half the frame rate). */
  frameRateHalved: boolean;
}

/**
 * The worker's connection to the bridge. `resuming`: the socket dropped and the bridge keeps the
 * session for `graceLeftMs` more; `reconnecting`: the session is gone, a new one is being opened.
 */
export type BridgeLinkState =
  | { state: 'connecting' }
  | { state: 'up' }
  | { state: 'resuming'; reason: string; attempt: number; retryInMs: number; graceLeftMs: number }
  | { state: 'reconnecting'; reason: string; attempt: number; retryInMs: number };

/** For PCM blocks over `audioPort`: planar Float32 channels at `sampleRate`. */
export interface PcmBlock {
  sampleRate: number;
  /** Capture time of the first sample on the AudioContext's clock (its currentFrame), µs. */
  timestampUs: number;
  channels: Float32Array[];
}

/** The recording: `stopped` once its file is closed; `error` when it stopped by itself (the file keeps what was written). */
export type RecordingState =
  | { state: 'starting' | 'recording' | 'stopped'; status?: RecorderStatus }
  | { state: 'error'; message: string; status?: RecorderStatus };

export type FromWorker =
  /** The stream (going live), not the pipeline: `stopped` when it ended, which may leave a recording running. */
  | { type: 'state'; state: 'starting' | 'live' | 'stopped' | 'error'; message?: string }
  | { type: 'recording'; recording: RecordingState }
  /** Neither live nor recording any more: the pipeline is closed and the worker can go. */
  | { type: 'closed' }
  | { type: 'server'; message: StudioServerMessage }
  | { type: 'stats'; stats: EncodeStats }
  | { type: 'link'; link: BridgeLinkState }
  /** A program arrived: its scene is on output frames from `frame` on (stamped frame / fps s on the session clock). */
  | { type: 'program'; scene: SceneId; frame: number }
  /** An output frame as encoded, for the page's preview (a few a second; the page closes it). */
  | { type: 'preview'; frame: VideoFrame };

import type { StudioDestination, StudioServerMessage } from '@onair/shared';

/** Messages between the studio page and its encode worker (postMessage, same origin). */

export interface EncodeSettings {
  width: number;
  height: number;
  fps: number;
  videoBitrate: number;
  codecs: readonly string[];
  keyframeIntervalS: number;
  audioBitrate: number;
  sampleRate: number;
  channels: number;
}

export interface SourceHandles {
  /** Camera/screen frames: a MediaStreamTrackProcessor's readable, created on the page. */
  video?: ReadableStream<VideoFrame>;
  /** Microphone/mix audio: a MediaStreamTrackProcessor's readable. */
  audio?: ReadableStream<AudioData>;
  /** Audio as PCM blocks from an AudioWorklet, where MediaStreamTrackProcessor is missing. */
  audioPort?: MessagePort;
  /** True when video frames will arrive as `frame` messages (no MediaStreamTrackProcessor). */
  videoByMessage?: boolean;
}

export type ToWorker =
  | { type: 'start'; wsUrl: string; destinations: StudioDestination[]; settings: EncodeSettings; sources: SourceHandles; latencyClock: boolean }
  | { type: 'sources'; sources: SourceHandles }
  /** "Measure latency": draw the latency clock (web/src/lib/latency-clock.ts) into every output frame. */
  | { type: 'latencyClock'; on: boolean }
  | { type: 'frame'; frame: VideoFrame }
  | { type: 'stop' };

export interface EncodeStats {
  /** Output frames per second over the last second. */
  fps: number;
  /** Bits per second sent over the WebSocket over the last second. */
  bitrate: number;
  encodeQueue: number;
  /** Frames not sent: encoder behind, or dropped to the next keyframe for backpressure. */
  framesDropped: number;
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
  codec: string;
  audioEncoder: 'webcodecs' | 'wasm' | 'none';
  /** Times the WebSocket to the bridge was opened again after it dropped. */
  reconnects: number;
  /** Encoded video and audio frames dropped because the bridge was unreachable. */
  droppedWhileReconnecting: number;
  /** Audio blocks turned away because the AAC encoder was more than a second behind. */
  audioBlocksDropped: number;
}

/** The worker's WebSocket to the bridge. */
export type BridgeLink =
  | { state: 'connecting' }
  | { state: 'up' }
  | { state: 'reconnecting'; reason: string; attempt: number; retryInMs: number };

/** For PCM blocks over `audioPort`: planar Float32 channels at `sampleRate`. */
export interface PcmBlock {
  sampleRate: number;
  /** Capture time of the first sample on the AudioContext's clock (its currentFrame), µs. */
  timestampUs: number;
  channels: Float32Array[];
}

export type FromWorker =
  | { type: 'state'; state: 'starting' | 'live' | 'stopped' | 'error'; message?: string }
  | { type: 'server'; message: StudioServerMessage }
  | { type: 'stats'; stats: EncodeStats }
  | { type: 'link'; link: BridgeLink };

import { avcCForKeyframe } from '@onair/shared';

export interface H264Settings {
  width: number;
  height: number;
  fps: number;
  bitrate: number;
  codecs: readonly string[];
  /** Prefer a configuration that keeps presentation order over the list's order (default true). */
  preferInOrder?: boolean;
}

export interface H264Chunk {
  data: Uint8Array;
  key: boolean;
  timestampUs: number;
  /** The avcC record when the encoder announces a (new) configuration. */
  avcC: Uint8Array | undefined;
}

export interface H264Encoder {
  readonly codec: string;
  /** The encoder hands frames back out of presentation order (B-frames): decode times are derived. */
  readonly reorders: boolean;
  /** The encoder runs in constant bitrate mode. */
  readonly constantBitrate: boolean;
  readonly queue: number;
  encode(frame: VideoFrame, keyFrame: boolean): void;
  /**
   * A new target bitrate for the frames encoded from now on: `configure` again with only the
   * bitrate changed, which WebCodecs applies without dropping what is queued (the caller asks
   * for a keyframe so the change starts on one).
   */
  setBitrate(bps: number): void;
  flush(): Promise<void>;
  close(): void;
}

const VERIFY_TIMEOUT_MS = 5000;
/** Frames a candidate encodes at its trial: enough for a B-frame encoder to show its reordering. */
const TRIAL_FRAMES = 6;

function configFor(s: H264Settings, codec: string, bitrateMode: VideoEncoderBitrateMode | undefined): VideoEncoderConfig {
  const config: VideoEncoderConfig = {
    codec,
    width: s.width,
    height: s.height,
    bitrate: s.bitrate,
    framerate: s.fps,
    latencyMode: 'realtime',
    avc: { format: 'avc' },
    hardwareAcceleration: 'no-preference',
  };
  if (bitrateMode !== undefined) config.bitrateMode = bitrateMode;
  return config;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The first config (codec × bitrate mode) the browser says it supports, in preference order. */
export async function supportedConfigs(s: H264Settings): Promise<VideoEncoderConfig[]> {
  const out: VideoEncoderConfig[] = [];
  for (const codec of s.codecs) {
    for (const mode of ['constant', undefined] as const) {
      const config = configFor(s, codec, mode);
      try {
        if ((await VideoEncoder.isConfigSupported(config)).supported) out.push(config);
      } catch {
        // An unknown bitrateMode throws in some browsers: try the next candidate.
      }
    }
  }
  return out;
}

/**
 * Encodes a few frames with `config`: `works` only when a chunk with its avcC came out, `reorders`
 * when the chunks came back out of presentation order.
 */
async function trial(config: VideoEncoderConfig): Promise<{ works: boolean; reorders: boolean }> {
  let works = false;
  let reorders = false;
  let last = -1;
  const encoder = new VideoEncoder({
    output: (chunk, meta) => {
      if (meta?.decoderConfig?.description !== undefined) works = true;
      if (chunk.timestamp < last) reorders = true;
      last = Math.max(last, chunk.timestamp);
    },
    error: () => {},
  });
  try {
    encoder.configure(config);
    const canvas = new OffscreenCanvas(config.width, config.height);
    const ctx = canvas.getContext('2d');
    if (ctx === null) return { works: false, reorders };
    for (let i = 0; i < TRIAL_FRAMES; i++) {
      // A changing background and a moving block: motion an encoder predicts with B-frames where
      // it uses them (a still or nearly still picture makes x264 in Firefox choose P-frames only).
      ctx.fillStyle = `rgb(${i * 2},${i * 5},100)`;
      ctx.fillRect(0, 0, config.width, config.height);
      ctx.fillStyle = '#fff';
      ctx.fillRect((i * 37) % config.width, (i * 13) % config.height, 64, 64);
      const frame = new VideoFrame(canvas, { timestamp: Math.round((i * 1e6) / (config.framerate ?? 30)) });
      encoder.encode(frame, { keyFrame: i === 0 });
      frame.close();
    }
    await Promise.race([encoder.flush(), new Promise((_r, reject) => setTimeout(() => reject(new Error('timeout')), VERIFY_TIMEOUT_MS))]);
  } catch {
    works = false;
  } finally {
    if (encoder.state !== 'closed') encoder.close();
  }
  return { works, reorders };
}

/**
 * Opens a realtime H.264 encoder (avc format, constant bitrate where supported) with the first
 * profile that is both supported and really encodes here, preferring one that keeps presentation
 * order (B-frames add their reorder delay to the latency; Firefox's Main and High profiles use
 * them, its Baseline cannot); baseline is the last resort of the preset's list. A reordering
 * encoder is used when nothing else works: the muxer derives decode times for it.
 */
export async function openH264Encoder(s: H264Settings, onChunk: (chunk: H264Chunk) => void, onError: (err: Error) => void): Promise<H264Encoder> {
  if (typeof VideoEncoder === 'undefined') throw new Error('this browser has no WebCodecs VideoEncoder');
  let chosen: VideoEncoderConfig | undefined;
  let reorders = false;
  let fallback: VideoEncoderConfig | undefined;
  for (const config of await supportedConfigs(s)) {
    const t = await trial(config);
    if (!t.works) continue;
    if (!t.reorders || s.preferInOrder === false) {
      chosen = config;
      reorders = t.reorders;
      break;
    }
    fallback ??= config;
  }
  if (chosen === undefined && fallback !== undefined) {
    chosen = fallback;
    reorders = true;
  }
  if (chosen === undefined) throw new Error(`no H.264 encoder for ${s.width}×${s.height}@${s.fps} in this browser (tried ${s.codecs.join(', ')})`);
  let description: Uint8Array | undefined;
  let announced: Uint8Array | undefined;
  const encoder = new VideoEncoder({
    output: (chunk, meta) => {
      const data = new Uint8Array(chunk.byteLength);
      chunk.copyTo(data);
      const given = meta?.decoderConfig?.description;
      if (given !== undefined) {
        const view = ArrayBuffer.isView(given) ? new Uint8Array(given.buffer, given.byteOffset, given.byteLength) : new Uint8Array(given);
        description = view.slice();
      }
      const key = chunk.type === 'key';
      // The parameter sets a keyframe carries in-band win over the description (Firefox's is malformed).
      const config = key ? avcCForKeyframe(data, description) : undefined;
      let avcC: Uint8Array | undefined;
      if (config !== undefined && (announced === undefined || !sameBytes(config, announced))) {
        announced = config;
        avcC = config;
      }
      onChunk({ data, key, timestampUs: chunk.timestamp, avcC });
    },
    error: (e) => onError(e),
  });
  let active: VideoEncoderConfig = chosen;
  encoder.configure(active);
  const codec = `${chosen.codec}${chosen.bitrateMode === 'constant' ? ' CBR' : ''}`;
  return {
    codec,
    reorders,
    constantBitrate: chosen.bitrateMode === 'constant',
    get queue() {
      return encoder.encodeQueueSize;
    },
    encode(frame, keyFrame) {
      encoder.encode(frame, { keyFrame });
    },
    setBitrate(bps) {
      if (encoder.state !== 'configured') return;
      active = { ...active, bitrate: bps };
      encoder.configure(active);
    },
    flush: () => encoder.flush(),
    close() {
      if (encoder.state !== 'closed') encoder.close();
    },
  };
}

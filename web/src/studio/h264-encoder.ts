export interface H264Settings {
  width: number;
  height: number;
  fps: number;
  bitrate: number;
  codecs: readonly string[];
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
  /** The encoder runs in constant bitrate mode. */
  readonly constantBitrate: boolean;
  readonly queue: number;
  encode(frame: VideoFrame, keyFrame: boolean): void;
  flush(): Promise<void>;
  close(): void;
}

const VERIFY_TIMEOUT_MS = 5000;

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

/** The first config (codec × bitrate mode) the browser says it supports, in preference order. */
async function supportedConfigs(s: H264Settings): Promise<VideoEncoderConfig[]> {
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

/** Encodes one black frame with `config`; resolves true only when a chunk with its avcC came out. */
async function works(config: VideoEncoderConfig): Promise<boolean> {
  let ok = false;
  const encoder = new VideoEncoder({
    output: (_chunk, meta) => {
      if (meta?.decoderConfig?.description !== undefined) ok = true;
    },
    error: () => {},
  });
  try {
    encoder.configure(config);
    const canvas = new OffscreenCanvas(config.width, config.height);
    const ctx = canvas.getContext('2d');
    if (ctx === null) return false;
    ctx.fillRect(0, 0, config.width, config.height);
    const frame = new VideoFrame(canvas, { timestamp: 0 });
    encoder.encode(frame, { keyFrame: true });
    frame.close();
    await Promise.race([encoder.flush(), new Promise((_r, reject) => setTimeout(() => reject(new Error('timeout')), VERIFY_TIMEOUT_MS))]);
  } catch {
    ok = false;
  } finally {
    if (encoder.state !== 'closed') encoder.close();
  }
  return ok;
}

/**
 * Opens a realtime H.264 encoder (avc format, constant bitrate where supported) with the first
 * profile that is both supported and really encodes here; baseline is the last resort.
 */
export async function openH264Encoder(s: H264Settings, onChunk: (chunk: H264Chunk) => void, onError: (err: Error) => void): Promise<H264Encoder> {
  if (typeof VideoEncoder === 'undefined') throw new Error('this browser has no WebCodecs VideoEncoder');
  let chosen: VideoEncoderConfig | undefined;
  for (const config of await supportedConfigs(s)) {
    if (await works(config)) {
      chosen = config;
      break;
    }
  }
  if (chosen === undefined) throw new Error(`no H.264 encoder for ${s.width}×${s.height}@${s.fps} in this browser (tried ${s.codecs.join(', ')})`);
  const encoder = new VideoEncoder({
    output: (chunk, meta) => {
      const data = new Uint8Array(chunk.byteLength);
      chunk.copyTo(data);
      const description = meta?.decoderConfig?.description;
      let avcC: Uint8Array | undefined;
      if (description !== undefined) {
        const view = ArrayBuffer.isView(description) ? new Uint8Array(description.buffer, description.byteOffset, description.byteLength) : new Uint8Array(description);
        avcC = view.slice();
      }
      onChunk({ data, key: chunk.type === 'key', timestampUs: chunk.timestamp, avcC });
    },
    error: (e) => onError(e),
  });
  encoder.configure(chosen);
  const codec = `${chosen.codec}${chosen.bitrateMode === 'constant' ? ' CBR' : ''}`;
  return {
    codec,
    constantBitrate: chosen.bitrateMode === 'constant',
    get queue() {
      return encoder.encodeQueueSize;
    },
    encode(frame, keyFrame) {
      encoder.encode(frame, { keyFrame });
    },
    flush: () => encoder.flush(),
    close() {
      if (encoder.state !== 'closed') encoder.close();
    },
  };
}

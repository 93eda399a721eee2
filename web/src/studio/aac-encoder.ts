
/** An AAC-LC encoder fed planar Float32 PCM; packets come out with their timestamps in µs. */
export interface AacEncoder {
  readonly kind: 'webcodecs' | 'wasm';
  /**
   * Queues a block; false when it was dropped because the encoder is more than MAX_BACKLOG_FRAMES
   * behind (the caller leaves the gap to its clock, which fills it with silence later).
   */
  encode(planes: Float32Array[], timestampUs: number): boolean;
  /** Samples queued but not yet out as packets. */
  readonly backlog: number;
  /** Blocks dropped because the encoder could not keep up. */
  readonly dropped: number;
  /** Resolves once every queued sample is out (the tail of the stream included). */
  flush(): Promise<void>;
  close(): void;
}

export interface AacSettings {
  sampleRate: number;
  channels: number;
  bitrate: number;
}

export type OnAacPacket = (data: Uint8Array, timestampUs: number) => void;

/** AAC frames: 1024 samples each. */
export const AAC_FRAME = 1024;
/** About a second of audio at 48 kHz waiting in the encoder: beyond it, new blocks are dropped. */
export const MAX_BACKLOG_FRAMES = 48;
/**
 * FFmpeg's AAC encoder (the WASM one) starts with one frame of encoder delay: its first packet is
 * stamped -1024 samples (`ffmpeg -c:a aac -f framecrc`).
 */
export const FFMPEG_AAC_PRIMING = 1024;

/** Samples in, packets out: how far behind an encoder is, and whether a new block still fits. */
export class EncodeBacklog {
  readonly #max: number;
  #samples = 0;
  #dropped = 0;

  constructor(maxSamples = MAX_BACKLOG_FRAMES * AAC_FRAME) {
    this.#max = maxSamples;
  }

  get samples(): number {
    return this.#samples;
  }

  get dropped(): number {
    return this.#dropped;
  }

  /** A block of `samples` is offered: true if it goes to the encoder. */
  admit(samples: number): boolean {
    if (this.#samples + samples > this.#max) {
      this.#dropped++;
      return false;
    }
    this.#samples += samples;
    return true;
  }

  /** A packet came out. */
  out(samples = AAC_FRAME): void {
    this.#samples = Math.max(0, this.#samples - samples);
  }
}

/**
 * Maps the WASM encoder's packet times to the time of the samples they decode to. mediabunny
 * stamps packet k at first input + k·1024 samples and drops FFmpeg's own (negative) pts, so every
 * packet would be `priming` samples late; the first packet, all encoder delay, is dropped rather
 * than clamped to the first input.
 */
export class PrimingOffset {
  readonly #shiftUs: number;
  #firstInputUs: number | undefined;

  constructor(sampleRate: number, priming = FFMPEG_AAC_PRIMING) {
    this.#shiftUs = (priming / sampleRate) * 1e6;
  }

  /** The first block's timestamp. */
  input(timestampUs: number): void {
    this.#firstInputUs ??= timestampUs;
  }

  /** The packet's real time, or undefined when it lies before the first input sample. */
  packet(timestampUs: number): number | undefined {
    const t = timestampUs - this.#shiftUs;
    // Half a microsecond: mediabunny's timestamps are float seconds.
    return this.#firstInputUs === undefined || t < this.#firstInputUs - 0.5 ? undefined : t;
  }
}

const FIRST_PACKET_TIMEOUT_MS = 3000;

function planar(planes: Float32Array[]): Float32Array<ArrayBuffer> {
  const n = planes[0]?.length ?? 0;
  const out = new Float32Array(n * planes.length);
  planes.forEach((p, i) => out.set(p, i * n));
  return out;
}

/** Where the browser has it (Chrome/Edge on Windows and macOS, Safari 26): WebCodecs AudioEncoder. */
async function openWebCodecs(s: AacSettings, onPacket: OnAacPacket, onError: (err: Error) => void): Promise<AacEncoder | undefined> {
  if (typeof AudioEncoder === 'undefined') return undefined;
  const config: AudioEncoderConfig = { codec: 'mp4a.40.2', sampleRate: s.sampleRate, numberOfChannels: s.channels, bitrate: s.bitrate };
  try {
    if (!(await AudioEncoder.isConfigSupported(config)).supported) return undefined;
  } catch {
    return undefined;
  }
  // isConfigSupported can say yes and encoding still fail (Firefox): prove it with one packet.
  let firstOut: () => void = () => {};
  const gotFirst = new Promise<void>((resolve) => (firstOut = resolve));
  let failed: Error | undefined;
  let verified = false;
  const backlog = new EncodeBacklog();
  const encoder = new AudioEncoder({
    output: (chunk) => {
      firstOut();
      if (!verified) return;
      backlog.out();
      const data = new Uint8Array(chunk.byteLength);
      chunk.copyTo(data);
      onPacket(data, chunk.timestamp);
    },
    error: (e) => {
      failed = e;
      firstOut();
      if (verified) onError(e);
    },
  });
  try {
    encoder.configure(config);
    const silence = new AudioData({ format: 'f32-planar', sampleRate: s.sampleRate, numberOfChannels: s.channels, numberOfFrames: 2048, timestamp: 0, data: new Float32Array(2048 * s.channels) });
    encoder.encode(silence);
    silence.close();
    await Promise.race([gotFirst, encoder.flush(), new Promise((r) => setTimeout(r, FIRST_PACKET_TIMEOUT_MS))]);
  } catch (e) {
    failed = e as Error;
  }
  if (failed !== undefined || encoder.state !== 'configured') {
    if (encoder.state !== 'closed') encoder.close();
    return undefined;
  }
  encoder.reset();
  encoder.configure(config);
  verified = true;
  return {
    kind: 'webcodecs',
    get backlog() {
      return backlog.samples;
    },
    get dropped() {
      return backlog.dropped;
    },
    encode(planes, timestampUs) {
      const frames = planes[0]?.length ?? 0;
      if (!backlog.admit(frames)) return false;
      const audio = new AudioData({ format: 'f32-planar', sampleRate: s.sampleRate, numberOfChannels: s.channels, numberOfFrames: frames, timestamp: timestampUs, data: planar(planes) });
      encoder.encode(audio);
      audio.close();
      return true;
    },
    flush: () => (encoder.state === 'configured' ? encoder.flush() : Promise.resolve()),
    close() {
      if (encoder.state !== 'closed') encoder.close();
    },
  };
}

let wasmRegistered = false;

/** FFmpeg's AAC encoder in WASM, through mediabunny's custom encoder (Chromium on Linux, Firefox). */
async function openWasm(s: AacSettings, onPacket: OnAacPacket, onError: (err: Error) => void): Promise<AacEncoder> {
  // Loaded only where needed: about 1 MB that browsers with a native AAC encoder never fetch.
  const [{ AudioSample, AudioSampleSource, AdtsOutputFormat, NullTarget, Output }, { registerAacEncoder }] = await Promise.all([
    import('mediabunny'),
    import('@mediabunny/aac-encoder'),
  ]);
  if (!wasmRegistered) {
    registerAacEncoder();
    wasmRegistered = true;
  }
  const backlog = new EncodeBacklog();
  const priming = new PrimingOffset(s.sampleRate);
  const source = new AudioSampleSource({
    codec: 'aac',
    bitrate: s.bitrate,
    onEncodedPacket: (packet) => {
      backlog.out();
      const t = priming.packet(packet.timestamp * 1e6);
      if (t !== undefined) onPacket(packet.data, Math.round(t));
    },
  });
  // The output only drives the encoder; packets are taken from onEncodedPacket and the ADTS
  // stream itself goes nowhere.
  const output = new Output({ format: new AdtsOutputFormat(), target: new NullTarget() });
  output.addAudioTrack(source);
  await output.start();
  let chain: Promise<void> = Promise.resolve();
  let closed = false;
  const fail = (e: unknown): void => {
    if (!closed) onError(e instanceof Error ? e : new Error(String(e)));
  };
  return {
    kind: 'wasm',
    get backlog() {
      return backlog.samples;
    },
    get dropped() {
      return backlog.dropped;
    },
    encode(planes, timestampUs) {
      const frames = planes[0]?.length ?? 0;
      if (closed || !backlog.admit(frames)) return false;
      priming.input(timestampUs);
      const sample = new AudioSample({ data: planar(planes), format: 'f32-planar', numberOfChannels: s.channels, sampleRate: s.sampleRate, timestamp: timestampUs / 1e6 });
      chain = chain
        .then(() => source.add(sample))
        .catch(fail)
        .finally(() => sample.close());
      return true;
    },
    async flush() {
      if (closed) return;
      // Finalizing drains FFmpeg's delay line: the last partial frame and the one it holds back.
      chain = chain.then(() => output.finalize()).catch(fail);
      await chain;
    },
    close() {
      if (closed) return;
      closed = true;
      if (output.state !== 'finalized') void output.cancel().catch(() => {});
    },
  };
}

/** Opens the first AAC-LC encoder that really works here. */
export async function openAacEncoder(s: AacSettings, onPacket: OnAacPacket, onError: (err: Error) => void): Promise<AacEncoder> {
  return (await openWebCodecs(s, onPacket, onError)) ?? (await openWasm(s, onPacket, onError));
}

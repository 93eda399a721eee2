
/** An AAC-LC encoder fed planar Float32 PCM; packets come out with their timestamps in µs. */
export interface AacEncoder {
  readonly kind: 'webcodecs' | 'wasm';
  encode(planes: Float32Array[], timestampUs: number): void;
  /** Packets encoded but not yet out (a growing number means the encoder cannot keep up). */
  readonly queue: number;
  close(): void;
}

export interface AacSettings {
  sampleRate: number;
  channels: number;
  bitrate: number;
}

export type OnAacPacket = (data: Uint8Array, timestampUs: number) => void;

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
  const encoder = new AudioEncoder({
    output: (chunk) => {
      firstOut();
      if (!verified) return;
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
    get queue() {
      return encoder.encodeQueueSize;
    },
    encode(planes, timestampUs) {
      const data = planar(planes);
      const frames = planes[0]?.length ?? 0;
      const audio = new AudioData({ format: 'f32-planar', sampleRate: s.sampleRate, numberOfChannels: s.channels, numberOfFrames: frames, timestamp: timestampUs, data });
      encoder.encode(audio);
      audio.close();
    },
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
  let pending = 0;
  const source = new AudioSampleSource({
    codec: 'aac',
    bitrate: s.bitrate,
    onEncodedPacket: (packet) => {
      pending = Math.max(0, pending - 1);
      onPacket(packet.data, Math.round(packet.timestamp * 1e6));
    },
  });
  // The output only drives the encoder; packets are taken from onEncodedPacket and the ADTS
  // stream itself goes nowhere.
  const output = new Output({ format: new AdtsOutputFormat(), target: new NullTarget() });
  output.addAudioTrack(source);
  await output.start();
  let chain: Promise<void> = Promise.resolve();
  let closed = false;
  return {
    kind: 'wasm',
    get queue() {
      return pending;
    },
    encode(planes, timestampUs) {
      const frames = planes[0]?.length ?? 0;
      const sample = new AudioSample({ data: planar(planes), format: 'f32-planar', numberOfChannels: s.channels, sampleRate: s.sampleRate, timestamp: timestampUs / 1e6 });
      pending += frames / 1024;
      chain = chain
        .then(() => source.add(sample))
        .catch((e: unknown) => {
          if (!closed) onError(e instanceof Error ? e : new Error(String(e)));
        })
        .finally(() => sample.close());
    },
    close() {
      closed = true;
      void output.cancel().catch(() => {});
    },
  };
}

/** Opens the first AAC-LC encoder that really works here. */
export async function openAacEncoder(s: AacSettings, onPacket: OnAacPacket, onError: (err: Error) => void): Promise<AacEncoder> {
  return (await openWebCodecs(s, onPacket, onError)) ?? (await openWasm(s, onPacket, onError));
}

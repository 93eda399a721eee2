// What an engine offers the studio and the watch page, measured in the page rather than read
// from tables: encoder configs are asked with isConfigSupported and then used for real (Firefox
// may say yes and fail, or reorder frames).

export interface EncodeTrial {
  supported: boolean;
  /** isConfigSupported with bitrateMode 'constant'. */
  constant: boolean;
  /** Chunks out of ENCODE_FRAMES frames, keyframes among them, whether timestamps went backwards. */
  chunks?: number;
  keyframes?: number;
  reordered?: boolean;
  error?: string;
}

export interface Features {
  userAgent: string;
  camera: string;
  microphone: string;
  videoEncoder: Record<string, EncodeTrial> | null;
  audioEncoder: Record<string, boolean> | null;
  mediaStreamTrackProcessor: boolean;
  requestVideoFrameCallback: boolean;
  audioWorklet: boolean;
  mediaSource: boolean | null;
  managedMediaSource: boolean | null;
}

export const AVC_PROFILES = ['avc1.42E01F', 'avc1.4D401F', 'avc1.64001F', 'avc1.640028'];

/** Runs in the page; self-contained. */
export async function probeFeatures(avcProfiles: string[]): Promise<Features> {
  const ENCODE_FRAMES = 15;
  const describe = (err: unknown): string => (err instanceof Error ? `${err.name}: ${err.message}` : String(err));

  let camera = 'no getUserMedia';
  let microphone = 'no getUserMedia';
  if (navigator.mediaDevices?.getUserMedia !== undefined) {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: true });
      const v = stream.getVideoTracks()[0]?.getSettings();
      const a = stream.getAudioTracks()[0]?.getSettings();
      camera = v === undefined ? 'none' : `${v.width}x${v.height}@${v.frameRate ?? '?'}`;
      microphone = a === undefined ? 'none' : `${a.sampleRate ?? '?'} Hz x${a.channelCount ?? '?'}`;
      for (const t of stream.getTracks()) t.stop();
    } catch (err) {
      camera = microphone = describe(err);
    }
  }

  async function tryEncode(codec: string): Promise<EncodeTrial> {
    const config: VideoEncoderConfig = { codec, width: 1280, height: 720, bitrate: 2_500_000, framerate: 30, latencyMode: 'realtime', avc: { format: 'avc' } };
    const supported = (await VideoEncoder.isConfigSupported(config).catch(() => ({ supported: false }))).supported === true;
    const constant = (await VideoEncoder.isConfigSupported({ ...config, bitrateMode: 'constant' }).catch(() => ({ supported: false }))).supported === true;
    if (!supported) return { supported, constant };
    const timestamps: number[] = [];
    let keyframes = 0;
    let error: string | undefined;
    const encoder = new VideoEncoder({
      output: (chunk) => {
        timestamps.push(chunk.timestamp);
        if (chunk.type === 'key') keyframes++;
      },
      error: (err) => (error = describe(err)),
    });
    try {
      encoder.configure(config);
      const canvas = document.createElement('canvas');
      canvas.width = 1280;
      canvas.height = 720;
      const ctx = canvas.getContext('2d')!;
      for (let i = 0; i < ENCODE_FRAMES; i++) {
        ctx.fillStyle = `hsl(${i * 24} 80% 50%)`;
        ctx.fillRect(0, 0, 1280, 720);
        ctx.fillStyle = '#fff';
        ctx.fillRect(40 * i, 100, 200, 200);
        const frame = new VideoFrame(canvas, { timestamp: Math.round((i * 1e6) / 30) });
        encoder.encode(frame, { keyFrame: i === 0 });
        frame.close();
      }
      await encoder.flush();
    } catch (err) {
      error ??= describe(err);
    } finally {
      if (encoder.state !== 'closed') encoder.close();
    }
    const reordered = timestamps.some((t, i) => i > 0 && t < timestamps[i - 1]!);
    return { supported, constant, chunks: timestamps.length, keyframes, reordered, ...(error === undefined ? {} : { error }) };
  }

  let videoEncoder: Record<string, EncodeTrial> | null = null;
  if (typeof VideoEncoder === 'function') {
    videoEncoder = {};
    for (const codec of avcProfiles) videoEncoder[codec] = await tryEncode(codec);
  }

  let audioEncoder: Record<string, boolean> | null = null;
  if (typeof AudioEncoder === 'function') {
    audioEncoder = {};
    for (const codec of ['mp4a.40.2', 'opus']) {
      const r = await AudioEncoder.isConfigSupported({ codec, sampleRate: 48_000, numberOfChannels: 2, bitrate: 128_000 }).catch(() => ({ supported: false }));
      audioEncoder[codec] = r.supported === true;
    }
  }

  const type = 'video/mp4; codecs="avc1.42E01F,mp4a.40.2"';
  const w = window as unknown as { MediaStreamTrackProcessor?: unknown; ManagedMediaSource?: { isTypeSupported(t: string): boolean }; MediaSource?: { isTypeSupported(t: string): boolean } };
  return {
    userAgent: navigator.userAgent,
    camera,
    microphone,
    videoEncoder,
    audioEncoder,
    mediaStreamTrackProcessor: typeof w.MediaStreamTrackProcessor === 'function',
    requestVideoFrameCallback: typeof HTMLVideoElement.prototype.requestVideoFrameCallback === 'function',
    audioWorklet: typeof AudioWorkletNode === 'function',
    mediaSource: w.MediaSource === undefined ? null : w.MediaSource.isTypeSupported(type),
    managedMediaSource: w.ManagedMediaSource === undefined ? null : w.ManagedMediaSource.isTypeSupported(type),
  };
}

/**
 * Runs in the page; self-contained. Adds a button that asks getDisplayMedia for video and audio
 * when clicked (engines want a user gesture); the driver clicks it, then reads the outcome
 * from the button's data-result.
 */
export function addDisplayMediaButton(): void {
  const button = document.createElement('button');
  button.textContent = 'Probe screen capture';
  button.style.cssText = 'position:fixed;top:0;left:0;z-index:99999';
  button.onclick = async () => {
    const md = navigator.mediaDevices as MediaDevices | undefined;
    if (md?.getDisplayMedia === undefined) {
      button.dataset['result'] = 'no getDisplayMedia';
      return;
    }
    try {
      const stream = await Promise.race([
        md.getDisplayMedia({ video: true, audio: true }),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 5 s')), 5000)),
      ]);
      button.dataset['result'] = `tracks: ${stream.getTracks().map((t) => t.kind).join('+') || 'none'}`;
      for (const t of stream.getTracks()) t.stop();
    } catch (err) {
      button.dataset['result'] = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
  };
  document.body.append(button);
}

import { hasTrackProcessor } from './capture.js';

/** What this browser offers the studio, found out on load, before anything is asked of the user. */
export interface Capabilities {
  /** https or localhost: browsers give the camera and WebCodecs to nothing else. */
  secure: boolean;
  camera: boolean;
  /** WebCodecs' VideoEncoder exists. */
  videoEncoder: boolean;
  /** The first H.264 codec string of the preset's list the encoder accepts, if any. */
  h264: string | undefined;
  /** How AAC is encoded: by the browser, by the WASM encoder, or not at all. */
  aac: 'webcodecs' | 'wasm' | 'none';
  /** Frames reach the encode worker without the page (MediaStreamTrackProcessor): a hidden tab keeps full rate. */
  backgroundCapture: boolean;
  screen: boolean;
}

/** What the page should say: a reason it cannot go live at all, and what works differently here. */
export interface CapabilityReport {
  blocking: string | undefined;
  notes: string[];
}

const BETTER = 'a current Chrome, Edge, Safari or Firefox';

async function h264Codec(codecs: readonly string[], width: number, height: number): Promise<string | undefined> {
  if (typeof VideoEncoder === 'undefined') return undefined;
  for (const codec of codecs) {
    try {
      const { supported } = await VideoEncoder.isConfigSupported({ codec, width, height, bitrate: 2_500_000, framerate: 30, avc: { format: 'avc' } });
      if (supported === true) return codec;
    } catch {
      // The next one.
    }
  }
  return undefined;
}

async function aacEncoder(): Promise<Capabilities['aac']> {
  if (typeof AudioEncoder !== 'undefined') {
    try {
      const { supported } = await AudioEncoder.isConfigSupported({ codec: 'mp4a.40.2', sampleRate: 48_000, numberOfChannels: 2, bitrate: 128_000 });
      if (supported === true) return 'webcodecs';
    } catch {
      // Falls back to the WASM encoder below.
    }
  }
  return typeof WebAssembly === 'object' ? 'wasm' : 'none';
}

/** Finds out what the studio can do here; `codecs` is the quality preset's H.264 list. */
export async function detectCapabilities(codecs: readonly string[], width: number, height: number): Promise<Capabilities> {
  const secure = globalThis.isSecureContext === true;
  const devices = typeof navigator !== 'undefined' ? navigator.mediaDevices : undefined;
  return {
    secure,
    camera: typeof devices?.getUserMedia === 'function',
    videoEncoder: typeof VideoEncoder !== 'undefined',
    h264: await h264Codec(codecs, width, height),
    aac: await aacEncoder(),
    backgroundCapture: hasTrackProcessor(),
    screen: typeof devices?.getDisplayMedia === 'function',
  };
}

/** One plain sentence for what stops the studio here, and notes for what works differently. */
export function reportCapabilities(c: Capabilities, location: { protocol: string; host: string; port: string }): CapabilityReport {
  const notes: string[] = [];
  let blocking: string | undefined;
  if (!c.secure || !c.camera) {
    const port = location.port === '' ? '' : `:${location.port}`;
    blocking = !c.secure
      ? `The studio needs a secure page, and ${location.protocol}//${location.host} is not one: browsers give the camera and the video encoder only to https and to localhost. Open it as http://localhost${port}/ on the computer running onair, or serve it over https.`
      : `This browser gives this page no camera or microphone (no navigator.mediaDevices): use ${BETTER}.`;
  } else if (!c.videoEncoder) {
    blocking = `This browser cannot encode video in the page (no WebCodecs VideoEncoder): use ${BETTER}.`;
  } else if (c.h264 === undefined) {
    blocking = `This browser's video encoder has no H.264, which RTMP servers need: use ${BETTER}.`;
  } else if (c.aac === 'none') {
    blocking = `This browser can encode neither AAC nor run WebAssembly, so the stream would have no sound: use ${BETTER}.`;
  }
  if (!c.backgroundCapture) {
    notes.push('Keep this tab visible while live: this browser hands camera frames to the encoder through the page, and a hidden tab gets few of them (the stream keeps its frame rate by repeating frames). Chrome and Edge keep full rate in the background.');
  }
  if (!c.screen) notes.push('Screen sharing is not available in this browser.');
  return { blocking, notes };
}

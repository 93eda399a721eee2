import { hasTrackProcessor } from './capture.js';
import { supportedConfigs, type H264Settings } from './h264-encoder.js';

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

/** What the page can tell without asking anything of the browser's media stack. */
export function detectPage(): Omit<Capabilities, 'h264' | 'aac'> {
  const devices = typeof navigator !== 'undefined' ? navigator.mediaDevices : undefined;
  return {
    secure: globalThis.isSecureContext === true,
    camera: typeof devices?.getUserMedia === 'function',
    videoEncoder: typeof VideoEncoder !== 'undefined',
    backgroundCapture: hasTrackProcessor(),
    screen: typeof devices?.getDisplayMedia === 'function',
  };
}

/**
 * The encoders for `preset`, asked exactly what going live will ask. Call it once the camera is
 * open: WebKitGTK's page crashed when asked about encoders before any getUserMedia.
 */
export async function detectEncoders(preset: H264Settings): Promise<Pick<Capabilities, 'h264' | 'aac'>> {
  return {
    h264: typeof VideoEncoder === 'undefined' ? undefined : (await supportedConfigs(preset))[0]?.codec,
    aac: await aacEncoder(),
  };
}

/** One plain sentence for what stops the studio here, and notes for what works differently. */
export function reportCapabilities(c: Capabilities, location: { protocol: string; host: string; port: string }): CapabilityReport {
  const notes: string[] = [];
  let blocking: string | undefined;
  if (!c.secure || !c.camera) {
    const port = location.port === '' ? '' : `:${location.port}`;
    blocking = !c.secure
      ? `The studio needs a secure page, and ${location.protocol}//${location.host} is not one: browsers give the camera and the video encoder only to https and to localhost. Open it as http://localhost${port}/ on the computer running onair, or serve it over https (onair serve --tls-cert FILE --tls-key FILE, or behind an https reverse proxy).`
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

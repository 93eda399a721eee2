export interface VideoPreset {
  id: string;
  label: string;
  width: number;
  height: number;
  fps: number;
  bitrate: number;
  /** H.264 codec strings to try in order: the profile/level that fits first, baseline last. */
  codecs: readonly string[];
}

export const VIDEO_PRESETS: readonly VideoPreset[] = [
  { id: '720p30', label: '720p30 · 2.5 Mbps', width: 1280, height: 720, fps: 30, bitrate: 2_500_000, codecs: ['avc1.4D401F', 'avc1.42E01F', 'avc1.640028'] },
  { id: '1080p30', label: '1080p30 · 4.5 Mbps', width: 1920, height: 1080, fps: 30, bitrate: 4_500_000, codecs: ['avc1.4D4028', 'avc1.640028', 'avc1.42E028'] },
  { id: '1080p60', label: '1080p60 · 6 Mbps', width: 1920, height: 1080, fps: 60, bitrate: 6_000_000, codecs: ['avc1.4D402A', 'avc1.64002A', 'avc1.42E02A'] },
  { id: '480p30', label: '480p30 · 1 Mbps', width: 854, height: 480, fps: 30, bitrate: 1_000_000, codecs: ['avc1.4D401E', 'avc1.42E01E', 'avc1.4D401F'] },
];

export const DEFAULT_PRESET_ID = '720p30';

/**
 * The H.264 profile: `auto` takes the preset's list and prefers what keeps presentation order
 * (the lowest latency); the others ask for that profile (High and Main may bring B-frames, which
 * look better at the same bitrate and add their reorder delay).
 */
export type H264Profile = 'auto' | 'baseline' | 'main' | 'high';

export const H264_PROFILES: readonly { id: H264Profile; label: string }[] = [
  { id: 'auto', label: 'Automatic (lowest latency)' },
  { id: 'baseline', label: 'Baseline' },
  { id: 'main', label: 'Main' },
  { id: 'high', label: 'High' },
];

const PROFILE_IDC: Record<Exclude<H264Profile, 'auto'>, string> = { baseline: '42E0', main: '4D40', high: '6400' };

/** The codec strings to try for `preset` with `profile`: the preset's own levels, that profile only. */
export function codecsFor(preset: VideoPreset, profile: H264Profile): readonly string[] {
  if (profile === 'auto') return preset.codecs;
  const level = (preset.codecs[0] ?? 'avc1.4D401F').slice(-2);
  return [`avc1.${PROFILE_IDC[profile]}${level}`];
}
export const KEYFRAME_INTERVAL_S = 2;

export const AUDIO = { sampleRate: 48_000, channels: 2, bitrate: 128_000 } as const;

/** What a platform takes, from its published ingest requirements (../shared/notes/rtmp.md "Platforms"). */
export interface PlatformLimits {
  /** Highest video bitrate, bits per second. */
  maxVideoBitrate: number;
  maxWidth: number;
  maxHeight: number;
  maxFps: number;
  /** The keyframe interval the platform asks for, in seconds. */
  keyframeIntervalS: number;
  /** AAC-LC sample rates it takes. */
  sampleRates: readonly number[];
}

export interface PlatformPreset {
  id: string;
  label: string;
  /** The ingest URL (RTMPS where the platform offers it); empty for a custom server. */
  server: string;
  /** Where the stream key is, in one line, and the dashboard's address (shown, never fetched). */
  keyHelp?: { where: string; url: string };
  limits?: PlatformLimits;
  /** What "live" on this page means there: the server took the stream; the platform may want more. */
  liveNote?: string;
}

const AAC_RATES = [44_100, 48_000] as const;

/** Ingest URLs and limits published by each platform; the stream key comes from its dashboard. */
export const PLATFORMS: readonly PlatformPreset[] = [
  {
    id: 'twitch',
    label: 'Twitch',
    server: 'rtmps://live.twitch.tv:443/app',
    keyHelp: { where: 'Creator Dashboard → Settings → Stream → Primary Stream key → Copy', url: 'https://dashboard.twitch.tv/settings/stream' },
    limits: { maxVideoBitrate: 6_000_000, maxWidth: 1920, maxHeight: 1080, maxFps: 60, keyframeIntervalS: 2, sampleRates: AAC_RATES },
    liveNote: 'Live here means Twitch accepted the stream: it is on your channel within a few seconds.',
  },
  {
    id: 'youtube',
    label: 'YouTube',
    server: 'rtmps://a.rtmps.youtube.com:443/live2',
    keyHelp: { where: 'YouTube Studio → Create → Go live → Stream → Stream key → Copy', url: 'https://studio.youtube.com' },
    limits: { maxVideoBitrate: 51_000_000, maxWidth: 3840, maxHeight: 2160, maxFps: 60, keyframeIntervalS: 2, sampleRates: AAC_RATES },
    liveNote: 'Live here means YouTube accepted the stream; unless Auto-start is on, press Go live in YouTube Studio too.',
  },
  {
    id: 'facebook',
    label: 'Facebook',
    server: 'rtmps://live-api-s.facebook.com:443/rtmp',
    keyHelp: { where: 'Live Producer → Go live → Streaming software → Stream key → Copy', url: 'https://www.facebook.com/live/producer' },
    limits: { maxVideoBitrate: 9_000_000, maxWidth: 1920, maxHeight: 1080, maxFps: 60, keyframeIntervalS: 2, sampleRates: AAC_RATES },
    liveNote: 'Live here means Facebook accepted the stream; press Go live in Live Producer to show it to viewers.',
  },
  { id: 'custom', label: 'Custom RTMP/RTMPS', server: '' },
];

export function platformById(id: string): PlatformPreset | undefined {
  return PLATFORMS.find((p) => p.id === id);
}

/** What the studio sends, as the platform limits see it. */
export interface OutputQuality {
  width: number;
  height: number;
  fps: number;
  videoBitrate: number;
  keyframeIntervalS: number;
  sampleRate: number;
}

/** The platform's one-line summary of its limits. */
export function describeLimits(l: PlatformLimits): string {
  const rates = l.sampleRates.map((r) => `${r / 1000}`).join('/');
  return `up to ${l.maxVideoBitrate / 1e6} Mbps video, ${l.maxHeight}p${l.maxFps}, a keyframe every ${l.keyframeIntervalS} s, AAC ${rates} kHz`;
}

/** Every way `q` goes beyond what the platform takes, in words; empty when it fits. */
export function exceededLimits(l: PlatformLimits, q: OutputQuality): string[] {
  const out: string[] = [];
  if (q.videoBitrate > l.maxVideoBitrate) out.push(`${q.videoBitrate / 1e6} Mbps is over its ${l.maxVideoBitrate / 1e6} Mbps limit: choose a lower quality or bitrate`);
  if (q.width > l.maxWidth || q.height > l.maxHeight) out.push(`${q.width}×${q.height} is over its ${l.maxWidth}×${l.maxHeight}`);
  if (q.fps > l.maxFps) out.push(`${q.fps} fps is over its ${l.maxFps} fps`);
  if (q.keyframeIntervalS > l.keyframeIntervalS) out.push(`a keyframe every ${q.keyframeIntervalS} s is rarer than its ${l.keyframeIntervalS} s`);
  if (!l.sampleRates.includes(q.sampleRate)) out.push(`audio at ${q.sampleRate / 1000} kHz is not one it takes`);
  return out;
}

export function presetById(id: string): VideoPreset {
  return VIDEO_PRESETS.find((p) => p.id === id) ?? VIDEO_PRESETS[0]!;
}

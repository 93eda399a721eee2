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

export interface PlatformPreset {
  id: string;
  label: string;
  server: string;
}

/** Ingest URLs published by each platform; the stream key comes from the platform's dashboard. */
export const PLATFORMS: readonly PlatformPreset[] = [
  { id: 'twitch', label: 'Twitch', server: 'rtmp://live.twitch.tv/app' },
  { id: 'youtube', label: 'YouTube', server: 'rtmps://a.rtmps.youtube.com:443/live2' },
  { id: 'facebook', label: 'Facebook', server: 'rtmps://live-api-s.facebook.com:443/rtmp' },
  { id: 'custom', label: 'Custom RTMP/RTMPS', server: '' },
];

export function presetById(id: string): VideoPreset {
  return VIDEO_PRESETS.find((p) => p.id === id) ?? VIDEO_PRESETS[0]!;
}

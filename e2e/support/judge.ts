import type { ProbeStream as Stream } from '../../bridge/test/harness/judge.js';
import { runChecked, spawnTracked } from '../../bridge/test/harness/proc.js';

interface Packet {
  stream_index: number;
  pts_time?: string;
  dts_time?: string;
  size: string;
  flags: string;
}

/** What ffprobe sees in a recording, reduced to the numbers the studio promises. */
export interface RecordingReport {
  video: { codec: string; width: number; height: number; frames: number; durationS: number; bitrate: number; firstS: number; keyframeGapsS: number[] };
  audio: { codec: string; profile: string; sampleRate: number; channels: number; packets: number; firstS: number };
}

export async function probeRecording(file: string): Promise<RecordingReport> {
  const out = await runChecked(
    'ffprobe',
    ['-v', 'error', '-show_entries', 'stream=index,codec_type,codec_name,profile,width,height,sample_rate,channels:packet=stream_index,pts_time,dts_time,size,flags', '-of', 'json', file],
    { captureStdout: true, timeoutMs: 60_000 },
  );
  const parsed = JSON.parse(out.toString('utf8')) as { streams: Stream[]; packets: Packet[] };
  const v = parsed.streams.find((s) => s.codec_type === 'video');
  const a = parsed.streams.find((s) => s.codec_type === 'audio');
  if (v === undefined || a === undefined) throw new Error(`${file}: expected a video and an audio stream, got ${parsed.streams.map((s) => s.codec_type).join(', ')}`);
  const time = (p: Packet): number => Number(p.pts_time ?? p.dts_time);
  const vp = parsed.packets.filter((p) => p.stream_index === v.index);
  const ap = parsed.packets.filter((p) => p.stream_index === a.index);
  const vFirst = Math.min(...vp.map(time));
  const vLast = Math.max(...vp.map(time));
  const keys = vp.filter((p) => p.flags.startsWith('K')).map(time).sort((x, y) => x - y);
  const durationS = vLast - vFirst + 1 / 30;
  const videoBytes = vp.reduce((sum, p) => sum + Number(p.size), 0);
  return {
    video: {
      codec: v.codec_name,
      width: v.width ?? 0,
      height: v.height ?? 0,
      frames: vp.length,
      durationS,
      bitrate: (videoBytes * 8) / durationS,
      firstS: vFirst,
      keyframeGapsS: keys.slice(1).map((k, i) => k - keys[i]!),
    },
    audio: {
      codec: a.codec_name,
      profile: a.profile ?? '',
      sampleRate: Number(a.sample_rate),
      channels: a.channels ?? 0,
      packets: ap.length,
      firstS: Math.min(...ap.map(time)),
    },
  };
}

/** Mean volume of the audio track in dB (ffmpeg volumedetect); digital silence is about -91 dB. */
export async function meanVolumeDb(file: string): Promise<number> {
  const child = spawnTracked('ffmpeg', ['-hide_banner', '-nostdin', '-i', file, '-map', '0:a', '-af', 'volumedetect', '-f', 'null', '-'], { keepLines: 400 });
  const exit = await child.exited;
  const mean = /mean_volume: (-?[\d.]+) dB/.exec(child.tail());
  if (exit.code !== 0 || mean === null) throw new Error(`volumedetect on ${file} failed:\n${child.tail()}`);
  return Number(mean[1]);
}

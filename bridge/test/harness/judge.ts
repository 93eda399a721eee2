import { runChecked, spawnTracked } from './proc.js';

/** One packet as ffmpeg's framemd5 muxer prints it; times in the stream time base (ms for FLV). */
export interface PacketLine {
  stream: number;
  dts: number;
  pts: number;
  duration: number;
  size: number;
  md5: string;
  /** md5 of each side data block; FLV yields one when a sequence header is repeated mid-stream. */
  sideData: string[];
}

export interface FrameMd5 {
  file: string;
  /** Stream index → media type (`video`, `audio`, …). */
  mediaTypes: Map<number, string>;
  /** Stream index → md5 of the codec configuration (avcC, AudioSpecificConfig). */
  extradata: Map<number, string>;
  packets: PacketLine[];
}

/**
 * Every packet of every stream, copied (never decoded) through ffmpeg's framemd5 muxer.
 * `-copyts` keeps the file's own timestamps instead of shifting the first one to 0.
 */
export async function framemd5(file: string): Promise<FrameMd5> {
  const out = await runChecked(
    'ffmpeg',
    ['-hide_banner', '-nostdin', '-loglevel', 'error', '-i', file, '-map', '0', '-c', 'copy', '-copyts', '-f', 'framemd5', '-'],
    { captureStdout: true },
  );
  const result: FrameMd5 = { file, mediaTypes: new Map(), extradata: new Map(), packets: [] };
  for (const line of out.toString('utf8').split('\n')) {
    const media = /^#media_type (\d+): (\w+)/.exec(line);
    if (media) result.mediaTypes.set(Number(media[1]), media[2] ?? '');
    const extra = /^#extradata (\d+),\s*\d+,\s*([0-9a-f]{32})/.exec(line);
    if (extra) result.extradata.set(Number(extra[1]), extra[2] ?? '');
    if (line.startsWith('#') || line.trim() === '') continue;
    // stream, dts, pts, duration, size, md5[, S=n, size, md5 (n times)]
    const f = line.split(',').map((s) => s.trim());
    const sides = f[6] === undefined ? 0 : Number(/^S=(\d+)$/.exec(f[6])?.[1] ?? NaN);
    if (f.length !== 6 + (sides > 0 ? 1 + 2 * sides : 0)) throw new Error(`framemd5 of ${file}: unexpected line "${line}"`);
    result.packets.push({
      stream: Number(f[0]),
      dts: Number(f[1]),
      pts: Number(f[2]),
      duration: Number(f[3]),
      size: Number(f[4]),
      md5: f[5] ?? '',
      sideData: Array.from({ length: sides }, (_, i) => f[8 + 2 * i] ?? ''),
    });
  }
  return result;
}

export interface ProbeStream {
  index: number;
  codec_type: string;
  codec_name: string;
  profile?: string;
  width?: number;
  height?: number;
  sample_rate?: string;
  channels?: number;
  extradata_hash?: string;
  /** With `decode: true`: frames the decoder produced. */
  nb_read_frames?: string;
}

/**
 * The streams ffprobe finds. With `decode: true` it decodes every frame (`-count_frames`) and
 * throws if the decoder logs any error.
 */
export async function ffprobeStreams(file: string, options: { decode?: boolean } = {}): Promise<ProbeStream[]> {
  const child = spawnTracked(
    'ffprobe',
    [
      '-hide_banner', '-loglevel', 'error',
      ...(options.decode === true ? ['-count_frames'] : []),
      '-show_streams', '-show_data_hash', 'md5', '-of', 'json', file,
    ],
    { captureStdout: true },
  );
  const exit = await child.exited;
  // With captureStdout, tail() holds stderr only: at loglevel error, any line is a failure.
  if (exit.code !== 0 || child.tail().trim() !== '') {
    throw new Error(`ffprobe ${options.decode === true ? 'decoding ' : ''}${file} failed (exit ${exit.code ?? exit.signal}):\n${child.tail()}`);
  }
  const parsed = JSON.parse(child.stdout().toString('utf8')) as { streams?: ProbeStream[] };
  return parsed.streams ?? [];
}

export type TimestampCheck =
  /** dts and pts must be equal. */
  | 'exact'
  /** dts and pts must be equal after subtracting each file's first dts. */
  | 'relative'
  /** Only payload (md5, size) and order per stream. */
  | 'ignore';

export interface PacketComparison {
  equal: boolean;
  /** Human-readable: counts per stream and the first differences. */
  summary: string;
}

function origin(p: FrameMd5): number {
  return p.packets.reduce((min, x) => Math.min(min, x.dts), Number.POSITIVE_INFINITY);
}

/** Packets, configuration md5 and side data of the first stream of `type` in `f`. */
function track(f: FrameMd5, type: string): { packets: PacketLine[]; config: string | undefined } | undefined {
  const index = [...f.mediaTypes].find(([, t]) => t === type)?.[0];
  if (index === undefined) return undefined;
  return { packets: f.packets.filter((p) => p.stream === index), config: f.extradata.get(index) };
}

/**
 * Compares the audio and video tracks of two files packet by packet (order within a track must
 * match; stream numbering and interleaving may differ; data streams are ignored). Codec
 * configuration must match too. Durations are not compared: FLV does not store them.
 */
export function comparePackets(expected: FrameMd5, actual: FrameMd5, timestamps: TimestampCheck = 'exact'): PacketComparison {
  const problems: string[] = [];
  const counts: string[] = [];
  const shiftE = timestamps === 'relative' ? origin(expected) : 0;
  const shiftA = timestamps === 'relative' ? origin(actual) : 0;
  for (const type of ['video', 'audio']) {
    const te = track(expected, type);
    const ta = track(actual, type);
    if (te === undefined && ta === undefined) continue;
    if (te === undefined || ta === undefined) {
      problems.push(`${type}: ${te === undefined ? 'not expected but present' : 'missing'}`);
      continue;
    }
    if (te.config !== ta.config) problems.push(`${type}: codec configuration md5 ${te.config} expected, got ${ta.config}`);
    const e = te.packets;
    const a = ta.packets;
    counts.push(`${type} ${a.length}/${e.length}`);
    if (e.length !== a.length) problems.push(`${type}: ${e.length} packets expected, got ${a.length}`);
    // A sequence header repeated with the same bytes becomes side data equal to the track's
    // configuration (nginx-rtmp's recorder writes the AAC one twice); it carries nothing new.
    const news = (p: PacketLine, config: string | undefined): string => p.sideData.filter((md5) => md5 !== config).join(' ');
    let shown = 0;
    let differing = 0;
    for (let i = 0; i < Math.min(e.length, a.length); i++) {
      const pe = e[i];
      const pa = a[i];
      if (pe === undefined || pa === undefined) break;
      const why: string[] = [];
      if (pe.md5 !== pa.md5 || pe.size !== pa.size) why.push(`payload ${pe.size} B ${pe.md5.slice(0, 8)} vs ${pa.size} B ${pa.md5.slice(0, 8)}`);
      if (news(pe, te.config) !== news(pa, ta.config)) why.push(`side data [${pe.sideData.join(' ')}] vs [${pa.sideData.join(' ')}]`);
      if (timestamps !== 'ignore') {
        if (pe.dts - shiftE !== pa.dts - shiftA) why.push(`dts ${pe.dts - shiftE} vs ${pa.dts - shiftA}`);
        if (pe.pts - shiftE !== pa.pts - shiftA) why.push(`pts ${pe.pts - shiftE} vs ${pa.pts - shiftA}`);
      }
      if (why.length === 0) continue;
      differing++;
      if (shown++ < 5) problems.push(`${type} packet ${i}: ${why.join(', ')}`);
    }
    if (differing > shown) problems.push(`${type}: ${differing - shown} more differing packets`);
  }
  const head = `${actual.file} vs ${expected.file} (packets got/expected: ${counts.join(', ')}; timestamps ${timestamps})`;
  return { equal: problems.length === 0, summary: problems.length === 0 ? `${head}: identical` : `${head}:\n  ${problems.join('\n  ')}` };
}

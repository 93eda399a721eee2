/**
 * The Node test harness (bridge/test/harness) for web tests. Vitest runs them in Node, but the web
 * workspace is type-checked without Node's typings, so the harness and Node's modules are imported
 * by name at run time and typed here, with the subset the web tests use. Tests only: nothing in
 * the app imports this.
 */

const HARNESS = '../../../../bridge/test/harness/';

export interface PacketLine {
  stream: number;
  dts: number;
  pts: number;
  size: number;
  md5: string;
}

export interface FrameMd5 {
  mediaTypes: Map<number, string>;
  extradata: Map<number, string>;
  packets: PacketLine[];
}

export interface PacketComparison {
  equal: boolean;
  summary: string;
}

export interface ProbeStream {
  codec_type: string;
  codec_name: string;
  nb_read_frames?: string;
}

export interface NginxRtmp {
  url(app: string, name: string): string;
  recordingDone(name: string, timeoutMs?: number): Promise<string>;
  dispose(): Promise<void>;
}

export interface OnairResult {
  code: number | null;
  stderr: string;
}

export interface Harness {
  /** Runs a command to completion; its stdout (with `captureStdout`), else throws with its output. */
  runChecked(command: string, args: readonly string[], options?: { captureStdout?: boolean; timeoutMs?: number }): Promise<Uint8Array>;
  /** A directory removed when the test process ends. */
  makeTempDir(prefix: string): string;
  /** Every packet, copied through ffmpeg's framemd5 muxer with the file's own timestamps. */
  framemd5(file: string): Promise<FrameMd5>;
  /** Two files' audio and video packets, payloads and configuration, timestamps as asked. */
  comparePackets(expected: FrameMd5, actual: FrameMd5, timestamps?: 'exact' | 'relative' | 'ignore'): PacketComparison;
  /** ffprobe's streams; with `decode`, every frame decoded and any decoder error thrown. */
  ffprobeStreams(file: string, options?: { decode?: boolean }): Promise<ProbeStream[]>;
  startNginxRtmp(options?: { record?: boolean }): Promise<NginxRtmp>;
  runOnair(args: readonly string[], options?: { timeoutMs?: number }): Promise<OnairResult>;
  readFile(path: string): Uint8Array;
  writeFile(path: string, data: Uint8Array): void;
  md5(data: Uint8Array): string;
}

let loaded: Promise<Harness> | undefined;

async function load(): Promise<Harness> {
  const module = async <T>(name: string): Promise<T> => (await import(/* @vite-ignore */ name)) as T;
  const [proc, judge, nginx, run, fs, crypto] = await Promise.all([
    module<Pick<Harness, 'runChecked' | 'makeTempDir'>>(`${HARNESS}proc.js`),
    module<Pick<Harness, 'framemd5' | 'comparePackets' | 'ffprobeStreams'>>(`${HARNESS}judge.js`),
    module<Pick<Harness, 'startNginxRtmp'>>(`${HARNESS}nginx.js`),
    module<Pick<Harness, 'runOnair'>>(`${HARNESS}run.js`),
    module<{ readFileSync(path: string): Uint8Array; writeFileSync(path: string, data: Uint8Array): void }>('node:fs'),
    module<{ createHash(algorithm: string): { update(data: Uint8Array): { digest(encoding: 'hex'): string } } }>('node:crypto'),
  ]);
  return {
    runChecked: proc.runChecked,
    makeTempDir: proc.makeTempDir,
    framemd5: judge.framemd5,
    comparePackets: judge.comparePackets,
    ffprobeStreams: judge.ffprobeStreams,
    startNginxRtmp: nginx.startNginxRtmp,
    runOnair: run.runOnair,
    readFile: (path) => fs.readFileSync(path),
    writeFile: (path, data) => fs.writeFileSync(path, data),
    md5: (data) => crypto.createHash('md5').update(data).digest('hex'),
  };
}

export function harness(): Promise<Harness> {
  loaded ??= load();
  return loaded;
}

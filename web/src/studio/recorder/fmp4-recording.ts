import { fragment, initSegment, parseAvcC, type Fmp4Sample } from '@onair/shared';
import { DecodeTimes } from '../../lib/decode-times.js';

/** What the recording holds: the program's video and audio as the encoders make them. */
export interface RecordingFormat {
  width: number;
  height: number;
  fps: number;
  sampleRate: number;
  channels: number;
  /** AudioSpecificConfig of the AAC track. */
  asc: Uint8Array;
}

export interface RecordingLimits {
  /** A fragment is cut at every keyframe, and at least this often (µs): what a crash can lose. */
  fragmentUs: number;
  /** AAC frames held while waiting for the first keyframe. */
  maxHeldAudio: number;
}

export const DEFAULT_RECORDING_LIMITS: RecordingLimits = { fragmentUs: 1_000_000, maxHeldAudio: 200 };

const VIDEO_TRACK = 1;
const AUDIO_TRACK = 2;
/** 90 kHz: frame times at 24, 25, 30, 50 and 60 fps are whole ticks. */
const VIDEO_TIMESCALE = 90_000;
const AAC_FRAME = 1024;

interface Pending {
  /** Decode time, ticks from the recording's origin. */
  dts: number;
  cts: number;
  key: boolean;
  data: Uint8Array;
}

/**
 * A fragmented MP4 of the encoders' own chunks (no second encode), written as it goes: the init
 * segment once the first keyframe is in, then, at every keyframe and at least every
 * `fragmentUs`, one fragment per track. Every prefix that ends on a fragment is a playable file,
 * which is what survives a crash. Sans-I/O: chunks in, bytes to append out.
 *
 * Video starts at the first keyframe (time 0); audio before it is dropped, audio that arrives
 * before it is held. A sample's duration is the time to the next one, so a gap in either track
 * stays a gap. A keyframe whose avcC differs from the init segment's carries its new parameter
 * sets in-band, which decoders follow.
 */
export class Fmp4Recording {
  readonly #f: RecordingFormat;
  readonly #limits: RecordingLimits;
  readonly #decode: DecodeTimes;
  #avcC: Uint8Array | undefined;
  /** The avcC the init segment announced. */
  #initAvcC: Uint8Array | undefined;
  #originUs: number | undefined;
  #held: { data: Uint8Array; timestampUs: number }[] = [];
  #video: Pending[] = [];
  #audio: Pending[] = [];
  #sequence = 1;
  #fragmentStartUs = 0;
  #lastPtsUs = 0;
  #bytes = 0;
  #videoFrames = 0;
  #audioFrames = 0;
  #finished = false;

  constructor(format: RecordingFormat, avcC: Uint8Array | undefined, limits: RecordingLimits = DEFAULT_RECORDING_LIMITS) {
    this.#f = format;
    this.#limits = limits;
    this.#avcC = avcC;
    this.#decode = new DecodeTimes({ frameDurationUs: 1e6 / format.fps });
  }

  /** Bytes handed out so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Video frames in the recording, written or about to be. */
  get videoFrames(): number {
    return this.#videoFrames;
  }

  get audioFrames(): number {
    return this.#audioFrames;
  }

  /** Time from the first keyframe to the end of the newest frame, µs. */
  get durationUs(): number {
    return this.#originUs === undefined ? 0 : this.#lastPtsUs - this.#originUs + 1e6 / this.#f.fps;
  }

  /** An encoded video chunk (`ptsUs` on the session clock) and, when it announces one, its avcC. */
  video(data: Uint8Array, key: boolean, ptsUs: number, avcC?: Uint8Array): Uint8Array[] {
    if (this.#finished) return [];
    if (avcC !== undefined) this.#avcC = avcC;
    const out: Uint8Array[] = [];
    if (this.#originUs === undefined) {
      if (!key || this.#avcC === undefined) return out;
      this.#originUs = ptsUs;
      this.#initAvcC = this.#avcC;
      this.#fragmentStartUs = ptsUs;
      out.push(this.#emit(this.#init()));
      for (const a of this.#held) out.push(...this.audio(a.data, a.timestampUs));
      this.#held = [];
    }
    const origin = this.#originUs;
    if (ptsUs < origin) return out;
    const dtsUs = this.#decode.next(ptsUs, key);
    if (dtsUs === undefined) return out;
    const dts = ticks(dtsUs - origin, VIDEO_TIMESCALE);
    const sample = key && this.#avcC !== this.#initAvcC ? withParameterSets(data, this.#avcC!) : data;
    this.#video.push({ dts, cts: ticks(ptsUs - origin, VIDEO_TIMESCALE) - dts, key, data: sample.slice() });
    this.#videoFrames++;
    this.#lastPtsUs = Math.max(this.#lastPtsUs, ptsUs);
    // Everything before this frame goes out, so fragments start at keyframes.
    if (key || ptsUs - this.#fragmentStartUs >= this.#limits.fragmentUs) {
      out.push(...this.#cut(false));
      this.#fragmentStartUs = ptsUs;
    }
    return out;
  }

  /** An AAC frame stamped on the session clock. */
  audio(data: Uint8Array, timestampUs: number): Uint8Array[] {
    if (this.#finished) return [];
    const origin = this.#originUs;
    if (origin === undefined) {
      if (this.#held.length >= this.#limits.maxHeldAudio) this.#held.shift();
      this.#held.push({ data: data.slice(), timestampUs });
      return [];
    }
    if (timestampUs < origin) return [];
    this.#audio.push({ dts: ticks(timestampUs - origin, this.#f.sampleRate), cts: 0, key: true, data: data.slice() });
    this.#audioFrames++;
    return [];
  }

  /** Everything still held, the last samples with their nominal durations; nothing after it. */
  finish(): Uint8Array[] {
    if (this.#finished) return [];
    const out = this.#originUs === undefined ? [] : this.#cut(true);
    this.#finished = true;
    return out;
  }

  #init(): Uint8Array {
    const f = this.#f;
    return initSegment([
      { kind: 'video', id: VIDEO_TRACK, timescale: VIDEO_TIMESCALE, width: f.width, height: f.height, avcC: this.#avcC! },
      { kind: 'audio', id: AUDIO_TRACK, timescale: f.sampleRate, sampleRate: f.sampleRate, channels: f.channels, asc: f.asc },
    ]);
  }

  /** A fragment per track of what is pending; without `all` the newest sample of each waits for its duration. */
  #cut(all: boolean): Uint8Array[] {
    const out: Uint8Array[] = [];
    const video = this.#take(this.#video, all, Math.round(VIDEO_TIMESCALE / this.#f.fps));
    if (video !== undefined) out.push(this.#emit(fragment({ trackId: VIDEO_TRACK, sequence: this.#sequence++, baseDecodeTime: video[0]!.dts, samples: video.map(sampleOf) })));
    const audio = this.#take(this.#audio, all, AAC_FRAME);
    if (audio !== undefined) out.push(this.#emit(fragment({ trackId: AUDIO_TRACK, sequence: this.#sequence++, baseDecodeTime: audio[0]!.dts, samples: audio.map(sampleOf) })));
    return out;
  }

  /** Takes the samples ready to write from `queue`, each with its duration in `cts`' place. */
  #take(queue: Pending[], all: boolean, lastDuration: number): (Pending & { duration: number })[] | undefined {
    const n = all ? queue.length : queue.length - 1;
    if (n <= 0) return undefined;
    const taken = queue.splice(0, n);
    const next = queue[0];
    return taken.map((s, i) => ({ ...s, duration: Math.max(0, (taken[i + 1] ?? next)?.dts ?? s.dts + lastDuration) - s.dts }));
  }

  #emit(bytes: Uint8Array): Uint8Array {
    this.#bytes += bytes.length;
    return bytes;
  }
}

function ticks(us: number, timescale: number): number {
  return Math.round((us * timescale) / 1e6);
}

function sampleOf(s: Pending & { duration: number }): Fmp4Sample {
  return { duration: s.duration, keyframe: s.key, cts: s.cts, data: s.data };
}

/** A keyframe with the SPS and PPS of `avcC` in front, as NAL units with its length size. */
function withParameterSets(data: Uint8Array, avcC: Uint8Array): Uint8Array {
  const config = parseAvcC(avcC);
  const nals = [...config.sps, ...config.pps];
  const size = config.lengthSize;
  const out = new Uint8Array(nals.reduce((n, nal) => n + size + nal.length, data.length));
  let at = 0;
  for (const nal of nals) {
    for (let i = size - 1; i >= 0; i--) out[at++] = (nal.length >>> (8 * i)) & 0xff;
    out.set(nal, at);
    at += nal.length;
  }
  out.set(data, at);
  return out;
}

/** Reads `length` bytes of a file at `offset` (fewer at its end). */
export type ReadAt = (offset: number, length: number) => Promise<Uint8Array>;

/**
 * How much of a recording cut short (a crash, a closed tab, a full disk) is a playable file: up
 * to the end of its last whole fragment, reading only box headers. 0 when not even the init
 * segment is whole.
 */
export async function playableLength(size: number, read: ReadAt): Promise<number> {
  let at = 0;
  let good = 0;
  let sawMoov = false;
  while (at + 8 <= size) {
    const head = await read(at, 16);
    if (head.length < 8) break;
    const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
    let boxSize = view.getUint32(0);
    const type = String.fromCharCode(head[4]!, head[5]!, head[6]!, head[7]!);
    if (boxSize === 1) {
      if (head.length < 16) break;
      boxSize = view.getUint32(8) * 0x100000000 + view.getUint32(12);
    }
    if (boxSize < 8 || at + boxSize > size) break;
    at += boxSize;
    if (type === 'moov') sawMoov = true;
    if (sawMoov && (type === 'moov' || type === 'mdat')) good = at;
  }
  return good;
}

import { amf0Props, type Amf0Object } from '../amf/amf0.js';
import { aacCodecString, parseAudioSpecificConfig } from '../codec/aac.js';
import { avcCodecString, parseAvcC, parseSps } from '../codec/avc.js';
import { OnairError } from '../errors.js';
import {
  AacPacketType,
  AvcPacketType,
  ExVideoPacketType,
  SoundFormat,
  VideoCodecId,
  parseAudioBody,
  parseScriptBody,
  parseVideoBody,
} from '../flv/flv-media.js';
import { FlvTagType, type FlvTag } from '../flv/flv-tag.js';
import { fragment, initSegment } from '../mp4/fmp4-writer.js';

/**
 * FLV tags in, fragmented MP4 out, one fragment per frame so nothing waits: the live edge is the
 * last tag received. A sans-I/O core: the player feeds it tags and appends what it returns to one
 * SourceBuffer per track.
 */

export type RemuxTrackKind = 'video' | 'audio';

export interface RemuxTrack {
  kind: RemuxTrackKind;
  /** RFC 6381, e.g. 'avc1.42E01F' or 'mp4a.40.2'. */
  codec: string;
  /** For MediaSource.isTypeSupported and addSourceBuffer: 'video/mp4; codecs="avc1.42E01F"'. */
  mimeType: string;
  /** ftyp + moov for this track alone. */
  init: Uint8Array;
  width?: number;
  height?: number;
  sampleRate?: number;
  channels?: number;
}

export type RemuxEvent =
  /** The track set is known: create one SourceBuffer per track, then append each init. */
  | { kind: 'tracks'; tracks: RemuxTrack[] }
  /** A track's configuration changed mid-stream (new sequence header): append the new init. */
  | { kind: 'init'; track: RemuxTrack }
  /** One moof + mdat; times in seconds on the output timeline. */
  | { kind: 'media'; track: RemuxTrackKind; data: Uint8Array; start: number; end: number; keyframe: boolean; bytes: number }
  | { kind: 'metadata'; value: Amf0Object };

export interface RemuxOptions {
  /**
   * How long (in stream time) media of one track may flow while the other track's configuration
   * is still missing before the track set is fixed without it. MSE cannot add a SourceBuffer later.
   */
  trackWaitMs: number;
  /**
   * The same wait when onMetaData announced the missing track: a server like nginx-rtmp sends a
   * new player no video until the next keyframe, so this must exceed a GOP.
   */
  announcedTrackWaitMs: number;
  /** Video frame duration assumed until two frames have been seen. */
  defaultFrameMs: number;
  /** Tags held while the track set is unknown; beyond this the oldest are dropped. */
  maxPendingTags: number;
  /** Bytes of those tags; beyond this the oldest are dropped too (a tag may be 16 MiB). */
  maxPendingBytes: number;
  /** An input timestamp jump larger than this (either way) starts a new timeline segment. */
  maxJumpMs: number;
}

export const DEFAULT_REMUX_OPTIONS: RemuxOptions = {
  trackWaitMs: 1000,
  announcedTrackWaitMs: 5000,
  defaultFrameMs: 33,
  maxPendingTags: 1000,
  maxPendingBytes: 32 * 1024 * 1024,
  maxJumpMs: 10_000,
};

const VIDEO_TRACK_ID = 1;
const AUDIO_TRACK_ID = 2;
const AAC_FRAME_SAMPLES = 1024;
// Audio decode times follow a sample counter; a tag this far from it re-anchors the counter
// (a gap in the source), smaller differences are FLV's millisecond rounding.
const AUDIO_RESYNC_MS = 100;
// Gap left between two timeline segments so they never share a timestamp.
const SEGMENT_GAP_MS = 40;

interface VideoState {
  avcC: Uint8Array;
  track: RemuxTrack;
  sequence: number;
  lastDts: number | undefined;
  frameMs: number;
  needKeyframe: boolean;
}

interface AudioState {
  asc: Uint8Array;
  track: RemuxTrack;
  sequence: number;
  sampleRate: number;
  nextSample: number | undefined;
  /** End of the last frame output, in seconds: no later frame starts before it. */
  end: number;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class FlvToFmp4 {
  readonly #opts: RemuxOptions;
  #video: VideoState | undefined;
  #audio: AudioState | undefined;
  /** The track set handed to MSE, fixed once known. */
  #tracks: Set<RemuxTrackKind> | undefined;
  #pending: FlvTag[] = [];
  #pendingBytes = 0;
  #firstPendingTs: number | undefined;
  #metaHasVideo: boolean | undefined;
  #metaHasAudio: boolean | undefined;
  // Output ms = input ms − origin. Undefined: the next media tag starts a new segment.
  #origin: number | undefined;
  #lastIn: number | undefined;
  #lastOut: number | undefined;

  constructor(opts: Partial<RemuxOptions> = {}) {
    this.#opts = { ...DEFAULT_REMUX_OPTIONS, ...opts };
  }

  /** Track kinds given to MSE, once fixed. */
  get tracks(): readonly RemuxTrackKind[] {
    return this.#tracks === undefined ? [] : [...this.#tracks];
  }

  /**
   * The next tags continue after everything output so far, whatever their timestamps (a new
   * connection); video resumes at a keyframe.
   */
  discontinuity(): void {
    this.#origin = undefined;
    this.#lastIn = undefined;
    if (this.#video !== undefined) this.#video.needKeyframe = true;
    if (this.#audio !== undefined) this.#audio.nextSample = undefined;
  }

  /** Throws OnairError for a malformed tag; the remuxer stays usable for the next one. */
  push(tag: FlvTag): RemuxEvent[] {
    const out: RemuxEvent[] = [];
    if (tag.type === FlvTagType.Script) {
      this.#script(tag, out);
      return out;
    }
    let config: boolean;
    if (tag.type === FlvTagType.Video) config = this.#videoConfig(tag, out);
    else if (tag.type === FlvTagType.Audio) config = this.#audioConfig(tag, out);
    else return out;
    if (this.#tracks === undefined) {
      // Only media timestamps measure the wait: servers stamp configuration tags with anything.
      if (!config) this.#hold(tag);
      this.#tryFixTracks(out);
      return out;
    }
    if (config) return out;
    this.#media(tag, out);
    return out;
  }

  #script(tag: FlvTag, out: RemuxEvent[]): void {
    const { name, value } = parseScriptBody(tag.data);
    if (name !== 'onMetaData') return;
    const props = amf0Props(value);
    if (props === undefined) return;
    // Writers that omit hasVideo/hasAudio still name the codec of every track they carry.
    const anyCodec = props['videocodecid'] !== undefined || props['audiocodecid'] !== undefined;
    const has = (key: string, codecKey: string): boolean | undefined => {
      const flag = props[key];
      if (typeof flag === 'boolean') return flag;
      const codec = props[codecKey];
      if (codec === undefined) return anyCodec ? false : undefined;
      return codec !== 0 && codec !== '';
    };
    this.#metaHasVideo = has('hasVideo', 'videocodecid');
    this.#metaHasAudio = has('hasAudio', 'audiocodecid');
    out.push({ kind: 'metadata', value: props });
  }

  /** Returns true when `tag` is a video sequence header. */
  #videoConfig(tag: FlvTag, out: RemuxEvent[]): boolean {
    const body = parseVideoBody(tag.data);
    const avc = body.codecId === VideoCodecId.Avc || body.fourcc === 'avc1';
    const header = body.codecId === VideoCodecId.Avc ? body.packetType === AvcPacketType.SequenceHeader : body.packetType === ExVideoPacketType.SequenceStart;
    if (!avc || !header) return false;
    if (this.#video !== undefined && sameBytes(this.#video.avcC, body.data)) return true;
    const avcC = body.data.slice();
    const config = parseAvcC(avcC);
    const sps = config.sps[0];
    if (sps === undefined) throw new OnairError('REMUX_BAD_CONFIG', 'AVC sequence header without an SPS');
    const { width, height } = parseSps(sps);
    const codec = avcCodecString(config);
    const track: RemuxTrack = {
      kind: 'video',
      codec,
      mimeType: `video/mp4; codecs="${codec}"`,
      init: initSegment([{ kind: 'video', id: VIDEO_TRACK_ID, timescale: 1000, width, height, avcC }]),
      width,
      height,
    };
    const previous = this.#video;
    this.#video = {
      avcC,
      track,
      sequence: previous?.sequence ?? 0,
      lastDts: previous?.lastDts,
      frameMs: previous?.frameMs ?? this.#opts.defaultFrameMs,
      needKeyframe: true,
    };
    if (this.#tracks?.has('video') === true) out.push({ kind: 'init', track });
    return true;
  }

  /** Returns true when `tag` is an audio sequence header. */
  #audioConfig(tag: FlvTag, out: RemuxEvent[]): boolean {
    const body = parseAudioBody(tag.data);
    if (body.soundFormat !== SoundFormat.Aac || body.packetType !== AacPacketType.SequenceHeader) return false;
    if (this.#audio !== undefined && sameBytes(this.#audio.asc, body.data)) return true;
    const asc = body.data.slice();
    const config = parseAudioSpecificConfig(asc);
    const channels = config.channels === 0 ? 2 : config.channels;
    const codec = aacCodecString(config);
    const track: RemuxTrack = {
      kind: 'audio',
      codec,
      mimeType: `audio/mp4; codecs="${codec}"`,
      init: initSegment([
        { kind: 'audio', id: AUDIO_TRACK_ID, timescale: config.sampleRate, sampleRate: config.sampleRate, channels, asc },
      ]),
      sampleRate: config.sampleRate,
      channels,
    };
    const previous = this.#audio;
    const sameRate = previous?.sampleRate === config.sampleRate;
    this.#audio = {
      asc,
      track,
      sequence: previous?.sequence ?? 0,
      sampleRate: config.sampleRate,
      nextSample: sameRate ? previous.nextSample : undefined,
      end: previous?.end ?? 0,
    };
    if (this.#tracks?.has('audio') === true) out.push({ kind: 'init', track });
    return true;
  }

  #hold(tag: FlvTag): void {
    this.#pending.push(tag);
    this.#pendingBytes += tag.data.length;
    while (this.#pending.length > this.#opts.maxPendingTags || this.#pendingBytes > this.#opts.maxPendingBytes) {
      this.#pendingBytes -= this.#pending.shift()!.data.length;
    }
    this.#firstPendingTs ??= tag.timestamp;
  }

  #tryFixTracks(out: RemuxEvent[]): void {
    const v = this.#video !== undefined;
    const a = this.#audio !== undefined;
    if (!v && !a) return;
    const first = this.#firstPendingTs;
    const last = this.#pending[this.#pending.length - 1]?.timestamp;
    const waitedMs = first !== undefined && last !== undefined ? last - first : 0;
    const done = (have: boolean, announced: boolean | undefined): boolean =>
      have || announced === false || waitedMs >= (announced === true ? this.#opts.announcedTrackWaitMs : this.#opts.trackWaitMs);
    const videoDone = done(v, this.#metaHasVideo);
    const audioDone = done(a, this.#metaHasAudio);
    if (!videoDone || !audioDone) return;
    const tracks: RemuxTrack[] = [];
    if (this.#video !== undefined) tracks.push(this.#video.track);
    if (this.#audio !== undefined) tracks.push(this.#audio.track);
    this.#tracks = new Set(tracks.map((t) => t.kind));
    out.push({ kind: 'tracks', tracks });
    const pending = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#firstPendingTs = undefined;
    for (const tag of pending) this.#media(tag, out);
  }

  /** Maps an input timestamp onto the output timeline (ms). */
  #map(ts: number): number {
    const last = this.#lastIn;
    if (this.#origin !== undefined && last !== undefined && (ts < last - this.#opts.maxJumpMs || ts > last + this.#opts.maxJumpMs)) {
      this.#origin = undefined;
    }
    if (this.#origin === undefined) {
      this.#origin = this.#lastOut === undefined ? ts : ts - (this.#lastOut + SEGMENT_GAP_MS);
    }
    this.#lastIn = last === undefined ? ts : Math.max(last, ts);
    const mapped = Math.max(0, ts - this.#origin);
    this.#lastOut = Math.max(this.#lastOut ?? 0, mapped);
    return mapped;
  }

  #media(tag: FlvTag, out: RemuxEvent[]): void {
    if (tag.type === FlvTagType.Video) this.#videoFrame(tag, out);
    else this.#audioFrame(tag, out);
  }

  #videoFrame(tag: FlvTag, out: RemuxEvent[]): void {
    const v = this.#video;
    if (v === undefined || this.#tracks?.has('video') !== true) return;
    const body = parseVideoBody(tag.data);
    const coded =
      body.codecId === VideoCodecId.Avc
        ? body.packetType === AvcPacketType.Nalu
        : body.fourcc === 'avc1' && (body.packetType === ExVideoPacketType.CodedFrames || body.packetType === ExVideoPacketType.CodedFramesX);
    if (!coded || body.data.length === 0) return;
    if (v.needKeyframe) {
      if (!body.keyframe) return;
      v.needKeyframe = false;
    }
    let dts = this.#map(tag.timestamp);
    if (v.lastDts !== undefined) {
      if (dts <= v.lastDts) dts = v.lastDts + 1;
      else v.frameMs = Math.min(dts - v.lastDts, 1000);
    }
    v.lastDts = dts;
    // The frame's own duration is unknown until the next one arrives; waiting for it would add
    // a frame of latency, so it takes the last frame interval.
    const duration = v.frameMs;
    v.sequence++;
    const data = fragment({
      trackId: VIDEO_TRACK_ID,
      sequence: v.sequence,
      baseDecodeTime: dts,
      samples: [{ duration, keyframe: body.keyframe, cts: body.cts, data: body.data }],
    });
    out.push({ kind: 'media', track: 'video', data, start: dts / 1000, end: (dts + duration) / 1000, keyframe: body.keyframe, bytes: tag.data.length });
  }

  #audioFrame(tag: FlvTag, out: RemuxEvent[]): void {
    const a = this.#audio;
    if (a === undefined || this.#tracks?.has('audio') !== true) return;
    const body = parseAudioBody(tag.data);
    if (body.soundFormat !== SoundFormat.Aac || body.packetType !== AacPacketType.Raw || body.data.length === 0) return;
    const ms = this.#map(tag.timestamp);
    const expected = Math.round((ms * a.sampleRate) / 1000);
    if (a.nextSample === undefined || Math.abs(expected - a.nextSample) > (AUDIO_RESYNC_MS * a.sampleRate) / 1000) {
      a.nextSample = expected;
    }
    const start = a.nextSample;
    a.nextSample += AAC_FRAME_SAMPLES;
    // A frame that would start before the end of audio already output (the input went back, or
    // a new connection's audio precedes its first video tag) is dropped: MSE would overwrite or
    // splice what it holds. The frames after it keep their place on the clock.
    if (start / a.sampleRate < a.end) return;
    a.end = a.nextSample / a.sampleRate;
    // A new segment starts after this frame's end, not its start: an AAC frame (128 ms at 8 kHz)
    // outlasts SEGMENT_GAP_MS.
    this.#lastOut = Math.max(this.#lastOut ?? 0, Math.ceil(a.end * 1000));
    a.sequence++;
    const data = fragment({
      trackId: AUDIO_TRACK_ID,
      sequence: a.sequence,
      baseDecodeTime: start,
      samples: [{ duration: AAC_FRAME_SAMPLES, keyframe: true, cts: 0, data: body.data }],
    });
    out.push({
      kind: 'media',
      track: 'audio',
      data,
      start: start / a.sampleRate,
      end: (start + AAC_FRAME_SAMPLES) / a.sampleRate,
      keyframe: true,
      bytes: tag.data.length,
    });
  }
}

import { amf0Props, type Amf0Object } from '../amf/amf0.js';
import { aacCodecString, parseAudioSpecificConfig } from '../codec/aac.js';
import { av1CodecString, av1SequenceHeaderOf, parseAv1C, withoutTemporalDelimiter } from '../codec/av1.js';
import { avcCodecString, parseAvcC, parseSps } from '../codec/avc.js';
import { hevcCodecString, hevcSizeOf, parseHvcC } from '../codec/hevc.js';
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
  type VideoBody,
} from '../flv/flv-media.js';
import { FlvTagType, type FlvTag } from '../flv/flv-tag.js';
import { fragment, initSegment } from '../mp4/fmp4-writer.js';
import { BLACK_FRAME_HEIGHT, BLACK_FRAME_WIDTH, blackFrame, blackFrameAvcC, silenceConfig, silentAacFrame } from './filler.js';

/**
 * FLV tags in, fragmented MP4 out, a fragment as soon as its frames can be shown so nothing waits:
 * one per audio frame, one per video frame or, with B-frames, per group of frames that needs
 * no later one (see `#releaseVideo`). A sans-I/O core: the player feeds it tags and appends what
 * it returns to one SourceBuffer per track.
 */

export type RemuxTrackKind = 'video' | 'audio';

export interface RemuxTrack {
  kind: RemuxTrackKind;
  /** RFC 6381, e.g. 'avc1.42E01F', 'hvc1.1.6.L93.B0', 'av01.0.04M.08' or 'mp4a.40.2'. */
  codec: string;
  /** For MediaSource.isTypeSupported and addSourceBuffer: 'video/mp4; codecs="avc1.42E01F"'. */
  mimeType: string;
  /** ftyp + moov for this track alone. */
  init: Uint8Array;
  width?: number;
  height?: number;
  sampleRate?: number;
  channels?: number;
  /**
   * A stand-in (a black picture, silence) for a track the stream announced but has not configured
   * yet: its media fills the time the other track covers, so that one plays. The real
   * configuration arrives as an `init` event right before the track's first real frame.
   */
  filler: boolean;
}

export type RemuxEvent =
  /**
   * The track set: create one SourceBuffer per track, then append each init. A second `tracks`
   * event means a track the stream had not announced has appeared: MSE cannot add a SourceBuffer
   * to a MediaSource that holds media, so build a new one; the media that follows starts on a
   * video keyframe and continues the same timeline.
   */
  | { kind: 'tracks'; tracks: RemuxTrack[] }
  /** A track's configuration changed (new sequence header, or the real one after a stand-in): append the new init. */
  | { kind: 'init'; track: RemuxTrack }
  /** One moof + mdat; times in seconds on the output timeline. `bytes`: FLV bytes it came from (0 for a stand-in). */
  | { kind: 'media'; track: RemuxTrackKind; data: Uint8Array; start: number; end: number; keyframe: boolean; bytes: number }
  | { kind: 'metadata'; value: Amf0Object };

export interface RemuxOptions {
  /**
   * How long (in stream time) media of one track may flow while the other track's configuration
   * is missing, and onMetaData did not announce it, before the track set is fixed without it.
   * Should it appear later, the set is rebuilt at its next keyframe.
   */
  trackWaitMs: number;
  /**
   * The same wait when onMetaData announced the missing track: then a stand-in takes its place
   * until its real media starts (nginx-rtmp sends a new player no video until the next keyframe,
   * which may be a long GOP away). Short: both configurations normally arrive together.
   */
  announcedTrackWaitMs: number;
  /**
   * Video frame duration assumed until two frames have been seen, unless onMetaData gives a
   * framerate. Too short a guess costs the first GOP in Chromium: MSE takes a decode time more
   * than twice the last frame's duration after it as a gap and drops frames until a keyframe.
   */
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
  announcedTrackWaitMs: 300,
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
// Video frames held back at most while waiting for the B-frames shown before them; more means
// timestamps the reorder estimate does not fit, and the frames go out as they are.
const MAX_HELD_FRAMES = 16;
// The longest a video frame lasts: a longer gap between two frames is a gap in the picture
// (and in the stand-in silence filled beside it), not one frame on screen for its length.
const MAX_FRAME_MS = 1000;
// onMetaData codec ids a stand-in can precede: FLV's AVC and AAC ids, or the Enhanced RTMP
// FourCC ('avc1', 'mp4a') as a number or as text.
const AVC_CODEC_IDS: readonly unknown[] = [VideoCodecId.Avc, 0x61766331, 'avc1'];
const AAC_CODEC_IDS: readonly unknown[] = [SoundFormat.Aac, 0x6d703461, 'mp4a'];
const FILLER_SAMPLE_RATES = [48000, 44100, 32000, 24000, 22050, 16000, 11025, 8000];

/** The video codecs the remuxer writes: the sample entry's name. */
export type RemuxVideoCodec = 'avc1' | 'hvc1' | 'av01';

interface VideoState {
  codec: RemuxVideoCodec;
  /** The configuration record of the sequence header (avcC, hvcC or av1C). */
  config: Uint8Array;
  track: RemuxTrack;
  lastDts: number | undefined;
  frameMs: number;
  needKeyframe: boolean;
  /**
   * The encoder's reorder delay: how far its decode times run behind its presentation times in
   * order, which is the composition offset of a keyframe (the first frame shown of its GOP).
   */
  reorderMs: number;
}

/** A video frame waiting for the frames shown before it; times in output ms. */
interface HeldFrame {
  dts: number;
  cts: number;
  keyframe: boolean;
  data: Uint8Array;
  bytes: number;
}

interface AudioState {
  asc: Uint8Array;
  track: RemuxTrack;
  sampleRate: number;
  nextSample: number | undefined;
  /** End of the last frame output, in seconds: no later frame starts before it. */
  end: number;
}

/** What onMetaData says about a track: undefined when it says nothing. */
interface Announced {
  present: boolean;
  /** A stand-in can precede it (AVC or AAC, or no codec named). */
  fillable: boolean;
}

interface VideoFill {
  track: RemuxTrack;
  /** End of the last fill frame, output ms. */
  endMs: number | undefined;
  frames: number;
}

interface AudioFill {
  track: RemuxTrack;
  sampleRate: number;
  frame: Uint8Array;
  nextSample: number | undefined;
}

/** A video track and its init segment for a configuration record; throws for a bad record. */
function videoTrack(kind: RemuxVideoCodec, config: Uint8Array, filler: boolean): RemuxTrack {
  let codec: string;
  let size: { width: number; height: number };
  const base = { kind: 'video', id: VIDEO_TRACK_ID, timescale: 1000 } as const;
  let init: Uint8Array;
  if (kind === 'avc1') {
    const avc = parseAvcC(config);
    const sps = avc.sps[0];
    if (sps === undefined) throw new OnairError('REMUX_BAD_CONFIG', 'AVC sequence header without an SPS');
    codec = avcCodecString(avc);
    size = filler ? { width: BLACK_FRAME_WIDTH, height: BLACK_FRAME_HEIGHT } : parseSps(sps);
    init = initSegment([{ ...base, ...size, avcC: config }]);
  } else if (kind === 'hvc1') {
    const hevc = parseHvcC(config);
    codec = hevcCodecString(hevc);
    size = hevcSizeOf(hevc);
    init = initSegment([{ ...base, ...size, hvcC: config }]);
  } else {
    const av1 = parseAv1C(config);
    codec = av1CodecString(av1);
    const seq = av1SequenceHeaderOf(av1);
    if (seq === undefined) throw new OnairError('REMUX_BAD_CONFIG', 'AV1 sequence start without a sequence header OBU in its av1C');
    size = seq;
    init = initSegment([{ ...base, width: seq.width, height: seq.height, av1C: config }]);
  }
  return { kind: 'video', codec, mimeType: `video/mp4; codecs="${codec}"`, init, width: size.width, height: size.height, filler };
}

/** The codec a video body belongs to, when the remuxer writes it; undefined for any other. */
function videoCodecOf(body: VideoBody): RemuxVideoCodec | undefined {
  if (body.codecId === VideoCodecId.Avc) return 'avc1';
  return body.fourcc === 'avc1' || body.fourcc === 'hvc1' || body.fourcc === 'av01' ? body.fourcc : undefined;
}

/** An audio track and its init segment for an AudioSpecificConfig; timescale = sample rate. */
function audioTrack(asc: Uint8Array, sampleRate: number, channels: number, filler: boolean): RemuxTrack {
  const codec = aacCodecString(asc);
  const init = initSegment([{ kind: 'audio', id: AUDIO_TRACK_ID, timescale: sampleRate, sampleRate, channels, asc }]);
  return { kind: 'audio', codec, mimeType: `audio/mp4; codecs="${codec}"`, init, sampleRate, channels, filler };
}

/** A video body that carries a picture of `codec` (legacy FLV AVC, or Enhanced RTMP coded frames). */
function isCoded(body: VideoBody, codec: RemuxVideoCodec): boolean {
  if (videoCodecOf(body) !== codec) return false;
  return body.codecId === VideoCodecId.Avc
    ? body.packetType === AvcPacketType.Nalu
    : body.packetType === ExVideoPacketType.CodedFrames || body.packetType === ExVideoPacketType.CodedFramesX;
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
  /** The track set handed to MSE; replaced only by a rebuild. */
  #tracks: Set<RemuxTrackKind> | undefined;
  /** A track outside the set was configured: a new set starts at the next video keyframe. */
  #rebuild = false;
  #videoFill: VideoFill | undefined;
  #audioFill: AudioFill | undefined;
  readonly #sequence = { video: 0, audio: 0 };
  /** Video frames received but not output yet, in decode order. */
  #held: HeldFrame[] = [];
  #pending: FlvTag[] = [];
  #pendingBytes = 0;
  #firstPendingTs: number | undefined;
  #metaVideo: Announced | undefined;
  #metaAudio: Announced | undefined;
  #metaSampleRate: number | undefined;
  #metaChannels: 1 | 2 | undefined;
  /** The frame duration onMetaData's framerate gives. */
  #metaFrameMs: number | undefined;
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
   * connection); video resumes at a keyframe, and video frames still held go out right before it.
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
    if (this.#rebuild && tag.type === FlvTagType.Video && this.#isKeyframe(tag)) this.#rebuildTracks(out);
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
    const announced = (key: string, codecKey: string, fillable: readonly unknown[]): Announced | undefined => {
      const flag = props[key];
      const codec = props[codecKey];
      const present = typeof flag === 'boolean' ? flag : codec === undefined ? (anyCodec ? false : undefined) : codec !== 0 && codec !== '';
      if (present === undefined) return undefined;
      return { present, fillable: present && (codec === undefined || fillable.includes(codec)) };
    };
    this.#metaVideo = announced('hasVideo', 'videocodecid', AVC_CODEC_IDS);
    this.#metaAudio = announced('hasAudio', 'audiocodecid', AAC_CODEC_IDS);
    const rate = props['audiosamplerate'];
    this.#metaSampleRate = typeof rate === 'number' && FILLER_SAMPLE_RATES.includes(rate) ? rate : undefined;
    const stereo = props['stereo'];
    const channels = props['audiochannels'];
    this.#metaChannels = stereo === false || channels === 1 ? 1 : stereo === true || channels === 2 ? 2 : undefined;
    const framerate = props['framerate'];
    this.#metaFrameMs = typeof framerate === 'number' && framerate >= 1 && framerate <= 240 ? Math.round(1000 / framerate) : undefined;
    const v = this.#video;
    if (v !== undefined && v.lastDts === undefined) v.frameMs = this.#metaFrameMs ?? this.#opts.defaultFrameMs;
    out.push({ kind: 'metadata', value: props });
  }

  /** Returns true when `tag` is a video sequence header. */
  #videoConfig(tag: FlvTag, out: RemuxEvent[]): boolean {
    const body = parseVideoBody(tag.data);
    const codec = videoCodecOf(body);
    const header = body.codecId === VideoCodecId.Avc ? body.packetType === AvcPacketType.SequenceHeader : body.packetType === ExVideoPacketType.SequenceStart;
    if (codec === undefined || !header) return false;
    // An empty sequence start (sent ahead of the real one by some writers) configures nothing.
    if (body.codecId !== VideoCodecId.Avc && body.data.length === 0) return true;
    if (this.#video !== undefined && this.#video.codec === codec && sameBytes(this.#video.config, body.data)) return true;
    const config = body.data.slice();
    const track = videoTrack(codec, config, false);
    // Frames of the old configuration go out before its successor's init.
    this.#releaseVideo(out);
    const previous = this.#video;
    this.#video = {
      codec,
      config,
      track,
      lastDts: previous?.lastDts,
      frameMs: previous?.frameMs ?? this.#metaFrameMs ?? this.#opts.defaultFrameMs,
      needKeyframe: true,
      reorderMs: 0,
    };
    // Another codec is another MIME type: the player switches its SourceBuffer with changeType.
    this.#configured('video', track, out);
    return true;
  }

  /**
   * A track's configuration arrived or changed: the new init goes out at once, or right before
   * the first real frame while a stand-in fills the track; a track outside the set asks for a
   * rebuild.
   */
  #configured(kind: RemuxTrackKind, track: RemuxTrack, out: RemuxEvent[]): void {
    if (this.#tracks === undefined) return;
    if (!this.#tracks.has(kind)) this.#rebuild = true;
    else if ((kind === 'video' ? this.#videoFill : this.#audioFill) === undefined) out.push({ kind: 'init', track });
  }

  /** Returns true when `tag` is an audio sequence header. */
  #audioConfig(tag: FlvTag, out: RemuxEvent[]): boolean {
    const body = parseAudioBody(tag.data);
    if (body.soundFormat !== SoundFormat.Aac || body.packetType !== AacPacketType.SequenceHeader) return false;
    if (this.#audio !== undefined && sameBytes(this.#audio.asc, body.data)) return true;
    const asc = body.data.slice();
    const config = parseAudioSpecificConfig(asc);
    const channels = config.channels === 0 ? 2 : config.channels;
    const track = audioTrack(asc, config.sampleRate, channels, false);
    const previous = this.#audio;
    const sameRate = previous?.sampleRate === config.sampleRate;
    this.#audio = {
      asc,
      track,
      sampleRate: config.sampleRate,
      nextSample: sameRate ? previous.nextSample : undefined,
      end: previous?.end ?? 0,
    };
    this.#configured('audio', track, out);
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
    if (this.#video === undefined && this.#audio === undefined) return;
    const first = this.#firstPendingTs;
    const last = this.#pending[this.#pending.length - 1]?.timestamp;
    const waitedMs = first !== undefined && last !== undefined ? last - first : 0;
    // For each track: its own, a stand-in, none, or not decided yet (undefined).
    const decide = (have: boolean, announced: Announced | undefined): 'real' | 'filler' | 'none' | undefined => {
      if (have) return 'real';
      if (announced?.present === false) return 'none';
      if (waitedMs < (announced === undefined ? this.#opts.trackWaitMs : this.#opts.announcedTrackWaitMs)) return undefined;
      return announced?.fillable === true ? 'filler' : 'none';
    };
    const video = decide(this.#video !== undefined, this.#metaVideo);
    const audio = decide(this.#audio !== undefined, this.#metaAudio);
    if (video === undefined || audio === undefined) return;
    const tracks: RemuxTrack[] = [];
    if (video === 'real') tracks.push(this.#video!.track);
    if (video === 'filler') tracks.push((this.#videoFill = this.#newVideoFill()).track);
    if (audio === 'real') tracks.push(this.#audio!.track);
    if (audio === 'filler') tracks.push((this.#audioFill = this.#newAudioFill()).track);
    this.#tracks = new Set(tracks.map((t) => t.kind));
    out.push({ kind: 'tracks', tracks });
    const pending = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#firstPendingTs = undefined;
    for (const tag of pending) this.#media(tag, out);
  }

  /** A new track set with every configured track, at a video keyframe. */
  #rebuildTracks(out: RemuxEvent[]): void {
    this.#releaseVideo(out);
    this.#rebuild = false;
    this.#videoFill = this.#audioFill = undefined;
    const tracks: RemuxTrack[] = [];
    if (this.#video !== undefined) tracks.push(this.#video.track);
    if (this.#audio !== undefined) tracks.push(this.#audio.track);
    this.#tracks = new Set(tracks.map((t) => t.kind));
    out.push({ kind: 'tracks', tracks });
  }

  #newVideoFill(): VideoFill {
    return { track: videoTrack('avc1', blackFrameAvcC(), true), endMs: undefined, frames: 0 };
  }

  #newAudioFill(): AudioFill {
    const sampleRate = this.#metaSampleRate ?? 48000;
    const channels = this.#metaChannels ?? 2;
    const track = audioTrack(silenceConfig(sampleRate, channels), sampleRate, channels, true);
    return { track, sampleRate, frame: silentAacFrame(channels), nextSample: undefined };
  }

  #isKeyframe(tag: FlvTag): boolean {
    const body = parseVideoBody(tag.data);
    return body.keyframe && this.#video !== undefined && isCoded(body, this.#video.codec) && body.data.length > 0;
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
    if (!isCoded(body, v.codec) || body.data.length === 0) return;
    if (v.needKeyframe) {
      if (!body.keyframe) return;
      v.needKeyframe = false;
    }
    if (this.#videoFill !== undefined) {
      // The real picture starts here: its configuration replaces the stand-in's.
      this.#videoFill = undefined;
      out.push({ kind: 'init', track: v.track });
    }
    let dts = this.#map(tag.timestamp);
    if (v.lastDts !== undefined) {
      if (dts <= v.lastDts) dts = v.lastDts + 1;
      else v.frameMs = Math.min(dts - v.lastDts, MAX_FRAME_MS);
    }
    // A frame long after the last (a jump the timeline kept, a stall) starts a fragment of its
    // own, so that no held frame lasts for the gap.
    if (body.keyframe || dts - (v.lastDts ?? dts) > MAX_FRAME_MS) this.#releaseVideo(out, dts);
    v.lastDts = dts;
    if (body.keyframe) v.reorderMs = body.cts;
    const data = v.codec === 'av01' ? withoutTemporalDelimiter(body.data) : body.data;
    this.#held.push({ dts, cts: body.cts, keyframe: body.keyframe, data, bytes: tag.data.length });
    // Encoders stamp decode times as their presentation times in order, moved back by the
    // reorder delay: the frames in hand are the next ones to be shown, and no later frame can
    // come before them, once the latest shown of them is due by this frame's decode time plus
    // the delay (half a frame allows for FLV's millisecond rounding).
    let shownLast = -Infinity;
    for (const f of this.#held) shownLast = Math.max(shownLast, f.dts + f.cts);
    if (shownLast < dts + v.reorderMs + v.frameMs / 2 || this.#held.length >= MAX_HELD_FRAMES) this.#releaseVideo(out);
  }

  /**
   * Outputs the held video frames as one fragment. Without B-frames that is every frame as it
   * comes. With them, a reference frame waits for the B-frames shown before it, so that every
   * append leaves the SourceBuffer with no frame missing before the last one shown. Firefox
   * needs this: when its demuxer runs out of data it drains the decoder and, once more data
   * comes, decodes again from the keyframe, dropping every frame shown before the last one it
   * had been given; fed one frame at a time, that was each B-frame arriving after its reference
   * frame, two frames in three (seen in MOZ_LOG=MediaFormatReader:5: "InternalSeek", "Internal
   * Seeking: Dropping Video frame").
   *
   * Durations are the decode intervals; the last frame's is unknown until the next one comes
   * (`nextDts`, when it is known) and waiting for it would add a frame of latency, so it takes
   * the last frame interval.
   */
  #releaseVideo(out: RemuxEvent[], nextDts?: number): void {
    const held = this.#held;
    const v = this.#video;
    if (held.length === 0 || v === undefined) return;
    this.#held = [];
    const last = held[held.length - 1]!;
    const end = Math.min(nextDts ?? last.dts + v.frameMs, last.dts + MAX_FRAME_MS);
    const data = fragment({
      trackId: VIDEO_TRACK_ID,
      sequence: ++this.#sequence.video,
      baseDecodeTime: held[0]!.dts,
      samples: held.map((f, i) => ({ duration: (held[i + 1]?.dts ?? end) - f.dts, keyframe: f.keyframe, cts: f.cts, data: f.data })),
    });
    const start = held[0]!.dts / 1000;
    const bytes = held.reduce((n, f) => n + f.bytes, 0);
    out.push({ kind: 'media', track: 'video', data, start, end: end / 1000, keyframe: held[0]!.keyframe, bytes });
    if (this.#audioFill !== undefined) this.#fillAudio(this.#audioFill, start, end / 1000, out);
  }

  #audioFrame(tag: FlvTag, out: RemuxEvent[]): void {
    const a = this.#audio;
    if (a === undefined || this.#tracks?.has('audio') !== true) return;
    const body = parseAudioBody(tag.data);
    if (body.soundFormat !== SoundFormat.Aac || body.packetType !== AacPacketType.Raw || body.data.length === 0) return;
    if (this.#audioFill !== undefined) {
      this.#audioFill = undefined;
      out.push({ kind: 'init', track: a.track });
    }
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
    this.#audioFragment(start, a.sampleRate, body.data, tag.data.length, out);
    if (this.#videoFill !== undefined) this.#fillVideo(this.#videoFill, start / a.sampleRate, (start + AAC_FRAME_SAMPLES) / a.sampleRate, out);
  }

  #audioFragment(start: number, sampleRate: number, frame: Uint8Array, bytes: number, out: RemuxEvent[]): void {
    const data = fragment({
      trackId: AUDIO_TRACK_ID,
      sequence: ++this.#sequence.audio,
      baseDecodeTime: start,
      samples: [{ duration: AAC_FRAME_SAMPLES, keyframe: true, cts: 0, data: frame }],
    });
    out.push({ kind: 'media', track: 'audio', data, start: start / sampleRate, end: (start + AAC_FRAME_SAMPLES) / sampleRate, keyframe: true, bytes });
  }

  /** Black frames over [startS, endS), the time an audio frame just covered. */
  #fillVideo(f: VideoFill, startS: number, endS: number, out: RemuxEvent[]): void {
    const startMs = Math.floor(startS * 1000);
    const from = f.endMs === undefined || startMs > f.endMs ? startMs : f.endMs;
    const to = Math.round(endS * 1000);
    if (to <= from) return;
    f.endMs = to;
    const data = fragment({
      trackId: VIDEO_TRACK_ID,
      sequence: ++this.#sequence.video,
      baseDecodeTime: from,
      samples: [{ duration: to - from, keyframe: true, cts: 0, data: blackFrame(f.frames++) }],
    });
    out.push({ kind: 'media', track: 'video', data, start: from / 1000, end: to / 1000, keyframe: true, bytes: 0 });
  }

  /** Silent frames up to `endS`, the end of a video frame just output. */
  #fillAudio(f: AudioFill, startS: number, endS: number, out: RemuxEvent[]): void {
    const first = Math.floor(startS * f.sampleRate);
    if (f.nextSample === undefined || first > f.nextSample + AAC_FRAME_SAMPLES) f.nextSample = first;
    while (f.nextSample < endS * f.sampleRate) {
      this.#audioFragment(f.nextSample, f.sampleRate, f.frame, 0, out);
      f.nextSample += AAC_FRAME_SAMPLES;
    }
  }
}

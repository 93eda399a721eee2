import { ByteWriter } from '../bytes/byte-writer.js';
import { OnairError } from '../errors.js';

interface Fmp4VideoBase {
  kind: 'video';
  id: number;
  /** Ticks per second of this track's times (1000 for FLV milliseconds). */
  timescale: number;
  width: number;
  height: number;
}

/**
 * A video track and its configuration record, as in the FLV (Enhanced RTMP) sequence header: the
 * one record given names the sample entry (avc1 + avcC, hvc1 + hvcC, av01 + av1C).
 */
export type Fmp4VideoTrack = Fmp4VideoBase &
  (
    | { /** AVCDecoderConfigurationRecord. */ avcC: Uint8Array }
    | { /** HEVCDecoderConfigurationRecord. */ hvcC: Uint8Array }
    | { /** AV1CodecConfigurationRecord. */ av1C: Uint8Array }
  );

export interface Fmp4AudioTrack {
  kind: 'audio';
  id: number;
  /** The sample rate, so AAC frame durations are exact (1024 ticks). */
  timescale: number;
  sampleRate: number;
  channels: number;
  /** AudioSpecificConfig, as in the FLV AAC sequence header. */
  asc: Uint8Array;
}

export type Fmp4Track = Fmp4VideoTrack | Fmp4AudioTrack;

export interface Fmp4Sample {
  /** In track timescale ticks. */
  duration: number;
  /** Byte size; must equal `data.length` when given. */
  size?: number;
  keyframe: boolean;
  /** Composition offset (pts − dts) in timescale ticks; may be negative. */
  cts: number;
  data: Uint8Array;
}

export interface Fmp4Fragment {
  trackId: number;
  /** mfhd sequence_number: 1, 2, 3… per fragment. */
  sequence: number;
  /** Decode time of the first sample, in track timescale ticks. */
  baseDecodeTime: number;
  samples: readonly Fmp4Sample[];
}

const MOVIE_TIMESCALE = 1000;
const UNITY_MATRIX = [0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000] as const;
const LANGUAGE_UND = 0x55c4; // ISO 639-2 "und", packed 5 bits per letter

const enum TfhdFlag {
  DefaultBaseIsMoof = 0x020000, // default-base-is-moof
}

const enum TrunFlag {
  DataOffset = 0x000001, // data-offset-present
  SampleDuration = 0x000100, // sample-duration-present
  SampleSize = 0x000200, // sample-size-present
  SampleFlags = 0x000400, // sample-flags-present
  SampleCompositionTimeOffset = 0x000800, // sample-composition-time-offsets-present
}

const enum SampleFlags {
  Sync = 0x02000000, // sample_depends_on = 2 (depends on no other sample)
  NonSync = 0x01010000, // sample_depends_on = 1, sample_is_non_sync_sample = 1
}

function fourcc(w: ByteWriter, s: string): void {
  w.u8(s.charCodeAt(0)).u8(s.charCodeAt(1)).u8(s.charCodeAt(2)).u8(s.charCodeAt(3));
}

function box(w: ByteWriter, type: string, body: () => void): void {
  const at = w.length;
  w.u32(0);
  fourcc(w, type);
  body();
  w.patchU32(at, w.length - at);
}

function fullBox(w: ByteWriter, type: string, version: number, flags: number, body: () => void): void {
  box(w, type, () => {
    w.u32(((version << 24) | flags) >>> 0);
    body();
  });
}

function matrix(w: ByteWriter): void {
  for (const v of UNITY_MATRIX) w.u32(v);
}

function zeros(w: ByteWriter, n: number): void {
  for (let i = 0; i < n; i++) w.u8(0);
}

/** An MPEG-4 descriptor header (ISO/IEC 14496-1 §8.3.3): tag and a 7-bits-per-byte size. */
function descriptor(w: ByteWriter, tag: number, size: number): void {
  w.u8(tag);
  // Fixed 4-byte size form: simple, and every parser accepts it.
  w.u8(0x80 | ((size >>> 21) & 0x7f)).u8(0x80 | ((size >>> 14) & 0x7f)).u8(0x80 | ((size >>> 7) & 0x7f)).u8(size & 0x7f);
}

function checkTrack(t: Fmp4Track): void {
  if (!Number.isInteger(t.id) || t.id < 1 || t.id > 0xffffffff) throw new OnairError('MP4_BAD_INPUT', `track id ${t.id} outside 1..4294967295`);
  if (!Number.isInteger(t.timescale) || t.timescale < 1 || t.timescale > 0xffffffff) {
    throw new OnairError('MP4_BAD_INPUT', `track ${t.id} timescale ${t.timescale} outside 1..4294967295`);
  }
}

/** The sample entry and configuration box names of a video track. */
function videoEntry(t: Fmp4VideoTrack): { entry: string; box: string; record: Uint8Array } {
  if ('hvcC' in t) return { entry: 'hvc1', box: 'hvcC', record: t.hvcC };
  if ('av1C' in t) return { entry: 'av01', box: 'av1C', record: t.av1C };
  return { entry: 'avc1', box: 'avcC', record: t.avcC };
}

/** A VisualSampleEntry (ISO/IEC 14496-12 §12.1.3) with its configuration box. */
function writeVisualSampleEntry(w: ByteWriter, t: Fmp4VideoTrack): void {
  const { entry, box: configBox, record } = videoEntry(t);
  box(w, entry, () => {
    zeros(w, 6); // reserved
    w.u16(1); // data_reference_index
    zeros(w, 16); // pre_defined, reserved, pre_defined[3]
    w.u16(t.width).u16(t.height);
    w.u32(0x00480000).u32(0x00480000); // 72 dpi
    w.u32(0); // reserved
    w.u16(1); // frame_count
    zeros(w, 32); // compressorname
    w.u16(0x0018); // depth
    w.i16(-1); // pre_defined
    box(w, configBox, () => w.bytes(record));
  });
}

function writeMp4a(w: ByteWriter, t: Fmp4AudioTrack): void {
  box(w, 'mp4a', () => {
    zeros(w, 6); // reserved
    w.u16(1); // data_reference_index
    zeros(w, 8); // reserved
    w.u16(t.channels).u16(16); // channelcount, samplesize
    w.u16(0).u16(0); // pre_defined, reserved
    // samplerate is 16.16 fixed point; rates above 65535 do not fit and the decoder uses the ASC.
    w.u32(t.sampleRate <= 0xffff ? t.sampleRate * 0x10000 : 0);
    fullBox(w, 'esds', 0, 0, () => {
      const decSpecific = 5 + t.asc.length;
      const decConfig = 5 + 13 + decSpecific;
      const slConfig = 5 + 1;
      descriptor(w, 0x03, 3 + decConfig + slConfig); // ES_DescrTag
      w.u16(0).u8(0); // ES_ID, flags
      descriptor(w, 0x04, 13 + decSpecific); // DecoderConfigDescrTag
      w.u8(0x40); // objectTypeIndication: MPEG-4 Audio
      w.u8((0x05 << 2) | 1); // streamType audio, upStream 0, reserved 1
      w.u24(0).u32(0).u32(0); // bufferSizeDB, maxBitrate, avgBitrate
      descriptor(w, 0x05, t.asc.length); // DecSpecificInfoTag
      w.bytes(t.asc);
      descriptor(w, 0x06, 1); // SLConfigDescrTag
      w.u8(0x02); // predefined: reserved for use in MP4 files
    });
  });
}

function writeTrak(w: ByteWriter, t: Fmp4Track): void {
  const video = t.kind === 'video';
  box(w, 'trak', () => {
    fullBox(w, 'tkhd', 0, 0x000003, () => {
      // track_enabled | track_in_movie
      w.u32(0).u32(0).u32(t.id).u32(0).u32(0); // times, track_ID, reserved, duration unknown
      zeros(w, 8);
      w.u16(0).u16(0).u16(video ? 0 : 0x0100).u16(0); // layer, alternate_group, volume, reserved
      matrix(w);
      w.u32(video ? t.width * 0x10000 : 0).u32(video ? t.height * 0x10000 : 0);
    });
    box(w, 'mdia', () => {
      fullBox(w, 'mdhd', 0, 0, () => {
        w.u32(0).u32(0).u32(t.timescale).u32(0).u16(LANGUAGE_UND).u16(0);
      });
      fullBox(w, 'hdlr', 0, 0, () => {
        w.u32(0);
        fourcc(w, video ? 'vide' : 'soun');
        zeros(w, 12);
        for (const c of video ? 'VideoHandler' : 'SoundHandler') w.u8(c.charCodeAt(0));
        w.u8(0);
      });
      box(w, 'minf', () => {
        if (video) fullBox(w, 'vmhd', 0, 1, () => zeros(w, 8));
        else fullBox(w, 'smhd', 0, 0, () => zeros(w, 4));
        box(w, 'dinf', () => {
          fullBox(w, 'dref', 0, 0, () => {
            w.u32(1);
            fullBox(w, 'url ', 0, 1, () => {}); // self-contained
          });
        });
        box(w, 'stbl', () => {
          fullBox(w, 'stsd', 0, 0, () => {
            w.u32(1);
            if (t.kind === 'video') writeVisualSampleEntry(w, t);
            else writeMp4a(w, t);
          });
          fullBox(w, 'stts', 0, 0, () => w.u32(0));
          fullBox(w, 'stsc', 0, 0, () => w.u32(0));
          fullBox(w, 'stsz', 0, 0, () => w.u32(0).u32(0));
          fullBox(w, 'stco', 0, 0, () => w.u32(0));
        });
      });
    });
  });
}

/**
 * The init segment for MSE: ftyp + moov with one trak per track and mvex/trex, duration
 * unknown and no mehd, which lets Chromium choose its low-delay renderer for a live stream.
 */
export function initSegment(tracks: readonly Fmp4Track[]): Uint8Array {
  if (tracks.length === 0) throw new OnairError('MP4_BAD_INPUT', 'init segment needs at least one track');
  tracks.forEach(checkTrack);
  const w = new ByteWriter(1024);
  box(w, 'ftyp', () => {
    fourcc(w, 'isom');
    w.u32(0x200);
    // 'av01' is the AV1 binding's brand; the others keep the brands every init segment had.
    const av1 = tracks.some((t) => t.kind === 'video' && 'av1C' in t);
    for (const brand of ['isom', 'iso6', av1 ? 'av01' : 'avc1', 'mp41']) fourcc(w, brand);
  });
  box(w, 'moov', () => {
    fullBox(w, 'mvhd', 0, 0, () => {
      w.u32(0).u32(0).u32(MOVIE_TIMESCALE).u32(0); // times, timescale, duration unknown
      w.u32(0x00010000).u16(0x0100); // rate 1.0, volume 1.0
      zeros(w, 10);
      matrix(w);
      zeros(w, 24); // pre_defined
      w.u32(Math.max(...tracks.map((t) => t.id)) + 1); // next_track_ID
    });
    for (const t of tracks) writeTrak(w, t);
    box(w, 'mvex', () => {
      for (const t of tracks) {
        fullBox(w, 'trex', 0, 0, () => w.u32(t.id).u32(1).u32(0).u32(0).u32(0));
      }
    });
  });
  return w.finish().slice();
}

const MOOF_FIXED = 8 + 16 + 8 + 16 + 20 + 20; // moof, mfhd, traf, tfhd, tfdt v1, trun header + data offset
const TRUN_SAMPLE = 16;
const MDAT_HEADER = 8;

/**
 * One fragment: moof{mfhd, traf{tfhd, tfdt, trun}} + mdat, written into a single buffer.
 * trun carries per-sample duration, size, flags and composition offset, version 1 (signed
 * offsets) when any offset is negative.
 */
export function fragment(f: Fmp4Fragment): Uint8Array {
  const n = f.samples.length;
  if (n === 0) throw new OnairError('MP4_BAD_INPUT', 'fragment needs at least one sample');
  if (!Number.isSafeInteger(f.baseDecodeTime) || f.baseDecodeTime < 0) {
    throw new OnairError('MP4_BAD_INPUT', `baseDecodeTime ${f.baseDecodeTime} is not a non-negative safe integer`);
  }
  let payload = 0;
  let negative = false;
  for (const s of f.samples) {
    if (s.size !== undefined && s.size !== s.data.length) {
      throw new OnairError('MP4_BAD_INPUT', `sample size ${s.size} differs from its ${s.data.length} data bytes`);
    }
    if (!Number.isInteger(s.duration) || s.duration < 0 || s.duration > 0xffffffff) {
      throw new OnairError('MP4_BAD_INPUT', `sample duration ${s.duration} outside 0..4294967295`);
    }
    if (!Number.isInteger(s.cts) || s.cts < -0x80000000 || s.cts > 0x7fffffff) {
      throw new OnairError('MP4_BAD_INPUT', `sample composition offset ${s.cts} outside signed 32 bits`);
    }
    if (s.cts < 0) negative = true;
    payload += s.data.length;
  }
  const moofSize = MOOF_FIXED + n * TRUN_SAMPLE;
  const mdatSize = MDAT_HEADER + payload;
  if (moofSize + mdatSize > 0xffffffff) throw new OnairError('MP4_BAD_INPUT', `fragment of ${moofSize + mdatSize} bytes`);
  const out = new Uint8Array(moofSize + mdatSize);
  const v = new DataView(out.buffer);
  let at = 0;
  const u32 = (x: number): void => {
    v.setUint32(at, x >>> 0);
    at += 4;
  };
  const head = (size: number, type: string, versionFlags?: number): void => {
    u32(size);
    for (let i = 0; i < 4; i++) out[at++] = type.charCodeAt(i);
    if (versionFlags !== undefined) u32(versionFlags);
  };
  head(moofSize, 'moof');
  head(16, 'mfhd', 0);
  u32(f.sequence);
  head(moofSize - 24, 'traf');
  head(16, 'tfhd', TfhdFlag.DefaultBaseIsMoof);
  u32(f.trackId);
  head(20, 'tfdt', 0x01000000);
  u32(Math.floor(f.baseDecodeTime / 0x100000000));
  u32(f.baseDecodeTime % 0x100000000);
  const trunFlags =
    TrunFlag.DataOffset | TrunFlag.SampleDuration | TrunFlag.SampleSize | TrunFlag.SampleFlags | TrunFlag.SampleCompositionTimeOffset;
  head(20 + n * TRUN_SAMPLE, 'trun', ((negative ? 1 : 0) << 24) | trunFlags);
  u32(n);
  u32(moofSize + MDAT_HEADER); // data_offset from the moof start to the first sample
  for (const s of f.samples) {
    u32(s.duration);
    u32(s.data.length);
    u32(s.keyframe ? SampleFlags.Sync : SampleFlags.NonSync);
    u32(s.cts); // >>> 0 in u32 writes the two's complement that version 1 reads as signed
  }
  head(mdatSize, 'mdat');
  for (const s of f.samples) {
    out.set(s.data, at);
    at += s.data.length;
  }
  return out;
}

import {
  ExVideoPacketType,
  FLV_PREVIOUS_TAG_SIZE,
  FLV_TAG_HEADER_SIZE,
  FlvTagType,
  aacAudioBody,
  avcVideoBody,
  exVideoBody,
  exVideoHeaderSize,
  flvTag,
  fourCcNumber,
  onMetaDataBody,
  writeExVideoHeader,
} from '@onair/shared';
import { writeFiller } from './cbr-filler.js';

/** AVCVIDEOPACKET header: FrameType|CodecID, AVCPacketType, CompositionTime (FLV spec §E.4.3.1). */
const AVC_HEADER_SIZE = 5;
const AVC_KEY = 0x17; // FrameType 1 (key) | CodecID 7 (AVC)
const AVC_INTER = 0x27; // FrameType 2 (inter) | CodecID 7 (AVC)
const AVC_NALU = 1; // AVCPacketType 1: NALU
const AVC_END_OF_SEQUENCE = 2; // AVCPacketType 2: end of sequence
/** Timestamp plus TimestampExtended: 32 bits of milliseconds, about 49.7 days. */
export const MAX_TIMESTAMP_MS = 0xffffffff;

export interface StreamMetadata {
  width: number;
  height: number;
  framerate: number;
  videoBitrate: number;
  audioBitrate: number;
  sampleRate: number;
  channels: number;
}

/**
 * The video codec of a stream: `avc1` goes out in legacy FLV AVC tags (what every server reads),
 * `hvc1` and `av01` in Enhanced RTMP tags (ExVideoTagHeader with the FourCC).
 */
export type MuxerVideoCodec = 'avc1' | 'hvc1' | 'av01';

/**
 * Turns encoder output into FLV tags in file form (one WebSocket binary message each), for one
 * connection. One clock for both tracks: callers pass microseconds since the connection's origin.
 * Audio tags carry their presentation time, held at the last one rather than going back. Video
 * tags carry the decode time (DTS, from `DecodeTimes` when the encoder reorders frames), which
 * must increase strictly in milliseconds, and the composition time round(PTS) − round(DTS) ms,
 * which must not be negative; a frame that breaks either throws instead of being clamped.
 */
export class FlvMuxer {
  #lastAudioMs = 0;
  /** The last video tag's DTS in ms; −1 before the first. */
  #lastVideoMs = -1;
  #scratch = new Uint8Array(64 * 1024);
  #view = new DataView(this.#scratch.buffer);
  readonly #codec: MuxerVideoCodec;

  constructor(videoCodec: MuxerVideoCodec = 'avc1') {
    this.#codec = videoCodec;
  }

  metadata(meta: StreamMetadata): Uint8Array<ArrayBuffer> {
    // File form (`onMetaData, {…}`); the bridge adds `@setDataFrame` when it publishes.
    const body = onMetaDataBody(
      {
        duration: 0,
        width: meta.width,
        height: meta.height,
        framerate: meta.framerate,
        // AVC's CodecID, or the FourCC as a number for an Enhanced RTMP stream (enhanced-rtmp v2).
        videocodecid: this.#codec === 'avc1' ? 7 : fourCcNumber(this.#codec),
        videodatarate: meta.videoBitrate / 1000,
        audiocodecid: 10, // AAC
        audiodatarate: meta.audioBitrate / 1000,
        audiosamplerate: meta.sampleRate,
        audiosamplesize: 16,
        stereo: meta.channels === 2,
        encoder: 'onair studio',
      },
      false,
    );
    return flvTag({ type: FlvTagType.Script, timestamp: 0, data: body }) as Uint8Array<ArrayBuffer>;
  }

  /** The sequence header: the codec's configuration record (avcC, hvcC or av1C). */
  videoConfig(record: Uint8Array): Uint8Array<ArrayBuffer> {
    const data =
      this.#codec === 'avc1'
        ? avcVideoBody({ keyframe: true, packetType: 0, cts: 0, data: record })
        : exVideoBody({ fourcc: this.#codec, keyframe: true, packetType: ExVideoPacketType.SequenceStart, data: record });
    return flvTag({ type: FlvTagType.Video, timestamp: 0, data }) as Uint8Array<ArrayBuffer>;
  }

  /** The end of the video sequence (AVC end of sequence, or Enhanced RTMP SequenceEnd), at the last frame's time. */
  videoEnd(): Uint8Array<ArrayBuffer> {
    const data =
      this.#codec === 'avc1'
        ? avcVideoBody({ keyframe: true, packetType: AVC_END_OF_SEQUENCE, cts: 0, data: new Uint8Array(0) })
        : exVideoBody({ fourcc: this.#codec, keyframe: true, packetType: ExVideoPacketType.SequenceEnd, data: new Uint8Array(0) });
    return flvTag({ type: FlvTagType.Video, timestamp: Math.max(0, this.#lastVideoMs), data }) as Uint8Array<ArrayBuffer>;
  }

  audioConfig(asc: Uint8Array): Uint8Array<ArrayBuffer> {
    return flvTag({ type: FlvTagType.Audio, timestamp: 0, data: aacAudioBody({ packetType: 0, data: asc }) }) as Uint8Array<ArrayBuffer>;
  }

  /**
   * One access unit with its decode and presentation times: length-prefixed NAL units (AVC,
   * HEVC) or the OBUs of a temporal unit (AV1), plus for AVC `fillerBytes` of filler NAL unit for
   * CBR. The same bytes as `flvTag` of `avcVideoBody`, or of `exVideoBody` with CodedFrames, or
   * CodedFramesX for an HEVC frame shown at its decode time. The hot path, so no allocation: the
   * result is a view into a buffer reused by the next call (send it, or copy it, before muxing the
   * next frame; WebSocket.send copies).
   */
  video(data: Uint8Array, keyframe: boolean, dtsUs: number, ptsUs = dtsUs, fillerBytes = 0): Uint8Array<ArrayBuffer> {
    const ms = Math.round(dtsUs / 1000);
    if (ms <= this.#lastVideoMs) {
      throw new RangeError(this.#lastVideoMs < 0 ? `video decode time ${ms} ms before 0` : `video decode time ${ms} ms not after ${this.#lastVideoMs} ms`);
    }
    if (ms > MAX_TIMESTAMP_MS) throw new RangeError(`video timestamp ${ms} ms past FLV's 32 bits`);
    const cts = Math.round(ptsUs / 1000) - ms;
    if (cts < 0) throw new RangeError(`video decode time ${ms} ms after its presentation time ${ms + cts} ms`);
    if (cts > 0x7fffff) throw new RangeError(`composition time ${cts} ms past signed 24 bits`);
    if (this.#codec === 'av01' && cts !== 0) throw new RangeError(`AV1 frame with composition time ${cts} ms: av01 coded frames carry none`);
    if (this.#codec !== 'avc1' && fillerBytes > 0) throw new RangeError(`CBR filler is written in H.264 streams only, not ${this.#codec}`);
    this.#lastVideoMs = ms;
    // HEVC frames shown at their decode time go out as CodedFramesX, which leaves the zero out.
    const packetType = this.#codec === 'hvc1' && cts === 0 ? ExVideoPacketType.CodedFramesX : ExVideoPacketType.CodedFrames;
    const headerSize = this.#codec === 'avc1' ? AVC_HEADER_SIZE : exVideoHeaderSize(this.#codec, packetType);
    const bodySize = headerSize + data.length + fillerBytes;
    const size = FLV_TAG_HEADER_SIZE + bodySize + FLV_PREVIOUS_TAG_SIZE;
    if (this.#scratch.length < size) {
      this.#scratch = new Uint8Array(Math.max(size, this.#scratch.length * 2));
      this.#view = new DataView(this.#scratch.buffer);
    }
    const out = this.#scratch;
    const view = this.#view;
    view.setUint32(0, (FlvTagType.Video << 24) | bodySize); // TagType, DataSize
    view.setUint32(4, ((ms & 0xffffff) << 8) | (ms >>> 24)); // Timestamp, TimestampExtended
    out[8] = out[9] = out[10] = 0; // StreamID
    if (this.#codec === 'avc1') {
      out[FLV_TAG_HEADER_SIZE] = keyframe ? AVC_KEY : AVC_INTER;
      view.setUint32(FLV_TAG_HEADER_SIZE + 1, (AVC_NALU << 24) | (cts & 0xffffff));
    } else {
      writeExVideoHeader(out, FLV_TAG_HEADER_SIZE, { fourcc: this.#codec, keyframe, packetType, cts });
    }
    out.set(data, FLV_TAG_HEADER_SIZE + headerSize);
    if (fillerBytes > 0) writeFiller(out, FLV_TAG_HEADER_SIZE + headerSize + data.length, fillerBytes);
    view.setUint32(FLV_TAG_HEADER_SIZE + bodySize, FLV_TAG_HEADER_SIZE + bodySize); // PreviousTagSize
    return out.subarray(0, size);
  }

  /** One raw AAC frame. */
  audio(data: Uint8Array, timestampUs: number): Uint8Array<ArrayBuffer> {
    const ms = Math.max(this.#lastAudioMs, Math.round(timestampUs / 1000));
    this.#lastAudioMs = ms;
    return flvTag({ type: FlvTagType.Audio, timestamp: ms, data: aacAudioBody({ packetType: 1, data }) }) as Uint8Array<ArrayBuffer>;
  }
}

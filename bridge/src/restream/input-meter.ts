import {
  SoundFormat,
  TagKind,
  aacCodecString,
  avcCodecString,
  parseAudioBody,
  parseAvcC,
  parseSps,
  parseVideoBody,
  type FlvTag,
  type RestreamInputStats,
} from '@onair/shared';

/** Media time the rates are measured over. */
const WINDOW_MS = 5000;
/** Sound formats by SoundFormat number, for the codec column. */
const SOUND_FORMATS: Readonly<Record<number, string>> = { 2: 'mp3', 7: 'alaw', 8: 'ulaw', 11: 'speex' };

/**
 * What an input carries, read from its tags as they pass: bitrate and frame rate over the last
 * five seconds of arrival, the keyframe interval in media time, the codecs and picture size from
 * the sequence headers. A header it cannot read leaves its columns empty; it never throws.
 * Sans-I/O: the caller gives the arrival time.
 */
export class InputMeter {
  /** Arrival times and sizes in the window, oldest first (bounded by the window). */
  readonly #arrivals: { at: number; bytes: number; frame: boolean }[] = [];
  #head = 0;
  #bytes = 0;
  #frames = 0;
  #lastKeyframeTs: number | undefined;
  #keyframeIntervalS = 0;
  #videoCodec = '';
  #audioCodec = '';
  #width = 0;
  #height = 0;
  reconnects = 0;

  push(tag: FlvTag, kind: TagKind, now: number): void {
    const frame = kind === TagKind.Keyframe || kind === TagKind.Frame;
    this.#arrivals.push({ at: now, bytes: tag.data.length, frame });
    this.#bytes += tag.data.length;
    if (frame) this.#frames++;
    this.#trim(now);
    if (kind === TagKind.Keyframe) {
      if (this.#lastKeyframeTs !== undefined && tag.timestamp > this.#lastKeyframeTs) this.#keyframeIntervalS = (tag.timestamp - this.#lastKeyframeTs) / 1000;
      this.#lastKeyframeTs = tag.timestamp;
    } else if (kind === TagKind.VideoConfig) {
      this.#readVideoConfig(tag.data);
    } else if (kind === TagKind.AudioConfig || (kind === TagKind.Audio && this.#audioCodec === '')) {
      this.#readAudio(tag.data);
    }
  }

  /** The input started again: keyframe spacing restarts; codecs stay until new headers say otherwise. */
  restart(): void {
    this.#lastKeyframeTs = undefined;
  }

  stats(now: number): RestreamInputStats {
    this.#trim(now);
    return {
      bitrateKbps: Math.round((this.#bytes * 8) / WINDOW_MS),
      fps: Math.round((this.#frames * 10_000) / WINDOW_MS) / 10,
      keyframeIntervalS: this.#keyframeIntervalS,
      videoCodec: this.#videoCodec,
      audioCodec: this.#audioCodec,
      width: this.#width,
      height: this.#height,
      reconnects: this.reconnects,
    };
  }

  #trim(now: number): void {
    const list = this.#arrivals;
    while (this.#head < list.length && list[this.#head]!.at <= now - WINDOW_MS) {
      const old = list[this.#head++]!;
      this.#bytes -= old.bytes;
      if (old.frame) this.#frames--;
    }
    if (this.#head > 256 && this.#head * 2 > list.length) {
      list.splice(0, this.#head);
      this.#head = 0;
    }
  }

  #readVideoConfig(data: Uint8Array): void {
    try {
      const body = parseVideoBody(data);
      if (body.fourcc !== undefined && body.fourcc !== 'avc1') {
        this.#videoCodec = body.fourcc;
        return;
      }
      const config = parseAvcC(body.data);
      this.#videoCodec = avcCodecString(config);
      const sps = config.sps[0];
      if (sps !== undefined) {
        const parsed = parseSps(sps);
        this.#width = parsed.width;
        this.#height = parsed.height;
      }
    } catch {
      // A header we cannot read is still relayed byte for byte; only the stats stay empty.
    }
  }

  #readAudio(data: Uint8Array): void {
    try {
      const body = parseAudioBody(data);
      if (body.fourcc !== undefined) this.#audioCodec = body.fourcc;
      else if (body.soundFormat !== SoundFormat.Aac) this.#audioCodec = SOUND_FORMATS[body.soundFormat] ?? `format ${body.soundFormat}`;
      else if (body.packetType === 0) this.#audioCodec = aacCodecString(body.data);
    } catch {
      // as above
    }
  }
}

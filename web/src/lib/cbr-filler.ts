// H.264 §7.3.2.7 filler_data_rbsp: NAL unit type 12, 0xFF bytes, rbsp_trailing_bits (0x80).
const FILLER_NAL_HEADER = 0x0c; // nal_ref_idc 0, nal_unit_type 12 (filler data)
const FILLER_OVERHEAD = 4 + 1 + 1; // AVCC length prefix, NAL header, trailing bits
/** Never add more than this many frames' worth of filler to one frame. */
const MAX_FRAMES_PER_FILL = 3;

/**
 * Keeps an H.264 stream at its constant bitrate when the encoder undershoots (software encoders
 * do on static or simple pictures): appends a filler-data NAL unit to frames below budget, as
 * x264 does with `nal-hrd=cbr`. Decoders discard filler; ingest servers and players see the
 * steady rate CBR promises. Access units are AVCC with 4-byte lengths (see `fillerFits`).
 */
export class CbrFiller {
  readonly #perFrame: number;
  /** Bytes the stream is behind its budget (negative: ahead, after a big keyframe). */
  #credit = 0;

  constructor(bitrate: number, fps: number) {
    this.#perFrame = bitrate / 8 / fps;
  }

  /** Bytes of filler (one whole NAL unit with its length prefix) to append to a frame of `size` bytes. */
  fillerFor(size: number): number {
    this.#credit = Math.min(this.#credit + this.#perFrame - size, this.#perFrame * MAX_FRAMES_PER_FILL);
    // Going far over budget (keyframes) is paid back over the next frames, but not forever.
    this.#credit = Math.max(this.#credit, -this.#perFrame * MAX_FRAMES_PER_FILL * 10);
    const fill = Math.floor(this.#credit);
    if (fill < FILLER_OVERHEAD + 16) return 0;
    this.#credit -= fill;
    return fill;
  }
}

/** Writes a filler NAL unit of `length` bytes in total (AVCC length prefix included) at `at`. */
export function writeFiller(out: Uint8Array, at: number, length: number): void {
  new DataView(out.buffer, out.byteOffset).setUint32(at, length - 4);
  out[at + 4] = FILLER_NAL_HEADER;
  out.fill(0xff, at + 5, at + length - 1);
  out[at + length - 1] = 0x80;
}

/**
 * Whether filler NAL units (written with 4-byte lengths) fit the stream an avcC record describes:
 * lengthSizeMinusOne (ISO/IEC 14496-15 §5.3.3.1.2, the low 2 bits of byte 4) must be 3.
 */
export function fillerFits(avcC: Uint8Array): boolean {
  return avcC.length > 4 && (avcC[4]! & 0x03) === 3;
}

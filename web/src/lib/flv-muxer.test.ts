import { describe, expect, it } from 'vitest';
import { avcVideoBody, flvTag, parseFlvTag } from '@onair/shared';
import { CbrFiller, fillerFits } from './cbr-filler.js';
import { FlvMuxer } from './flv-muxer.js';

describe('FlvMuxer.video', () => {
  it('writes the same bytes as flvTag(avcVideoBody(...)), extended timestamps and negative cts included', () => {
    const m = new FlvMuxer();
    for (const [ms, key, cts] of [[0, true, 0], [33, false, 67], [0x1234567, false, -5], [0x89abcdef, true, 0]] as const) {
      const data = Uint8Array.from({ length: 100 }, (_, i) => i);
      const a = m.video(data, key, ms * 1000, (ms + cts) * 1000);
      const b = flvTag({ type: 9, timestamp: ms, data: avcVideoBody({ keyframe: key, packetType: 1, cts, data }) });
      expect(Array.from(a)).toEqual(Array.from(b));
    }
  });

  it('appends a well-formed filler NAL unit (H.264 7.3.2.7) up to the CBR budget', () => {
    const filler = new CbrFiller(2_500_000, 30);
    const n = filler.fillerFor(1000);
    expect(n).toBe(Math.floor(2_500_000 / 8 / 30) - 1000);
    const tag = parseFlvTag(new FlvMuxer().video(new Uint8Array(1000), false, 0, 0, n));
    expect(tag.data.length).toBe(5 + 1000 + n);
    const at = 5 + 1000;
    expect(new DataView(tag.data.buffer, tag.data.byteOffset).getUint32(at)).toBe(n - 4);
    expect(tag.data[at + 4]).toBe(0x0c);
    expect(tag.data.subarray(at + 5, tag.data.length - 1).every((b) => b === 0xff)).toBe(true);
    expect(tag.data[tag.data.length - 1]).toBe(0x80);
  });

  it('pays a big keyframe back before filling again', () => {
    const filler = new CbrFiller(2_500_000, 30);
    const perFrame = 2_500_000 / 8 / 30;
    expect(filler.fillerFor(perFrame * 5)).toBe(0);
    let paid = 0;
    for (let i = 0; i < 3; i++) paid += filler.fillerFor(perFrame / 2);
    expect(paid).toBe(0);
  });

  it('fills only streams with 4-byte NAL unit lengths (avcC lengthSizeMinusOne = 3)', () => {
    // configurationVersion 1, profile 66, compatibility 0xc0, level 31, then 0xfc | lengthSizeMinusOne.
    const avcC = (lengthSizeMinusOne: number): Uint8Array => Uint8Array.of(1, 66, 0xc0, 31, 0xfc | lengthSizeMinusOne, 0xe0, 0);
    expect(fillerFits(avcC(3))).toBe(true);
    expect(fillerFits(avcC(1))).toBe(false);
    expect(fillerFits(avcC(0))).toBe(false);
    expect(fillerFits(new Uint8Array(4))).toBe(false);
  });

  it('refuses a decode timestamp that goes backwards (a reordering encoder) instead of clamping it', () => {
    const m = new FlvMuxer();
    m.video(new Uint8Array(10), true, 66_000);
    expect(() => m.video(new Uint8Array(10), false, 33_000)).toThrow(/backwards/);
  });

  it('refuses timestamps at or past 2^32 ms instead of wrapping', () => {
    expect(() => new FlvMuxer().video(new Uint8Array(10), true, 2 ** 32 * 1000)).toThrow(RangeError);
    expect(() => new FlvMuxer().audio(new Uint8Array(10), 2 ** 32 * 1000)).toThrow();
  });
});

import { describe, expect, it } from 'vitest';
import { avcVideoBody, flvTag, parseFlvTag, parseVideoBody } from '@onair/shared';
import { CbrFiller, fillerFits } from './cbr-filler.js';
import { FlvMuxer } from './flv-muxer.js';

describe('FlvMuxer.video', () => {
  it('writes the same bytes as flvTag(avcVideoBody(...)), extended timestamps and large composition times included', () => {
    const m = new FlvMuxer();
    for (const [ms, key, cts] of [[0, true, 0], [33, false, 67], [0x1234567, false, 0x7fffff], [0x89abcdef, true, 0]] as const) {
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

  it('writes CompositionTime = round(PTS) − round(DTS) in ms, for times that are not whole ms', () => {
    const m = new FlvMuxer();
    // DTS 1.4 ms → 1 ms, PTS 100.5 ms → 101 ms: 100 ms, where round(PTS − DTS) would say 99.
    const tag = parseFlvTag(m.video(new Uint8Array(10), false, 1_400, 100_500).slice());
    expect(tag.timestamp).toBe(1);
    expect(parseVideoBody(tag.data).cts).toBe(100);
  });

  it('refuses decode times that do not increase in ms, or that pass the presentation time, instead of clamping them', () => {
    const m = new FlvMuxer();
    m.video(new Uint8Array(10), true, 66_000);
    expect(() => m.video(new Uint8Array(10), false, 33_000)).toThrow(/33 ms not after 66 ms/);
    // Two decode times 0.6 ms apart round to the same millisecond.
    expect(() => m.video(new Uint8Array(10), false, 66_400)).toThrow(/66 ms not after 66 ms/);
    expect(() => m.video(new Uint8Array(10), false, 100_000, 99_000)).toThrow(/decode time 100 ms after its presentation time 99 ms/);
    // A refused frame changes nothing: the next good one follows the last written.
    expect(parseFlvTag(m.video(new Uint8Array(10), false, 67_000, 100_000).slice()).timestamp).toBe(67);
    expect(() => new FlvMuxer().video(new Uint8Array(10), true, -1_000)).toThrow(/before 0/);
  });

  it('refuses timestamps at or past 2^32 ms instead of wrapping', () => {
    expect(() => new FlvMuxer().video(new Uint8Array(10), true, 2 ** 32 * 1000)).toThrow(RangeError);
    expect(() => new FlvMuxer().audio(new Uint8Array(10), 2 ** 32 * 1000)).toThrow();
  });
});

import { describe, expect, it } from 'vitest';
import { avcVideoBody, flvTag, parseFlvTag } from '@onair/shared';
import { CbrFiller } from './cbr-filler.js';
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
});

import { describe, expect, it } from 'vitest';
import { BitReader, BitWriter } from './bitstream.js';
import { ByteReader } from './byte-reader.js';
import { ByteWriter } from './byte-writer.js';
import { errorCode as code } from '../testing/bytes.js';

describe('ByteWriter / ByteReader', () => {
  it('writes big-endian fields as the spec bytes', () => {
    const w = new ByteWriter(16);
    w.u8(0xab).u16(0x1234).u24(0x56789a).i24(-2).u32(0xdeadbeef).u32le(0x01020304).i16(-2).f64(1);
    expect(Array.from(w.finish())).toEqual([
      0xab, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xff, 0xff, 0xfe, 0xde, 0xad, 0xbe, 0xef, 0x04, 0x03, 0x02, 0x01, 0xff, 0xfe,
      0x3f, 0xf0, 0, 0, 0, 0, 0, 0,
    ]);
  });

  it('keeps every byte when a write of each kind triggers growth', () => {
    // Each write below lands exactly where the 16-byte buffer must grow.
    const kinds: Array<[string, (w: ByteWriter) => void, number[]]> = [
      ['u8', (w) => w.u8(0x7f), [0x7f]],
      ['u16', (w) => w.u16(0x0102), [1, 2]],
      ['u24', (w) => w.u24(0x010203), [1, 2, 3]],
      ['u32', (w) => w.u32(0x01020304), [1, 2, 3, 4]],
      ['u32le', (w) => w.u32le(0x01020304), [4, 3, 2, 1]],
      ['i16', (w) => w.i16(-1), [0xff, 0xff]],
      ['f64', (w) => w.f64(2), [0x40, 0, 0, 0, 0, 0, 0, 0]],
      ['bytes', (w) => w.bytes(Uint8Array.of(9, 8, 7, 6, 5)), [9, 8, 7, 6, 5]],
    ];
    for (const [name, write, expected] of kinds) {
      const w = new ByteWriter(16);
      for (let i = 0; i < 15; i++) w.u8(i);
      write(w);
      expect(Array.from(w.finish()), name).toEqual([...Array.from({ length: 15 }, (_, i) => i), ...expected]);
    }
  });

  it('patchU32 rewrites a size written earlier', () => {
    const w = new ByteWriter();
    w.u32(0).u8(1).u8(2);
    w.patchU32(0, w.length);
    expect(Array.from(w.finish())).toEqual([0, 0, 0, 6, 1, 2]);
  });

  it('reset writes from the start again, in the buffer it has grown', () => {
    const w = new ByteWriter(16);
    const first = w.bytes(new Uint8Array(40).fill(1)).finish();
    const second = w.reset().u8(2).u8(3).finish();
    expect(Array.from(second)).toEqual([2, 3]);
    expect(second.buffer).toBe(first.buffer);
  });

  it('reads back what it wrote and throws SHORT_INPUT past the end', () => {
    const r = new ByteReader(Uint8Array.of(0xff, 0xff, 0xfe, 0x80, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78));
    expect(r.i24()).toBe(-2);
    expect(r.i24()).toBe(-0x800000);
    expect(r.u32le()).toBe(0x78563412);
    expect(r.left).toBe(0);
    expect(code(() => r.u8())).toBe('SHORT_INPUT');
    const v = new ByteReader(Uint8Array.of(1, 2, 3, 4), 1, 3);
    expect(Array.from(v.bytesView(2))).toEqual([2, 3]);
    expect(code(() => v.bytesView(1))).toBe('SHORT_INPUT');
  });

  it('reads through a subarray with a byte offset', () => {
    const backing = Uint8Array.of(0xaa, 0x00, 0x01, 0x02, 0x03);
    expect(new ByteReader(backing.subarray(1)).u32()).toBe(0x00010203);
  });
});

describe('BitReader / BitWriter', () => {
  it('reads Exp-Golomb codes as in H.264 Table 9-2', () => {
    // 1 | 010 | 011 | 00100 | 00111 | 0001000 | 0001001 -> ue 0,1,2,3,6,7,8
    const r = new BitReader(Uint8Array.of(0b10100110, 0b01000011, 0b10001000, 0b00010010));
    expect([r.ue(), r.ue(), r.ue(), r.ue(), r.ue(), r.ue(), r.ue()]).toEqual([0, 1, 2, 3, 6, 7, 8]);
    // se(v) mapping of codeNum 0..4 is 0, 1, -1, 2, -2 (Table 9-3).
    const s = new BitReader(Uint8Array.of(0b10100110, 0b01000010, 0b10000000));
    expect([s.se(), s.se(), s.se(), s.se(), s.se()]).toEqual([0, 1, -1, 2, -2]);
  });

  it('reads fixed-width fields across byte boundaries', () => {
    const r = new BitReader(Uint8Array.of(0x12, 0x34, 0x56, 0x78, 0x9a));
    expect(r.bits(4)).toBe(0x1);
    expect(r.bits(12)).toBe(0x234);
    expect(r.position).toBe(16);
    expect(code(() => r.bits(32))).toBe('SHORT_INPUT');
    expect(r.bits(24)).toBe(0x56789a);
    expect(new BitReader(Uint8Array.of(0xde, 0xad, 0xbe, 0xef)).bits(32)).toBe(0xdeadbeef);
  });

  it('throws SHORT_INPUT past the end and BITSTREAM_MALFORMED on an endless code', () => {
    const r = new BitReader(Uint8Array.of(0xff));
    expect(code(() => r.bits(9))).toBe('SHORT_INPUT');
    expect(code(() => new BitReader(new Uint8Array(8)).ue())).toBe('BITSTREAM_MALFORMED');
    expect(code(() => new BitReader(Uint8Array.of(0x00, 0x01)).ue())).toBe('SHORT_INPUT');
  });

  it('writes fields MSB first and pads the last byte with zeros', () => {
    expect(Array.from(new BitWriter(2).bits(5, 2).bits(4, 3).bits(4, 2).bits(3, 0).finish())).toEqual([0x11, 0x90]);
    expect(Array.from(new BitWriter(4).bits(24, 0xabcdef).bits(1, 1).finish())).toEqual([0xab, 0xcd, 0xef, 0x80]);
  });
});

import { describe, expect, it } from 'vitest';
import { cat, errorCode as code, h } from '../testing/bytes.js';
import { ExVideoPacketType, exVideoBody, fourCcNumber, parseVideoBody, readExVideoHeader, type VideoBody } from './flv-media.js';
import { TagKind, tagKind } from './tag-kind.js';

// Bodies built by hand from the ExVideoTagHeader table of enhanced-rtmp v2: byte 0 is
// IsExHeader(1) | VideoFrameType(3) | VideoPacketType(4); ModEx (7) is followed by
// UI8 size − 1 (0xff: UI16 size − 1), the data, then VideoPacketModExType(4) | VideoPacketType(4);
// a command frame (FrameType 5) carries a UI8 VideoCommand and no FourCC.

const video = (data: Uint8Array): { type: number; timestamp: number; data: Uint8Array } => ({ type: 9, timestamp: 0, data });

describe('Enhanced RTMP video tags: reading', () => {
  it('each VideoPacketType of the spec, with the FourCCs onair carries', () => {
    const cases: [string, Partial<Omit<VideoBody, 'data'>> & { data: number[] }, TagKind][] = [
      ["90 'av01' 81 00 0c 00", { frameType: 1, keyframe: true, packetType: 0, fourcc: 'av01', cts: 0, data: [0x81, 0, 0x0c, 0] }, TagKind.VideoConfig],
      ["91 'hvc1' ff ff fe 26 01", { frameType: 1, keyframe: true, packetType: 1, fourcc: 'hvc1', cts: -2, data: [0x26, 1] }, TagKind.Keyframe],
      ["91 'avc1' 00 00 43 65", { packetType: 1, fourcc: 'avc1', cts: 0x43, data: [0x65] }, TagKind.Keyframe],
      ["a1 'av01' 32 00", { frameType: 2, keyframe: false, packetType: 1, fourcc: 'av01', cts: 0, data: [0x32, 0] }, TagKind.Frame],
      ["a1 'vp09' 82", { packetType: 1, fourcc: 'vp09', cts: 0, data: [0x82] }, TagKind.Frame],
      ["a3 'hvc1' 02 01", { frameType: 2, packetType: 3, fourcc: 'hvc1', cts: 0, data: [2, 1] }, TagKind.Frame],
      ["93 'hvc1' 26", { keyframe: true, packetType: 3, cts: 0, data: [0x26] }, TagKind.Keyframe],
      ["92 'av01'", { packetType: 2, fourcc: 'av01', data: [] }, TagKind.Other],
      // A sequence start or end needs no frame type: a reserved one is no reason to lose it.
      ["80 'hvc1' 01", { frameType: 0, keyframe: false, packetType: 0, fourcc: 'hvc1', data: [1] }, TagKind.VideoConfig],
      // An empty sequence start configures nothing (the spec's sample FLVs open with one).
      ["90 'av01'", { packetType: 0, fourcc: 'av01', data: [] }, TagKind.Other],
      ["f2 'av01'", { frameType: 7, packetType: 2, data: [] }, TagKind.Other],
      // Metadata: FrameType is ignored (here 1, and 0 below), the body is AMF.
      ["94 'hvc1' 02 00 09 'colorInfo' 05", { keyframe: false, packetType: 4, fourcc: 'hvc1', data: [2, 0, 9, ...Array.from('colorInfo', (c) => c.charCodeAt(0)), 5] }, TagKind.Other],
      ["84 'av01' 05", { frameType: 0, keyframe: false, packetType: 4, data: [5] }, TagKind.Other],
      ["95 'av01' 80 04 00", { packetType: 5, fourcc: 'av01', data: [0x80, 4, 0] }, TagKind.Other],
      // Command frames: no FourCC, a VideoCommand byte.
      ['d0 01', { frameType: 5, keyframe: false, packetType: 0, command: 1, data: [] }, TagKind.Other],
      ['d3 00 ee', { frameType: 5, packetType: 3, command: 0, data: [0xee] }, TagKind.Other],
    ];
    for (const [bytes, want, kind] of cases) {
      const body = parseVideoBody(h(bytes));
      expect({ ...body, data: Array.from(body.data) }, bytes).toMatchObject({ codecId: 0, ...want });
      expect(tagKind(video(h(bytes))), bytes).toBe(kind);
    }
  });

  it('ModEx: TimestampOffsetNano read, unknown modifiers skipped, the packet type after them used', () => {
    // ModEx on a keyframe: size 3, 500 ns, then type 0 | CodedFrames, 'hvc1', cts 33.
    const nano = h("97 02 00 01 f4 01 'hvc1' 00 00 21 26 01");
    const body = parseVideoBody(nano);
    expect([body.packetType, body.nanoOffset, body.cts, body.fourcc, body.keyframe, Array.from(body.data)]).toEqual([1, 500, 33, 'hvc1', true, [0x26, 1]]);
    expect(tagKind(video(nano))).toBe(TagKind.Keyframe);
    // Two ModEx in a row, the first of a reserved type 5 with 2 bytes, the second with the 16-bit size form
    // (0xff, then UI16 size − 1 = 2: three bytes); then SequenceStart.
    const chained = h("a7 01 aa bb 57 ff 00 02 00 03 e8 00 'av01' 81");
    const start = parseVideoBody(chained);
    expect([start.packetType, start.nanoOffset, start.fourcc, Array.from(start.data)]).toEqual([0, 1000, 'av01', [0x81]]);
    expect(tagKind(video(chained))).toBe(TagKind.VideoConfig);
    expect(readExVideoHeader(chained).bodyAt).toBe(chained.length - 1);
    expect(code(() => parseVideoBody(h("97 01 00 01 01 'hvc1' 00 00 00")))).toBe('FLV_MALFORMED'); // nano offset in 2 bytes
  });

  it('refuses multitrack (not carried yet), reserved packet and frame types, and every truncation', () => {
    const multitrack = h("96 00 'av01' 00 81 00");
    expect(code(() => parseVideoBody(multitrack))).toBe('FLV_UNSUPPORTED');
    expect(() => parseVideoBody(multitrack)).toThrow(/multitrack video is not supported/);
    expect(tagKind(video(multitrack))).toBe(TagKind.Other);
    expect(code(() => parseVideoBody(h("98 'av01'")))).toBe('FLV_MALFORMED');
    expect(() => parseVideoBody(h("9f 'av01'"))).toThrow(/reserved Enhanced RTMP VideoPacketType 15/);
    expect(() => parseVideoBody(h("81 'av01'"))).toThrow(/reserved Enhanced RTMP VideoFrameType 0/);
    expect(code(() => parseVideoBody(h("e1 'av01'")))).toBe('FLV_MALFORMED'); // FrameType 6
    // Every prefix of a valid body that ends inside its header: a clear error, and no starting point.
    const whole = h("97 ff 00 02 00 03 e8 01 'hvc1' 00 00 21 26");
    for (let n = 1; n < whole.length - 1; n++) {
      expect(code(() => parseVideoBody(whole.subarray(0, n))), `${n} bytes`).toBe('FLV_MALFORMED');
      expect(tagKind(video(whole.subarray(0, n)))).toBe(TagKind.Other);
    }
    expect(parseVideoBody(whole.subarray(0, whole.length - 1)).data.length).toBe(0);
  });
});

describe('Enhanced RTMP video tags: writing', () => {
  it('golden bytes for every packet type onair writes', () => {
    const d = h('aa bb');
    expect(exVideoBody({ fourcc: 'av01', keyframe: true, packetType: ExVideoPacketType.SequenceStart, data: d })).toEqual(h("90 'av01' aa bb"));
    expect(exVideoBody({ fourcc: 'av01', keyframe: false, packetType: ExVideoPacketType.CodedFrames, data: d })).toEqual(h("a1 'av01' aa bb"));
    expect(exVideoBody({ fourcc: 'hvc1', keyframe: true, packetType: ExVideoPacketType.CodedFrames, cts: -1, data: d })).toEqual(h("91 'hvc1' ff ff ff aa bb"));
    expect(exVideoBody({ fourcc: 'avc1', keyframe: false, packetType: ExVideoPacketType.CodedFrames, cts: 0x7fffff, data: d })).toEqual(h("a1 'avc1' 7f ff ff aa bb"));
    expect(exVideoBody({ fourcc: 'hvc1', keyframe: false, packetType: ExVideoPacketType.CodedFramesX, data: d })).toEqual(h("a3 'hvc1' aa bb"));
    expect(exVideoBody({ fourcc: 'hvc1', keyframe: true, packetType: ExVideoPacketType.SequenceEnd, data: new Uint8Array(0) })).toEqual(h("92 'hvc1'"));
    expect(code(() => exVideoBody({ fourcc: 'av01', keyframe: false, packetType: ExVideoPacketType.CodedFrames, cts: 1, data: d }))).toBe('FLV_BAD_TIMESTAMP');
    expect(code(() => exVideoBody({ fourcc: 'hvc1', keyframe: false, packetType: ExVideoPacketType.CodedFramesX, cts: 1, data: d }))).toBe('FLV_BAD_TIMESTAMP');
    expect(code(() => exVideoBody({ fourcc: 'hvc1', keyframe: false, packetType: ExVideoPacketType.CodedFrames, cts: 0x800000, data: d }))).toBe('FLV_BAD_TIMESTAMP');
  });

  it('round-trips through the parser', () => {
    for (const [fourcc, packetType, cts] of [['hvc1', 1, -300], ['hvc1', 3, 0], ['av01', 1, 0], ['avc1', 1, 1234], ['vp09', 0, 0]] as const) {
      const data = cat(h('01 02 03'), new Uint8Array(100).fill(9));
      const body = parseVideoBody(exVideoBody({ fourcc, keyframe: packetType === 0, packetType, cts, data }));
      expect([body.fourcc, body.packetType, body.cts, body.keyframe, Array.from(body.data)]).toEqual([fourcc, packetType, cts, packetType === 0, Array.from(data)]);
    }
  });

  it('FourCCs as onMetaData numbers', () => {
    expect([fourCcNumber('av01'), fourCcNumber('hvc1'), fourCcNumber('avc1'), fourCcNumber('vp09')]).toEqual([0x61763031, 0x68766331, 0x61766331, 0x76703039]);
    expect(() => fourCcNumber('av1')).toThrow(RangeError);
  });
});

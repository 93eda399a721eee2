import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Amf0EcmaArray, amf0Props, decodeAmf0, encodeAmf0 } from '../amf/amf0.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { aacAudioBody, avcVideoBody, onMetaDataBody, parseAudioBody, parseScriptBody, parseVideoBody } from './flv-media.js';
import { FlvReader, parseFlvTag } from './flv-reader.js';
import { sanitizeMetadata } from './metadata.js';
import { FlvTagType, type FlvTag } from './flv-tag.js';
import { flvHeader, flvTag, writeFlvTagInto } from './flv-writer.js';
import { cat, errorCode as code, h } from '../testing/bytes.js';

/** Plain copies, so tags compare by value whatever buffer they view. */
function plain(tags: FlvTag[]): Array<{ type: number; timestamp: number; data: number[] }> {
  return tags.map((t) => ({ type: t.type, timestamp: t.timestamp, data: Array.from(t.data) }));
}

function readAll(chunks: Iterable<Uint8Array>, options = {}): FlvTag[] {
  const r = new FlvReader(options);
  const tags: FlvTag[] = [];
  for (const c of chunks) tags.push(...r.push(c));
  r.end();
  return tags;
}

function* chunked(bytes: Uint8Array, size: number): Generator<Uint8Array> {
  // Fresh copies: the reader must not depend on chunks staying in one backing buffer.
  for (let i = 0; i < bytes.length; i += size) yield bytes.slice(i, i + size);
}

// Golden bytes hand-assembled from the FLV spec v10.1 §E.2 (header) and §E.4.1 (tag).
const HEADER_AV = h("'FLV' 01 05 00 00 00 09 00 00 00 00");
const TAG_VIDEO = h('09 00 00 03 34 56 78 12 00 00 00 01 02 03 00 00 00 0e');
const TAG_AUDIO_EMPTY = h('08 00 00 00 00 00 00 00 00 00 00 00 00 00 0b');
const TAG_SCRIPT = h("12 00 00 02 ff ff ff 00 00 00 00 'hi' 00 00 00 0d");

describe('FLV writer: golden bytes', () => {
  it('header and PreviousTagSize0', () => {
    expect(flvHeader({ audio: true, video: true })).toEqual(HEADER_AV);
    expect(flvHeader({ audio: false, video: true })[4]).toBe(0x01);
    expect(flvHeader({ audio: true, video: false })[4]).toBe(0x04);
  });

  it('tags, with the timestamp upper 8 bits in TimestampExtended', () => {
    expect(flvTag({ type: FlvTagType.Video, timestamp: 0x12345678, data: h('01 02 03') })).toEqual(TAG_VIDEO);
    expect(flvTag({ type: FlvTagType.Audio, timestamp: 0, data: new Uint8Array(0) })).toEqual(TAG_AUDIO_EMPTY);
    expect(flvTag({ type: FlvTagType.Script, timestamp: 0xffffff, data: h("'hi'") })).toEqual(TAG_SCRIPT);
  });

  it('writeFlvTagInto batches the same bytes', () => {
    const w = new ByteWriter(4);
    writeFlvTagInto(w, { type: 9, timestamp: 0x12345678, data: h('01 02 03') });
    writeFlvTagInto(w, { type: 8, timestamp: 0, data: new Uint8Array(0) });
    expect(w.finish()).toEqual(cat(TAG_VIDEO, TAG_AUDIO_EMPTY));
  });

  it('refuses bodies over 24 bits and timestamps outside 32 bits', () => {
    expect(code(() => flvTag({ type: 9, timestamp: 0, data: new Uint8Array(0x1000000) }))).toBe('FLV_TOO_LARGE');
    expect(code(() => flvTag({ type: 9, timestamp: -1, data: new Uint8Array(1) }))).toBe('FLV_BAD_TIMESTAMP');
    expect(code(() => flvTag({ type: 9, timestamp: 2 ** 32, data: new Uint8Array(1) }))).toBe('FLV_BAD_TIMESTAMP');
    expect(code(() => flvTag({ type: 9, timestamp: 1.5, data: new Uint8Array(1) }))).toBe('FLV_BAD_TIMESTAMP');
  });
});

describe('FLV reader', () => {
  const file = cat(HEADER_AV, TAG_VIDEO, TAG_AUDIO_EMPTY, TAG_SCRIPT);
  const expected = [
    { type: 9, timestamp: 0x12345678, data: [1, 2, 3] },
    { type: 8, timestamp: 0, data: [] },
    { type: 18, timestamp: 0xffffff, data: [0x68, 0x69] },
  ];

  it('reads the golden file', () => {
    const r = new FlvReader();
    expect(r.header).toBeUndefined();
    expect(plain(r.push(file))).toEqual(expected);
    expect(r.header).toEqual({ audio: true, video: true });
    r.end();
    r.close();
  });

  it('gives the same tags split at every offset and every pair of offsets', () => {
    for (let i = 0; i <= file.length; i++) {
      expect(plain(readAll([file.slice(0, i), file.slice(i)])), `split at ${i}`).toEqual(expected);
      for (let j = i; j <= file.length; j += 1) {
        expect(plain(readAll([file.slice(0, i), file.slice(i, j), file.slice(j)]))).toEqual(expected);
      }
    }
    expect(plain(readAll(chunked(file, 1)))).toEqual(expected);
  });

  it('returns each tag from the push that completes it', () => {
    const r = new FlvReader();
    const firstTagEnd = HEADER_AV.length + TAG_VIDEO.length;
    expect(r.push(file.slice(0, firstTagEnd - 1))).toEqual([]);
    expect(r.buffered).toBeGreaterThan(0);
    expect(plain(r.push(file.slice(firstTagEnd - 1, firstTagEnd)))).toEqual(expected.slice(0, 1));
    expect(r.buffered).toBe(0);
  });

  it('headerless: bare tags, as on the WebSocket', () => {
    const bare = cat(TAG_VIDEO, TAG_AUDIO_EMPTY, TAG_SCRIPT);
    for (let i = 0; i <= bare.length; i++) {
      expect(plain(readAll([bare.slice(0, i), bare.slice(i)], { headerless: true }))).toEqual(expected);
    }
    expect(plain([parseFlvTag(TAG_VIDEO), parseFlvTag(TAG_AUDIO_EMPTY), parseFlvTag(TAG_SCRIPT)])).toEqual(expected);
  });

  it('round-trips written tags, including 32-bit timestamps and empty bodies', () => {
    const tags: FlvTag[] = [];
    for (let i = 0; i < 50; i++) {
      const data = Uint8Array.from({ length: (i * 37) % 300 }, (_, k) => (k * 7 + i) & 0xff);
      tags.push({ type: [8, 9, 18][i % 3]!, timestamp: i === 49 ? 0xffffffff : i * 0x1234567, data });
    }
    const bytes = cat(flvHeader({ audio: true, video: true }), ...tags.map(flvTag));
    for (const size of [1, 2, 11, 15, 64, 1000, bytes.length]) {
      expect(plain(readAll(chunked(bytes, size))), `chunks of ${size}`).toEqual(plain(tags));
    }
    for (const t of tags) expect(plain([parseFlvTag(flvTag(t))])).toEqual(plain([t]));
  });

  it('reports a bad signature, DataOffset and PreviousTagSize clearly', () => {
    const bad = file.slice();
    bad[0] = 0x47;
    expect(() => new FlvReader().push(bad)).toThrow(/bad FLV signature 47 4c 56/);
    expect(code(() => new FlvReader().push(bad))).toBe('FLV_MALFORMED');

    const offset = file.slice();
    offset[8] = 3;
    expect(code(() => new FlvReader().push(offset))).toBe('FLV_MALFORMED');

    const prev = file.slice();
    prev[HEADER_AV.length + TAG_VIDEO.length - 1] = 0x0f;
    expect(() => new FlvReader().push(prev)).toThrow(/bad PreviousTagSize 15 .*\(expected 14, at stream offset 27\)/);

    const prev0 = file.slice();
    prev0[12] = 1;
    expect(() => new FlvReader().push(prev0)).toThrow(/PreviousTagSize0 1/);

    const r = new FlvReader();
    expect(code(() => r.push(bad))).toBe('FLV_MALFORMED');
    expect(code(() => r.push(file))).toBe('FLV_MALFORMED');
  });

  it('accepts a DataOffset beyond 9 by skipping the extra header bytes', () => {
    const long = cat(h("'FLV' 01 01 00 00 00 0c aa bb cc 00 00 00 00"), TAG_VIDEO);
    expect(plain(readAll(chunked(long, 1)))).toEqual(expected.slice(0, 1));
  });

  it('refuses a tag over the size limit before buffering it', () => {
    const r = new FlvReader({ maxTagSize: 2 });
    expect(code(() => r.push(cat(HEADER_AV, TAG_VIDEO.slice(0, 11))))).toBe('FLV_TOO_LARGE');
    expect(r.buffered).toBe(0);
    // 16 MiB − 1 is under the default limit: the header is accepted and the body awaited.
    expect(new FlvReader({ headerless: true }).push(h('09 ff ff ff 00 00 00 00 00 00 00'))).toEqual([]);
    expect(code(() => new FlvReader({ headerless: true, maxTagSize: 1 << 20 }).push(h('09 ff ff ff 00 00 00 00 00 00 00')))).toBe('FLV_TOO_LARGE');
  });

  it('refuses encrypted tags and input that ends inside a tag', () => {
    expect(code(() => new FlvReader({ headerless: true }).push(h('29 00 00 00 00 00 00 00 00 00 00')))).toBe('FLV_MALFORMED');
    const r = new FlvReader();
    r.push(file.slice(0, file.length - 1));
    expect(() => r.end()).toThrow(/ends inside a tag/);
    const header = new FlvReader();
    header.push(file.slice(0, 5));
    expect(code(() => header.end())).toBe('FLV_MALFORMED');
  });

  it('parseFlvTag insists on exactly one whole tag', () => {
    expect(code(() => parseFlvTag(TAG_VIDEO.slice(0, 17)))).toBe('FLV_MALFORMED');
    expect(code(() => parseFlvTag(cat(TAG_VIDEO, h('00'))))).toBe('FLV_MALFORMED');
    expect(code(() => parseFlvTag(cat(TAG_VIDEO, TAG_AUDIO_EMPTY)))).toBe('FLV_MALFORMED');
    expect(code(() => parseFlvTag(TAG_VIDEO.slice(0, 10)))).toBe('FLV_MALFORMED');
    expect(code(() => parseFlvTag(TAG_VIDEO, 2))).toBe('FLV_TOO_LARGE');
  });
});

describe('FLV tag bodies', () => {
  it('AVC video body golden bytes and parse', () => {
    const body = avcVideoBody({ keyframe: true, packetType: 1, cts: -1, data: h('aa bb') });
    expect(body).toEqual(h('17 01 ff ff ff aa bb'));
    expect(avcVideoBody({ keyframe: false, packetType: 0, cts: 0x21, data: h('01') })).toEqual(h('27 00 00 00 21 01'));
    const v = parseVideoBody(body);
    expect({ ...v, data: Array.from(v.data) }).toEqual({ codecId: 7, frameType: 1, keyframe: true, packetType: 1, cts: -1, data: [0xaa, 0xbb] });
    expect(code(() => avcVideoBody({ keyframe: true, packetType: 1, cts: 0x800000, data: h('') }))).toBe('FLV_BAD_TIMESTAMP');
  });

  it('Enhanced RTMP video ex-header: FourCC, packet type, composition time only where defined', () => {
    const hvc = parseVideoBody(h("91 'hvc1' 00 00 21 cc"));
    expect({ ...hvc, data: Array.from(hvc.data) }).toEqual({
      codecId: 0, frameType: 1, keyframe: true, packetType: 1, cts: 0x21, data: [0xcc], fourcc: 'hvc1',
    });
    const av1 = parseVideoBody(h("a3 'av01' dd ee"));
    expect([av1.fourcc, av1.frameType, av1.keyframe, av1.packetType, av1.cts, Array.from(av1.data)]).toEqual(['av01', 2, false, 3, 0, [0xdd, 0xee]]);
    const start = parseVideoBody(h("90 'av01' 0a"));
    expect([start.packetType, Array.from(start.data)]).toEqual([0, [0x0a]]);
    expect(code(() => parseVideoBody(h("91 'hvc1' 00")))).toBe('FLV_MALFORMED');
  });

  it('legacy and malformed video bodies', () => {
    const vp6 = parseVideoBody(h('24 01 02'));
    expect([vp6.codecId, vp6.frameType, vp6.packetType, Array.from(vp6.data)]).toEqual([4, 2, 1, [1, 2]]);
    expect(code(() => parseVideoBody(new Uint8Array(0)))).toBe('FLV_MALFORMED');
    expect(code(() => parseVideoBody(h('17 01 00')))).toBe('FLV_MALFORMED');
  });

  it('AAC audio body golden bytes and parse', () => {
    expect(aacAudioBody({ packetType: 0, data: h('12 10') })).toEqual(h('af 00 12 10'));
    const a = parseAudioBody(h('af 01 21 00'));
    expect({ ...a, data: Array.from(a.data) }).toEqual({ soundFormat: 10, rate: 44100, size: 16, channels: 2, packetType: 1, data: [0x21, 0] });
    const mp3 = parseAudioBody(h('22 ff'));
    expect({ ...mp3, data: Array.from(mp3.data) }).toEqual({ soundFormat: 2, rate: 5500, size: 16, channels: 1, data: [0xff] });
    const opus = parseAudioBody(h("90 'Opus' 01"));
    expect([opus.soundFormat, opus.packetType, opus.fourcc, Array.from(opus.data)]).toEqual([9, 0, 'Opus', [1]]);
    expect(code(() => parseAudioBody(h('af')))).toBe('FLV_MALFORMED');
    expect(code(() => parseAudioBody(new Uint8Array(0)))).toBe('FLV_MALFORMED');
  });

  it('onMetaData in both forms, golden bytes', () => {
    const width = '00 40 94 00 00 00 00 00 00'; // 1280 as an AMF0 number
    const ecma = `08 00 00 00 02 00 05 'width' ${width} 00 07 'encoder' 02 00 05 'onair' 00 00 09`;
    const wrapped = h(`02 00 0d '@setDataFrame' 02 00 0a 'onMetaData' ${ecma}`);
    const bare = h(`02 00 0a 'onMetaData' ${ecma}`);
    expect(onMetaDataBody({ width: 1280, encoder: 'onair' })).toEqual(wrapped);
    expect(onMetaDataBody({ width: 1280, encoder: 'onair' }, false)).toEqual(bare);
    for (const body of [wrapped, bare]) {
      const s = parseScriptBody(body);
      expect(s.name).toBe('onMetaData');
      expect(s.value).toBeInstanceOf(Amf0EcmaArray);
      expect(amf0Props(s.value)).toEqual({ width: 1280, encoder: 'onair' });
    }
    expect(code(() => parseScriptBody(h('00 3f f0 00 00 00 00 00 00')))).toBe('FLV_MALFORMED');
    expect(code(() => parseScriptBody(h("02 00 0a 'onMeta")))).toBe('SHORT_INPUT');
  });
});

describe('FLV from ffmpeg', () => {
  let dir = '';
  let file = new Uint8Array(0);
  let packets: Array<{ codec_type: string; pts: number; dts: number; size: number; flags: string }> = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'onair-flv-'));
    const path = join(dir, 'av.flv');
    execFileSync('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25',
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
      '-t', '2', '-c:v', 'libx264', '-bf', '2', '-c:a', 'aac', '-f', 'flv', path,
    ]);
    file = new Uint8Array(readFileSync(path));
    const json = execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'packet=codec_type,pts,dts,size,flags', '-of', 'json', path], { encoding: 'utf8' });
    packets = (JSON.parse(json) as { packets: typeof packets }).packets;
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('has one tag per ffprobe packet, plus metadata, sequence headers and end of sequence', () => {
    const r = new FlvReader();
    const tags = r.push(file);
    r.end();
    expect(r.header).toEqual({ audio: true, video: true });
    const script = tags.filter((t) => t.type === FlvTagType.Script);
    expect(script.length).toBe(1);
    const meta = parseScriptBody(script[0]!.data);
    expect(meta.name).toBe('onMetaData');
    expect(amf0Props(meta.value)).toMatchObject({ width: 320, height: 240, videocodecid: 7, audiocodecid: 10 });

    const media: Array<{ kind: string; dts: number; pts: number; size: number; key: boolean }> = [];
    let sequenceHeaders = 0;
    let endOfSequence = 0;
    for (const t of tags) {
      if (t.type === FlvTagType.Video) {
        const v = parseVideoBody(t.data);
        expect(v.codecId).toBe(7);
        if (v.packetType === 0) sequenceHeaders++;
        else if (v.packetType === 2) endOfSequence++;
        else media.push({ kind: 'video', dts: t.timestamp, pts: t.timestamp + v.cts, size: v.data.length, key: v.keyframe });
      } else if (t.type === FlvTagType.Audio) {
        const a = parseAudioBody(t.data);
        expect([a.soundFormat, a.rate, a.size, a.channels]).toEqual([10, 44100, 16, 2]);
        if (a.packetType === 0) sequenceHeaders++;
        else media.push({ kind: 'audio', dts: t.timestamp, pts: t.timestamp, size: a.data.length, key: true });
      }
    }
    expect(sequenceHeaders).toBe(2);
    expect(endOfSequence).toBeLessThanOrEqual(1);
    expect(tags.length).toBe(packets.length + 1 + sequenceHeaders + endOfSequence);
    expect(media).toEqual(
      packets.map((p) => ({ kind: p.codec_type, dts: Number(p.dts), pts: Number(p.pts), size: Number(p.size), key: p.flags.startsWith('K') })),
    );
    expect(media.some((m) => m.pts !== m.dts)).toBe(true); // B-frames: composition times were exercised
  });

  it('re-writing every tag with flvTag() reproduces the file byte for byte', () => {
    const r = new FlvReader();
    const tags = r.push(file);
    const rewritten = cat(flvHeader(r.header!), ...tags.map(flvTag));
    expect(rewritten.length).toBe(file.length);
    expect(Buffer.compare(rewritten, file)).toBe(0);
  });

  it('gives the same tags in chunks of 1, 7, 4096 bytes and split at 500 spread offsets', () => {
    const whole = plain(readAll([file]));
    for (const size of [1, 7, 4096]) expect(plain(readAll(chunked(file, size))), `chunks of ${size}`).toEqual(whole);
    for (let k = 1; k <= 500; k++) {
      const i = Math.floor((k * file.length) / 501);
      const r = new FlvReader();
      const tags = [...r.push(file.subarray(0, i)), ...r.push(file.subarray(i))];
      expect(tags.length, `split at ${i}`).toBe(whole.length);
    }
  });
});

describe('sanitizeMetadata', () => {
  it('keeps the known onMetaData fields of the right type, drops the rest, and writes onMetaData + ECMA array', () => {
    const body = onMetaDataBody({ width: 1280, height: 720, framerate: 30, stereo: true, encoder: 'x'.repeat(300), videocodecid: 7, evil: 'y', hasVideo: 'yes' }, true);
    const out = sanitizeMetadata(body);
    const { name, value } = parseScriptBody(out);
    expect(name).toBe('onMetaData');
    expect(value).toBeInstanceOf(Amf0EcmaArray);
    const props = (value as Amf0EcmaArray).entries;
    expect(props).toEqual({ width: 1280, height: 720, framerate: 30, videocodecid: 7, stereo: true, encoder: 'x'.repeat(256) });
    expect(decodeAmf0(out)[0]).toBe('onMetaData');
  });

  it('refuses other scripts and metadata that does not decode', () => {
    const refused = (b: Uint8Array): string | undefined => code(() => sanitizeMetadata(b));
    expect(refused(encodeAmf0(['onCuePoint', { a: 1 }]))).toBe('FLV_SCRIPT_REFUSED');
    expect(refused(Uint8Array.of(0x02, 0x00, 0x0a, ...new TextEncoder().encode('onMetaData'), 0x0a, 0xff, 0xff, 0xff, 0xff))).toBe('FLV_SCRIPT_REFUSED');
    expect(refused(encodeAmf0(['onMetaData', 5]))).toBe('FLV_SCRIPT_REFUSED');
    expect(refused(new Uint8Array(0))).toBe('FLV_SCRIPT_REFUSED');
  });
});

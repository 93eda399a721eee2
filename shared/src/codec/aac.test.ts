import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseAudioBody } from '../flv/flv-media.js';
import { FlvReader } from '../flv/flv-reader.js';
import { aacCodecString, buildAudioSpecificConfig, parseAudioSpecificConfig } from './aac.js';
import { errorCode as code } from '../testing/bytes.js';

function bitsToBytes(bits: string): Uint8Array {
  const padded = bits.padEnd(Math.ceil(bits.length / 8) * 8, '0');
  return Uint8Array.from({ length: padded.length / 8 }, (_, i) => parseInt(padded.slice(i * 8, i * 8 + 8), 2));
}

/** The AudioSpecificConfig ffmpeg's AAC encoder puts in the FLV sequence header, and ffprobe's view. */
function ffmpegAsc(rate: number, channels: number): { asc: Uint8Array; probe: { sample_rate: string; channels: number; profile: string } } {
  const flv = new Uint8Array(
    execFileSync('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', `sine=sample_rate=${rate}`, '-t', '0.2',
      '-ac', String(channels), '-c:a', 'aac', '-f', 'flv', '-',
    ]),
  );
  const seq = new FlvReader().push(flv).map((t) => parseAudioBody(t.data)).find((a) => a.packetType === 0)!;
  const probe = execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=sample_rate,channels,profile', '-of', 'json', '-f', 'flv', '-'], {
    input: flv,
    encoding: 'utf8',
  });
  return { asc: seq.data, probe: (JSON.parse(probe) as { streams: [{ sample_rate: string; channels: number; profile: string }] }).streams[0] };
}

describe('AudioSpecificConfig from ffmpeg', () => {
  for (const [rate, channels] of [[48000, 2], [44100, 1], [22050, 2], [8000, 1], [96000, 2], [48000, 6]] as const) {
    it(`${rate} Hz, ${channels} channels`, () => {
      const { asc, probe } = ffmpegAsc(rate, channels);
      const c = parseAudioSpecificConfig(asc);
      expect(probe.profile).toBe('LC');
      expect([c.objectType, c.sampleRate, c.channels]).toEqual([2, Number(probe.sample_rate), probe.channels]);
      // ffmpeg appends the backward-compatible SBR signalling (sync 0x2b7, type 5, sbrPresentFlag 0):
      // 56 e5 00. The plain two-byte form before it is what buildAudioSpecificConfig writes.
      expect(Array.from(asc.subarray(2))).toEqual([0x56, 0xe5, 0x00]);
      expect(buildAudioSpecificConfig({ objectType: 2, sampleRate: rate, channels })).toEqual(asc.subarray(0, 2));
      expect(aacCodecString(asc)).toBe('mp4a.40.2');
    });
  }
});

describe('AudioSpecificConfig golden bytes (ISO/IEC 14496-3 §1.6.2.1)', () => {
  it('AAC-LC 44.1 kHz stereo is 12 10', () => {
    expect(Array.from(buildAudioSpecificConfig({ objectType: 2, sampleRate: 44100, channels: 2 }))).toEqual([0x12, 0x10]);
    expect(parseAudioSpecificConfig(Uint8Array.of(0x12, 0x10))).toEqual({ objectType: 2, samplingIndex: 4, sampleRate: 44100, channels: 2 });
  });

  it('escaped object type (31 + 6 bits) and explicit 24-bit frequency', () => {
    const bits = '11111' + '001010' + '1111' + (12345).toString(2).padStart(24, '0') + '0010' + '000';
    const bytes = bitsToBytes(bits);
    expect(parseAudioSpecificConfig(bytes)).toEqual({ objectType: 42, samplingIndex: 15, sampleRate: 12345, channels: 2 });
    expect(buildAudioSpecificConfig({ objectType: 42, sampleRate: 12345, channels: 2 })).toEqual(bytes);
    expect(aacCodecString(bytes)).toBe('mp4a.40.42');
    expect(aacCodecString({ objectType: 5 })).toBe('mp4a.40.5');
  });

  it('channelConfiguration 7 means 8 channels; 0 means a PCE', () => {
    expect(parseAudioSpecificConfig(bitsToBytes('00010' + '0011' + '0111' + '000')).channels).toBe(8);
    expect(parseAudioSpecificConfig(bitsToBytes('00010' + '0011' + '0000' + '000')).channels).toBe(0);
    expect(Array.from(buildAudioSpecificConfig({ objectType: 2, sampleRate: 48000, channels: 8 }))).toEqual(Array.from(bitsToBytes('00010' + '0011' + '0111' + '000')));
  });

  it('refuses truncated, reserved and unrepresentable configs with AAC_MALFORMED', () => {
    const full = bitsToBytes('11111' + '001010' + '1111' + (12345).toString(2).padStart(24, '0') + '0010');
    for (let i = 0; i < full.length - 1; i++) expect(code(() => parseAudioSpecificConfig(full.subarray(0, i))), `cut at ${i}`).toBe('AAC_MALFORMED');
    expect(code(() => parseAudioSpecificConfig(bitsToBytes('00010' + '1101' + '0010')))).toBe('AAC_MALFORMED');
    expect(code(() => buildAudioSpecificConfig({ objectType: 2, sampleRate: 48000, channels: 7 }))).toBe('AAC_MALFORMED');
    expect(code(() => buildAudioSpecificConfig({ objectType: 0, sampleRate: 48000, channels: 2 }))).toBe('AAC_MALFORMED');
    // Object type 0 (Null), found by fuzz.test.ts: it parsed, then became the codec string 'mp4a.40.0'.
    expect(code(() => parseAudioSpecificConfig(Uint8Array.of(0x00, 0x37, 0x13)))).toBe('AAC_MALFORMED');
    expect(code(() => parseAudioSpecificConfig(bitsToBytes('00000' + '0100' + '0010' + '000')))).toBe('AAC_MALFORMED');
    expect(code(() => buildAudioSpecificConfig({ objectType: 2, sampleRate: 0, channels: 2 }))).toBe('AAC_MALFORMED');
  });
});

import { createFile, MP4BoxBuffer, type Sample } from 'mp4box';
import { beforeAll, describe, expect, it } from 'vitest';
import { Amf0EcmaArray, encodeAmf0 } from '../amf/amf0.js';
import { h } from '../testing/bytes.js';
import { OnairError } from '../errors.js';
import { FlvTagType, type FlvTag } from '../flv/flv-tag.js';
import { Rng, mutate } from '../testing/fuzz.js';
import { FUZZ_TIMEOUT_MS, attempt, fuzz, fuzzFailure, recordInputs } from '../testing/fuzz-run.js';
import { mediaSeeds } from '../testing/media-seeds.js';
import { DEFAULT_REMUX_OPTIONS, FlvToFmp4, type RemuxEvent, type RemuxOptions, type RemuxTrack, type RemuxTrackKind } from './flv-to-fmp4.js';

// Seeded fuzzing of the FLV → fMP4 remuxer, which runs in every viewer's browser on tags from any
// RTMP server: sequences of real tags (ffmpeg's, with B-frames) whose timestamps jump, go back and
// wrap, whose bodies are mutated, whose configurations change, go missing or arrive late, in
// legacy and Enhanced RTMP form, with discontinuity() calls between them. Properties: push
// returns or throws OnairError and the remuxer carries on; the track set is fixed once and every
// fragment belongs to it; video decode times rise; audio never starts before the end of audio
// already output; no more frames and bytes are held than maxPendingTags and maxPendingBytes;
// and for a sample of cases, mp4box reads each track's init segment and fragments back as the
// samples and times the events announced.

let streams: FlvTag[][] = [];
let configs: FlvTag[] = [];

beforeAll(() => {
  const seeds = mediaSeeds();
  streams = [seeds.tags['bframes']!, seeds.tags['high']!, seeds.tags['baseline']!, seeds.tags['high444']!, seeds.tags['interlaced']!];
  configs = streams.flat().filter((t) => (t.type === FlvTagType.Video || t.type === FlvTagType.Audio) && t.data[1] === 0);
});

/** The same AVC body in Enhanced RTMP form: IsExHeader | FrameType | PacketType, then 'avc1'. */
function enhanced(body: Uint8Array): Uint8Array {
  const frameType = (body[0]! >> 4) & 0x07;
  const packetType = body[1] ?? 1;
  const cts = body.subarray(2, 5);
  // CodedFramesX (3) drops the composition time when it is 0.
  const x = packetType === 1 && cts.every((b) => b === 0);
  const head = [0x80 | (frameType << 4) | (x ? 3 : packetType), 0x61, 0x76, 0x63, 0x31];
  const rest = packetType === 1 && !x ? body.subarray(2) : body.subarray(5);
  const out = new Uint8Array(head.length + rest.length);
  out.set(head);
  out.set(rest, head.length);
  return out;
}

function metadata(rng: Rng): FlvTag {
  const fields: Record<string, number | boolean | string> = {};
  if (rng.oneIn(2)) fields['hasVideo'] = rng.oneIn(3);
  if (rng.oneIn(2)) fields['hasAudio'] = rng.oneIn(3);
  if (rng.oneIn(2)) fields['videocodecid'] = rng.pick([7, 0, 12]);
  if (rng.oneIn(2)) fields['audiocodecid'] = rng.pick([10, 0, 2]);
  const body = encodeAmf0(rng.oneIn(3) ? ['@setDataFrame', 'onMetaData', new Amf0EcmaArray(fields)] : ['onMetaData', rng.oneIn(2) ? fields : new Amf0EcmaArray(fields)]);
  return { type: FlvTagType.Script, timestamp: 0, data: rng.oneIn(6) ? mutate(rng, body, [body]) : body };
}

type Step = { tag: FlvTag } | { discontinuity: true };

/** A tag sequence as a hostile or broken server might send it, from the seeds. */
function sequence(rng: Rng): Step[] {
  const steps: Step[] = [];
  const stream = rng.pick(streams);
  let from = rng.oneIn(3) ? 0 : rng.int(stream.length);
  let offset = rng.oneIn(4) ? rng.next() : rng.int(3) ? 0 : rng.int(100_000);
  const dropVideoConfig = rng.oneIn(5);
  const dropAudioConfig = rng.oneIn(5);
  const ex = rng.oneIn(4);
  if (rng.oneIn(3)) steps.push({ tag: metadata(rng) });
  if (from > 0 && rng.int(3)) for (const c of stream.filter((t) => t.data[1] === 0 && t.type !== FlvTagType.Script)) steps.push({ tag: c });
  for (let n = 2 + rng.int(rng.oneIn(4) ? 120 : 30); n > 0; n--) {
    const src = stream[from++ % stream.length]!;
    if (from % stream.length === 0) offset += 1000 + rng.int(100);
    const config = src.type !== FlvTagType.Script && src.data[1] === 0;
    if (config && ((src.type === FlvTagType.Video && dropVideoConfig) || (src.type === FlvTagType.Audio && dropAudioConfig))) continue;
    let data = src.data;
    if (src.type === FlvTagType.Video && (ex || rng.oneIn(20)) && (data[0]! & 0x0f) === 7) data = enhanced(data);
    if (rng.oneIn(12)) data = mutate(rng, data, [data]);
    let timestamp = (src.timestamp + offset) >>> 0;
    switch (rng.int(24)) {
      case 0:
        offset += rng.pick([-rng.int(200), rng.int(200), 20_000, -20_000, 3_600_000]);
        timestamp = (src.timestamp + offset) >>> 0;
        break;
      case 1:
        timestamp = rng.pick([0, 0xffffffff, 0xffffff, rng.next()]);
        break;
      case 2:
        steps.push({ discontinuity: true });
        break;
      case 3:
        // A configuration from another stream: a new resolution, profile or sample rate.
        steps.push({ tag: { ...rng.pick(configs), timestamp } });
        break;
      case 4:
        steps.push({ tag: metadata(rng) });
        break;
      case 5:
        steps.push({ tag: { type: rng.pick([0, 1, 15, 20, 31]), timestamp, data: rng.bytes(rng.int(8)) } });
        break;
      case 6:
        continue; // a lost tag
    }
    steps.push({ tag: { type: src.type, timestamp, data } });
  }
  return steps;
}

function describeSteps(steps: readonly Step[], opts: Partial<RemuxOptions>): string {
  const hex = (b: Uint8Array): string => Array.from(b.subarray(0, 48), (x) => x.toString(16).padStart(2, '0')).join('') + (b.length > 48 ? `…(${b.length})` : '');
  const list = steps.map((s) => ('tag' in s ? `${s.tag.type}@${s.tag.timestamp}:${hex(s.tag.data)}` : 'discontinuity'));
  return `options ${JSON.stringify(opts)}, steps ${JSON.stringify(list)}`;
}

interface Mp4Read {
  ready: boolean;
  error: string | undefined;
  timescale: number;
  samples: Pick<Sample, 'size' | 'is_sync' | 'duration'>[];
  /** Each moof's tfdt: mp4box times samples from the first one only and adds durations after. */
  decodeTimes: number[];
}

/** mp4box's reading of an init segment followed by fragments. */
function mp4box(parts: readonly Uint8Array[]): Mp4Read {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  const file = createFile();
  const read: Mp4Read = { ready: false, error: undefined, timescale: 0, samples: [], decodeTimes: [] };
  file.onError = (module, message) => (read.error = `${module}: ${message}`);
  file.onReady = (info) => {
    read.ready = true;
    const track = info.tracks[0];
    if (track === undefined) return;
    read.timescale = track.timescale;
    file.setExtractionOptions(track.id, null, { nbSamples: 1_000_000 });
    file.start();
  };
  file.onSamples = (_id, _user, list) => {
    for (const s of list) read.samples.push({ size: s.size, is_sync: s.is_sync, duration: s.duration });
  };
  file.appendBuffer(MP4BoxBuffer.fromArrayBuffer(bytes.buffer, 0));
  file.flush();
  read.decodeTimes = file.moofs.map((m) => m.trafs[0]?.tfdt?.baseMediaDecodeTime ?? -1);
  return read;
}

interface Segment {
  track: RemuxTrack;
  media: Extract<RemuxEvent, { kind: 'media' }>[];
}

/**
 * The boxes at the top level of `data` (or of its bytes `from`..`to`): [type, start, size], or
 * undefined unless they cover those bytes exactly.
 */
function topBoxes(data: Uint8Array, from = 0, to = data.length): [string, number, number][] | undefined {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: [string, number, number][] = [];
  for (let at = from; at < to; ) {
    if (to - at < 8) return undefined;
    const size = view.getUint32(at);
    if (size < 8 || at + size > to) return undefined;
    out.push([String.fromCharCode(...data.subarray(at + 4, at + 8)), at, size]);
    at += size;
  }
  return out;
}

/** The sample count of a fragment's trun (moof > traf > trun). */
function trunSampleCount(data: Uint8Array): number {
  const moof = topBoxes(data)?.find(([t]) => t === 'moof');
  const traf = moof && topBoxes(data, moof[1] + 8, moof[1] + moof[2])?.find(([t]) => t === 'traf');
  const trun = traf && topBoxes(data, traf[1] + 8, traf[1] + traf[2])?.find(([t]) => t === 'trun');
  return trun === undefined ? 0 : new DataView(data.buffer, data.byteOffset + trun[1] + 12, 4).getUint32(0);
}

/** Bytes of a fragment's mdat payload. */
function mdatBytes(data: Uint8Array): number {
  const mdat = topBoxes(data)?.find(([t]) => t === 'mdat');
  return mdat === undefined ? 0 : mdat[2] - 8;
}

/** mp4box reads every init segment with the fragments that follow it as the events said. */
function checkWithMp4box(segments: readonly Segment[], replay: () => string): void {
  for (const seg of segments) {
    const read = mp4box([seg.track.init, ...seg.media.map((m) => m.data)]);
    if (!read.ready || read.error) throw fuzzFailure(`mp4box could not read the ${seg.track.kind} init segment (${read.error ?? 'not ready'})`, replay);
    const timescale = seg.track.kind === 'video' ? 1000 : seg.track.sampleRate!;
    if (read.timescale !== timescale) throw fuzzFailure(`mp4box reads timescale ${read.timescale}, expected ${timescale}`, replay);
    // A fragment may hold several samples (with B-frames, a group shown together): compare what
    // each fragment's samples add up to — first decode time, total duration, mdat bytes, first
    // sample's sync flag — with its event.
    const got: unknown[] = [];
    let at = 0;
    for (const [i, m] of seg.media.entries()) {
      const n = trunSampleCount(m.data);
      const group = read.samples.slice(at, at + n);
      got.push([read.decodeTimes[i], group.reduce((d, x) => d + x.duration, 0), group.reduce((b, x) => b + x.size, 0), group[0]?.is_sync]);
      at += n;
    }
    if (at !== read.samples.length) throw fuzzFailure(`mp4box reads ${read.samples.length} ${seg.track.kind} samples, the fragments' trun boxes say ${at}`, replay);
    const expected = seg.media.map((m) => [Math.round(m.start * timescale), Math.round((m.end - m.start) * timescale), mdatBytes(m.data), m.keyframe]);
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      throw fuzzFailure(`mp4box reads ${seg.track.kind} samples ${JSON.stringify(got.slice(0, 8))}…, the events said ${JSON.stringify(expected.slice(0, 8))}…`, replay);
    }
  }
}

describe('fuzz: FlvToFmp4', () => {
  it('push: OnairError only, a track set that only grows (a rebuild for a new track), fragments mp4box reads back, held frames and bytes bounded', { timeout: FUZZ_TIMEOUT_MS }, () => {
    let tags = 0;
    let withTracks = 0;
    let media = 0;
    let checked = 0;
    const run = fuzz('remux FlvToFmp4 (sequences)', 0x4e3a, (rng, c) => {
      const opts: Partial<RemuxOptions> = {};
      if (rng.oneIn(3)) opts.maxPendingTags = 1 + rng.int(40);
      if (rng.oneIn(4)) opts.maxPendingBytes = rng.int(20_000);
      if (rng.oneIn(4)) opts.trackWaitMs = rng.int(3000);
      if (rng.oneIn(4)) opts.maxJumpMs = rng.pick([0, 1, 100, 1_000_000]);
      const maxPending = opts.maxPendingTags ?? DEFAULT_REMUX_OPTIONS.maxPendingTags;
      const maxPendingBytes = opts.maxPendingBytes ?? DEFAULT_REMUX_OPTIONS.maxPendingBytes;
      const steps = sequence(rng);
      const replay = (): string => describeSteps(steps, opts);
      const r = new FlvToFmp4(opts);
      let fixed: Set<RemuxTrackKind> | undefined;
      const lastVideoStart: number[] = [];
      let audioEnd = 0;
      const segments: Segment[] = [];
      const current = new Map<RemuxTrackKind, Segment>();
      for (const step of steps) {
        if ('discontinuity' in step) {
          r.discontinuity();
          continue;
        }
        tags++;
        const events = attempt('FlvToFmp4.push', replay, () => r.push(step.tag));
        if (events instanceof OnairError) continue;
        // The first track set releases the frames held until then; a rebuild holds nothing.
        const fixedNow = fixed === undefined && events.some((e) => e.kind === 'tracks');
        let mediaNow = 0;
        let bytesNow = 0;
        for (const e of events) {
          if (e.kind === 'tracks') {
            const kinds = e.tracks.map((t) => t.kind);
            if (kinds.length === 0 || new Set(kinds).size !== kinds.length) throw fuzzFailure(`tracks ${JSON.stringify(kinds)}`, replay);
            // A later track set is a rebuild for a track that was not announced: it only grows,
            // and it comes with a video tag (the keyframe it starts on).
            if (fixed !== undefined && (step.tag.type !== 9 || kinds.length <= fixed.size || ![...fixed].every((k) => kinds.includes(k)))) {
              throw fuzzFailure(`a second tracks event ${JSON.stringify(kinds)} after ${JSON.stringify([...fixed])} that is not a rebuild for a new track`, replay);
            }
            fixed = new Set(kinds);
            withTracks++;
            for (const t of e.tracks) {
              const seg = { track: t, media: [] };
              segments.push(seg);
              current.set(t.kind, seg);
            }
          } else if (e.kind === 'init') {
            if (fixed?.has(e.track.kind) !== true) throw fuzzFailure(`init for ${e.track.kind} outside the track set`, replay);
            const seg = { track: e.track, media: [] };
            segments.push(seg);
            current.set(e.track.kind, seg);
          } else if (e.kind === 'media') {
            media++;
            // Stand-in frames (bytes 0) are made, not held.
            if (e.bytes > 0) mediaNow++;
            bytesNow += e.bytes;
            if (fixed?.has(e.track) !== true) throw fuzzFailure(`${e.track} fragment outside the track set`, replay);
            const shape = topBoxes(e.data)?.map(([type]) => type);
            if (shape?.join() !== 'moof,mdat') throw fuzzFailure(`fragment boxes ${String(shape)}`, replay);
            if (!(Number.isFinite(e.start) && e.start >= 0 && e.end > e.start)) throw fuzzFailure(`fragment times ${e.start}..${e.end}`, replay);
            if (e.track === 'video' && e.bytes > 0) {
              // The stream's own frames rise; a stand-in picture (bytes 0) is what they replace.
              const last = lastVideoStart[0];
              if (last !== undefined && e.start <= last) throw fuzzFailure(`video decode time ${e.start} after ${last}`, replay);
              lastVideoStart[0] = e.start;
            } else if (e.track === 'audio' && e.bytes > 0) {
              // MSE would overwrite or splice audio that overlaps what it holds. (Stand-in silence,
              // bytes 0, is what the stream's own audio may replace when it arrives.)
              if (e.start < audioEnd) throw fuzzFailure(`audio at ${e.start}, before the end of earlier audio at ${audioEnd}`, replay);
              audioEnd = e.end;
            }
            current.get(e.track)!.media.push(e);
          }
        }
        // Frames held while the track set was unknown come out when it is fixed: no more than the limit.
        if (fixedNow && mediaNow > maxPending) throw fuzzFailure(`${mediaNow} held frames released, limit ${maxPending}`, replay);
        if (fixedNow && bytesNow > maxPendingBytes) throw fuzzFailure(`${bytesNow} held bytes released, limit ${maxPendingBytes}`, replay);
      }
      // mp4box is slow: one case in 16.
      if (c % 16 === 0) {
        checkWithMp4box(segments, replay);
        checked++;
      }
    });
    recordInputs('remux FlvToFmp4 (tags pushed)', tags, run);
    // Most sequences must get as far as fragments, or the generator only tests refusals.
    expect(withTracks).toBeGreaterThan(run.cases / 2);
    expect(media).toBeGreaterThan(tags / 4);
    expect(checked).toBeGreaterThan(0);
  });
});

describe('FlvToFmp4: inputs the fuzzer found', () => {
  // onMetaData {hasVideo: false, hasAudio: true}; the AVC sequence header of a 96x64 Baseline
  // stream (libx264); AAC-LC 8 kHz mono, whose 1024-sample frames last 128 ms.
  const AUDIO_ONLY = h('02 00 0a 6f 6e 4d 65 74 61 44 61 74 61 08 00 00 00 02 00 08 68 61 73 56 69 64 65 6f 01 00 00 08 68 61 73 41 75 64 69 6f 01 01 00 00 09');
  const AVC_CONFIG = h('17 00 00 00 00 01 42 c0 0a ff e1 00 17 67 42 c0 0a d9 06 26 c3 84 00 00 03 00 04 00 00 03 00 50 3c 48 99 20 01 00 05 68 cb 83 cb 20');
  const AAC_CONFIG = h('af 00 15 88');

  function remuxer(): { r: FlvToFmp4; push: (type: number, timestamp: number, data: Uint8Array) => number[][] } {
    const r = new FlvToFmp4();
    const push = (type: number, timestamp: number, data: Uint8Array): number[][] =>
      r.push({ type, timestamp, data }).flatMap((e) => (e.kind === 'media' ? [[e.start, e.end]] : []));
    return { r, push };
  }
  const frame = h('af 01 21 10 04');
  const keyframe = h('17 01 00 00 00 00 00 00 02 65 88');

  it('starts the segment after a discontinuity past the end of the last audio frame, not its start', () => {
    const { r, push } = remuxer();
    push(FlvTagType.Script, 0, AUDIO_ONLY);
    push(FlvTagType.Audio, 0, AAC_CONFIG);
    expect([0, 128, 256].flatMap((ts) => push(FlvTagType.Audio, ts, frame))).toEqual([[0, 0.128], [0.128, 0.256], [0.256, 0.384]]);
    r.discontinuity();
    // 40 ms (SEGMENT_GAP_MS) after 0.384; it was 0.296, 88 ms into the last frame.
    expect(push(FlvTagType.Audio, 0, frame)).toEqual([[0.424, 0.552]]);
  });

  it('drops audio of a new connection that precedes its first video tag, instead of overlapping earlier audio', () => {
    const { r, push } = remuxer();
    push(FlvTagType.Video, 0, AVC_CONFIG);
    push(FlvTagType.Audio, 0, AAC_CONFIG);
    expect([push(FlvTagType.Video, 0, keyframe), push(FlvTagType.Audio, 0, frame), push(FlvTagType.Audio, 128, frame)].flat()).toEqual([
      [0, 0.033], [0, 0.128], [0.128, 0.256],
    ]);
    r.discontinuity();
    expect(push(FlvTagType.Video, 1000, keyframe)).toEqual([[0.296, 0.592]]); // lasting the last interval
    expect(push(FlvTagType.Audio, 917, frame)).toEqual([]); // was [0.213, 0.341]
    expect(push(FlvTagType.Audio, 1045, frame)).toEqual([[0.341, 0.469]]);
  });

  it('lets no held video frame last for a jump in time (stand-in audio was filled for the whole jump)', () => {
    const r = new FlvToFmp4({ maxJumpMs: 1e9 });
    const media = (type: number, timestamp: number, data: Uint8Array): number[][] =>
      r.push({ type, timestamp, data }).flatMap((e) => (e.kind === 'media' && e.track === 'video' ? [[e.start, e.end]] : []));
    media(FlvTagType.Video, 0, AVC_CONFIG);
    media(FlvTagType.Audio, 0, AAC_CONFIG);
    // With B-frames (a keyframe shown 66 ms after its decode time), the reference frame at 33 ms
    // waits for the frames shown before it; the next frame comes an hour later.
    const reorderedKey = h('17 01 00 00 42 00 00 00 02 65 88');
    const reference = h('27 01 00 00 63 00 00 00 02 41 9a');
    const out = [media(FlvTagType.Video, 0, reorderedKey), media(FlvTagType.Video, 33, reference), media(FlvTagType.Video, 3_600_000, reference), media(FlvTagType.Video, 3_600_033, reorderedKey)].flat();
    expect(out.length).toBeGreaterThanOrEqual(2);
    for (const [start, end] of out) expect(end! - start!).toBeLessThanOrEqual(1);
  });

  it('holds at most maxPendingBytes of frames while the track set is unknown', () => {
    // Video frames (11-byte bodies) arrive before any configuration; at most 12 bytes are held.
    const r = new FlvToFmp4({ maxPendingBytes: 12 });
    for (const ts of [0, 33, 66, 100]) expect(r.push({ type: FlvTagType.Video, timestamp: ts, data: h('17 01 00 00 00 00 00 00 02 65 88') })).toEqual([]);
    r.push({ type: FlvTagType.Script, timestamp: 0, data: h('02 00 0a 6f 6e 4d 65 74 61 44 61 74 61 08 00 00 00 01 00 08 68 61 73 41 75 64 69 6f 01 00 00 00 09') });
    const released = r.push({ type: FlvTagType.Video, timestamp: 0, data: AVC_CONFIG });
    // Only the last of the four was kept (all four were, before the byte limit).
    expect(released.filter((e) => e.kind === 'media').map((e) => e.kind === 'media' && e.start)).toEqual([0]);
  });

  it('drops audio whose input went back until it passes what was output, keeping its place on the clock', () => {
    const { push } = remuxer();
    push(FlvTagType.Script, 0, AUDIO_ONLY);
    push(FlvTagType.Audio, 0, AAC_CONFIG);
    for (const ts of [0, 128, 256]) push(FlvTagType.Audio, ts, frame);
    // Back by 156 ms: beyond the counter's 100 ms tolerance, so it re-anchors at 0.1 s.
    expect([100, 228, 356].flatMap((ts) => push(FlvTagType.Audio, ts, frame))).toEqual([]);
    expect(push(FlvTagType.Audio, 484, frame)).toEqual([[0.484, 0.612]]);
  });
});

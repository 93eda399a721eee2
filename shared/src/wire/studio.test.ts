import { describe, expect, it } from 'vitest';
import { OnairError } from '../errors.js';
import {
  MAX_DESTINATIONS,
  MAX_STUDIO_TEXT_BYTES,
  joinStreamUrl,
  parseStudioClientMessage,
  parseStudioServerMessage,
  studioSocketUrl,
  type StudioServerMessage,
} from './studio.js';

function badMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(OnairError);
    expect((err as OnairError).code).toBe('BAD_MESSAGE');
    return (err as Error).message;
  }
  throw new Error('expected BAD_MESSAGE');
}

describe('studio wire protocol: page → bridge', () => {
  it('accepts start with destinations and stop, as documented in docs/ws-protocol.md', () => {
    const start = '{"type":"start","destinations":[{"id":"a","url":"rtmp://127.0.0.1/live/k"},{"id":"b","url":"RTMPS://a.rtmps.youtube.com:443/live2/x"}]}';
    expect(parseStudioClientMessage(start)).toEqual({
      type: 'start',
      destinations: [
        { id: 'a', url: 'rtmp://127.0.0.1/live/k' },
        { id: 'b', url: 'RTMPS://a.rtmps.youtube.com:443/live2/x' },
      ],
    });
    expect(parseStudioClientMessage('{"type":"stop"}')).toEqual({ type: 'stop' });
    expect(parseStudioClientMessage('{"type":"resume","session":"9f2c41aa07","token":"Zm9vYmFy-_x"}')).toEqual({ type: 'resume', session: '9f2c41aa07', token: 'Zm9vYmFy-_x' });
    expect(parseStudioClientMessage('{"type":"gap","frames":120,"ms":4000}')).toEqual({ type: 'gap', frames: 120, ms: 4000 });
  });

  it('drops unknown fields instead of passing them on', () => {
    const msg = parseStudioClientMessage('{"type":"start","extra":1,"destinations":[{"id":"a","url":"rtmp://h/app/k","x":2}]}');
    expect(msg).toEqual({ type: 'start', destinations: [{ id: 'a', url: 'rtmp://h/app/k' }] });
  });

  it.each([
    ['not JSON', 'start'],
    ['an array', '[]'],
    ['null', 'null'],
    ['unknown type', '{"type":"go"}'],
    ['no destinations', '{"type":"start"}'],
    ['empty destinations', '{"type":"start","destinations":[]}'],
    ['destination not an object', '{"type":"start","destinations":["rtmp://h/a/k"]}'],
    ['missing id', '{"type":"start","destinations":[{"url":"rtmp://h/a/k"}]}'],
    ['empty id', '{"type":"start","destinations":[{"id":"","url":"rtmp://h/a/k"}]}'],
    ['duplicate id', '{"type":"start","destinations":[{"id":"a","url":"rtmp://h/a/k"},{"id":"a","url":"rtmp://h/a/j"}]}'],
    ['http URL', '{"type":"start","destinations":[{"id":"a","url":"http://h/a/k"}]}'],
    ['file URL', '{"type":"start","destinations":[{"id":"a","url":"file:///etc/passwd"}]}'],
    ['number URL', '{"type":"start","destinations":[{"id":"a","url":5}]}'],
    ['resume without a token', '{"type":"resume","session":"abc"}'],
    ['resume with an empty session', '{"type":"resume","session":"","token":"t"}'],
    ['resume with a session that is not an id', '{"type":"resume","session":"../x","token":"t"}'],
    ['resume with a token too long', `{"type":"resume","session":"a","token":"${'t'.repeat(129)}"}`],
    ['gap with negative frames', '{"type":"gap","frames":-1,"ms":0}'],
    ['gap without ms', '{"type":"gap","frames":1}'],
  ])('refuses %s', (_what, text) => {
    badMessage(() => parseStudioClientMessage(text));
  });

  it('enforces its limits: destination count, URL length, message size', () => {
    const many = Array.from({ length: MAX_DESTINATIONS + 1 }, (_, i) => ({ id: `d${i}`, url: `rtmp://h/a/${i}` }));
    expect(badMessage(() => parseStudioClientMessage(JSON.stringify({ type: 'start', destinations: many })))).toMatch(/9 destinations exceed 8/);
    const longUrl = `rtmp://h/a/${'k'.repeat(3000)}`;
    badMessage(() => parseStudioClientMessage(JSON.stringify({ type: 'start', destinations: [{ id: 'a', url: longUrl }] })));
    badMessage(() => parseStudioClientMessage(`{"type":"stop","pad":"${'x'.repeat(MAX_STUDIO_TEXT_BYTES)}"}`));
  });
});

describe('studio wire protocol: bridge → page', () => {
  it('round-trips every server message through JSON', () => {
    const messages: StudioServerMessage[] = [
      { type: 'welcome', version: 2, maxBinaryBytes: 4194304, graceMs: 30_000, resendBufferMs: 15_000 },
      { type: 'session', id: 'a1b2c3d4e5f60718', token: 'k-9_Zx' },
      { type: 'resumed', received: 1234 },
      { type: 'ack', received: 1250 },
      { type: 'error', code: 'BAD_MESSAGE', message: 'message is not JSON' },
      {
        type: 'status',
        received: { bytes: 1000, tags: 10 },
        gaps: { count: 1, frames: 150, ms: 5000 },
        destinations: [
          { id: 'a', url: 'rtmp://h/live/***', state: 'live', bytes: 900, dropped: 0, bufferedBytes: 0 },
          { id: 'm', url: 'rtmp://h/live/***', state: 'live', bytes: 900, dropped: 0, bufferedBytes: 0, movedTo: 'rtmp://h2/live/***', moves: 1 },
          { id: 'b', url: 'rtmp://g/live/***', state: 'retrying', reason: 'connection refused', retryInMs: 1800, bytes: 0, dropped: 3, bufferedBytes: 0 },
        ],
      },
    ];
    for (const m of messages) expect(parseStudioServerMessage(JSON.stringify(m))).toEqual(m);
  });

  it('refuses an unknown destination state and negative counters', () => {
    const status = (d: object): string => JSON.stringify({ type: 'status', received: { bytes: 0, tags: 0 }, gaps: { count: 0, frames: 0, ms: 0 }, destinations: [{ id: 'a', url: 'u', bytes: 0, dropped: 0, bufferedBytes: 0, ...d }] });
    expect(parseStudioServerMessage(status({ state: 'live' })).type).toBe('status');
    badMessage(() => parseStudioServerMessage(status({ state: 'exploded' })));
    badMessage(() => parseStudioServerMessage(status({ state: 'live', bytes: -1 })));
    badMessage(() => parseStudioServerMessage('{"type":"status","destinations":[]}'));
    badMessage(() => parseStudioServerMessage('{"type":"status","destinations":[],"received":{"bytes":0,"tags":0}}'));
    badMessage(() => parseStudioServerMessage('{"type":"ack","received":-5}'));
  });
});

describe('joinStreamUrl', () => {
  it('puts the key in the last path segment, as streaming software does', () => {
    expect(joinStreamUrl('rtmp://live.twitch.tv/app', 'live_123_abc')).toBe('rtmp://live.twitch.tv/app/live_123_abc');
    expect(joinStreamUrl('rtmps://a.rtmps.youtube.com:443/live2/', ' key ')).toBe('rtmps://a.rtmps.youtube.com:443/live2/key');
    expect(joinStreamUrl('rtmp://h/app', '/k?bandwidthtest=true')).toBe('rtmp://h/app/k?bandwidthtest=true');
    expect(joinStreamUrl('rtmp://h/app/already', '')).toBe('rtmp://h/app/already');
  });
});

describe('studio socket URL', () => {
  it('carries the affinity id on every socket and the session id on a resume, and refuses ids that are not URL-safe', () => {
    expect(studioSocketUrl('wss://live.example.com/studio-ws', '0f3a9c2b7d41e865')).toBe('wss://live.example.com/studio-ws?affinity=0f3a9c2b7d41e865');
    expect(studioSocketUrl('wss://live.example.com/studio-ws', '0f3a9c2b7d41e865', '9f2c41aa07')).toBe('wss://live.example.com/studio-ws?affinity=0f3a9c2b7d41e865&session=9f2c41aa07');
    expect(studioSocketUrl('ws://127.0.0.1:8080/studio-ws?x=1', 'abc')).toBe('ws://127.0.0.1:8080/studio-ws?x=1&affinity=abc');
    for (const bad of ['', 'a&token=x', 'a b', 'x'.repeat(65)]) {
      badMessage(() => studioSocketUrl('ws://h/studio-ws', bad));
      badMessage(() => studioSocketUrl('ws://h/studio-ws', 'abc', bad));
    }
  });
});

import { describe, expect, it } from 'vitest';
import { OnairError } from '../errors.js';
import { WATCH_WS_PATH, parseWatchServerMessage, parseWatchTarget, watchTargetPath } from './watch.js';

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    return err instanceof OnairError ? err.code : 'not an OnairError';
  }
  return undefined;
}

describe('watch wire protocol', () => {
  it('parses every bridge → page message and keeps only known fields', () => {
    expect(parseWatchServerMessage('{"type":"welcome","version":1,"source":"rtmp://h/live/***","extra":1}')).toEqual({
      type: 'welcome',
      version: 1,
      source: 'rtmp://h/live/***',
    });
    expect(parseWatchServerMessage('{"type":"status","state":"waiting","reason":"the publisher ended the stream","retryInMs":300,"viewers":3}')).toEqual({
      type: 'status',
      state: 'waiting',
      reason: 'the publisher ended the stream',
      retryInMs: 300,
      viewers: 3,
    });
    expect(parseWatchServerMessage('{"type":"status","state":"live","viewers":1}')).toEqual({ type: 'status', state: 'live', viewers: 1 });
    expect(parseWatchServerMessage('{"type":"error","code":"DESTINATION_REFUSED","message":"no"}')).toEqual({
      type: 'error',
      code: 'DESTINATION_REFUSED',
      message: 'no',
    });
    expect(parseWatchServerMessage('{"type":"reconnect","reason":"the bridge is draining"}')).toEqual({ type: 'reconnect', reason: 'the bridge is draining' });
  });

  it('refuses malformed messages with BAD_MESSAGE', () => {
    for (const text of [
      'not json',
      '[]',
      'null',
      '{"type":"hello"}',
      '{"type":"status","state":"paused","viewers":1}',
      '{"type":"status","state":"live","viewers":-1}',
      '{"type":"status","state":"live"}',
      '{"type":"welcome","version":"1","source":"x"}',
      '{"type":"error","code":"X","message":7}',
      `{"type":"error","code":"X","message":"${'m'.repeat(600)}"}`,
      '{"type":"reconnect"}',
      `{"type":"reconnect","reason":"${'r'.repeat(600)}"}`,
      ' '.repeat(16 * 1024 + 1),
    ]) {
      expect(code(() => parseWatchServerMessage(text)), text.slice(0, 40)).toBe('BAD_MESSAGE');
    }
  });

  it('reads watch targets from page and socket paths and writes them back', () => {
    const src = 'rtmps://live.example.com:443/app/key?x=1&y=2';
    expect(parseWatchTarget('/watch', '/watch', `?src=${encodeURIComponent(src)}`)).toEqual({ kind: 'src', url: src });
    expect(parseWatchTarget(WATCH_WS_PATH, WATCH_WS_PATH, `?a=b&src=${encodeURIComponent(src)}`)).toEqual({ kind: 'src', url: src });
    expect(parseWatchTarget('/watch', '/watch/live/my%20key', '')).toBeUndefined();
    expect(parseWatchTarget('/watch', '/watch/live/k-3_y.z', '')).toEqual({ kind: 'local', app: 'live', stream: 'k-3_y.z' });
    for (const [path, search] of [
      ['/watch', ''],
      ['/watch', '?src=http%3A%2F%2Fx%2Fa%2Fb'],
      ['/watch', '?src=rtmp%3A%2F%2F'],
      ['/watch/live', ''],
      ['/watch/live/a/b', ''],
      ['/watch/../x', ''],
      ['/watch/live/..', ''],
      ['/watch/live/%E0%A4%A', ''],
      ['/watchers/live/x', ''],
    ] as const) {
      expect(parseWatchTarget('/watch', path, search), `${path}${search}`).toBeUndefined();
    }
    for (const target of [{ kind: 'src', url: src } as const, { kind: 'local', app: 'live', stream: 'abc' } as const]) {
      const path = watchTargetPath(WATCH_WS_PATH, target);
      const q = path.indexOf('?');
      expect(parseWatchTarget(WATCH_WS_PATH, q < 0 ? path : path.slice(0, q), q < 0 ? '' : path.slice(q))).toEqual(target);
    }
  });
});

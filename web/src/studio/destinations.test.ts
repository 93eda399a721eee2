import { describe, expect, it } from 'vitest';
import { joinStreamUrl } from '@onair/shared';
import { serverWithoutKey, storedEntry, type DestinationEntry } from './destinations.svelte.js';

const entry = (server: string, key: string, rememberKey: boolean): DestinationEntry => ({ id: 'd1', platform: 'custom', server, key, rememberKey, enabled: true });

describe('what the studio stores of a destination', () => {
  it('takes the stream key off a full URL typed as the server, as the bridge splits it', () => {
    const cases: [string, string][] = [
      ['rtmp://127.0.0.1:1935/live/s3cret', 'rtmp://127.0.0.1:1935/live'],
      ['rtmps://a.rtmps.youtube.com:443/live2/abcd-efgh-ijkl', 'rtmps://a.rtmps.youtube.com:443/live2'],
      ['rtmp://live.twitch.tv/app/live_1_abc?bandwidthtest=true', 'rtmp://live.twitch.tv/app'],
      ['rtmp://b.rtmp.youtube.com/live2?backup=1/KEY', 'rtmp://b.rtmp.youtube.com/live2?backup=1'],
      ['rtmp://h/app/_definst_/KEY', 'rtmp://h/app/_definst_'],
      [' RTMP://h/live/KEY ', 'RTMP://h/live'],
    ];
    for (const [full, server] of cases) {
      expect(serverWithoutKey(full)).toBe(server);
      // What stays is exactly what the key was joined to: publishing the page's copy is unchanged.
      expect(joinStreamUrl(server, full.trim().slice(server.length + 1))).toBe(full.trim());
    }
  });

  it('leaves a server URL that names no key alone', () => {
    for (const server of ['rtmp://127.0.0.1:1935/live', 'rtmps://live-api-s.facebook.com:443/rtmp/', 'rtmp://h', 'rtmp://h/', '', 'http://h/a/b', 'not a url']) {
      expect(serverWithoutKey(server)).toBe(server);
    }
  });

  it('drops user:password@ too', () => {
    expect(serverWithoutKey('rtmp://user:p@ss@h:1935/live/KEY')).toBe('rtmp://h:1935/live');
    expect(storedEntry(entry('rtmp://user:pw@h/live', 'KEY', false)).server).toBe('rtmp://h/live');
  });

  it('stores a key only when Remember key is ticked, wherever it was typed', () => {
    expect(storedEntry(entry('rtmp://h/live', 'KEY', false))).toEqual(entry('rtmp://h/live', '', false));
    expect(storedEntry(entry('rtmp://h/live/KEY', '', false))).toEqual(entry('rtmp://h/live', '', false));
    // With a key in its own field the server's last segment is part of the app (an instance).
    expect(storedEntry(entry('rtmp://h/app/_definst_', 'KEY', false))).toEqual(entry('rtmp://h/app/_definst_', '', false));
    expect(storedEntry(entry('rtmp://h/live/KEY', '', true))).toEqual(entry('rtmp://h/live/KEY', '', true));
    expect(storedEntry(entry('rtmp://h/live', 'KEY', true))).toEqual(entry('rtmp://h/live', 'KEY', true));
  });
});

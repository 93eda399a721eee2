import { describe, expect, it } from 'vitest';
import { parseRtmpUrl, redactKey, redactUrl, resolveServerUrl } from './url.js';

describe('parseRtmpUrl', () => {
  it('splits app and stream name at the last slash, with default ports', () => {
    expect(parseRtmpUrl('rtmp://live.twitch.tv/app/live_123_abc?bandwidthtest=true')).toEqual({
      protocol: 'rtmp',
      host: 'live.twitch.tv',
      port: 1935,
      app: 'app',
      tcUrl: 'rtmp://live.twitch.tv/app',
      streamName: 'live_123_abc?bandwidthtest=true',
      redacted: 'rtmp://live.twitch.tv/app/***',
    });
    const yt = parseRtmpUrl('rtmps://b.rtmps.youtube.com/live2?backup=1/abcd-efgh-ijkl');
    expect([yt.protocol, yt.port, yt.app, yt.tcUrl, yt.streamName]).toEqual([
      'rtmps', 443, 'live2?backup=1', 'rtmps://b.rtmps.youtube.com/live2?backup=1', 'abcd-efgh-ijkl',
    ]);
    expect(new URL(yt.tcUrl).host).toBe('b.rtmps.youtube.com');
  });

  it('keeps an application instance and an explicit port in the app and tcUrl', () => {
    const u = parseRtmpUrl('rtmp://127.0.0.1:19350/live/inst/key');
    expect([u.host, u.port, u.app, u.tcUrl, u.streamName]).toEqual(['127.0.0.1', 19350, 'live/inst', 'rtmp://127.0.0.1:19350/live/inst', 'key']);
    const v6 = parseRtmpUrl('rtmp://[::1]:1936/live/key');
    expect([v6.host, v6.port, v6.tcUrl]).toEqual(['::1', 1936, 'rtmp://[::1]:1936/live']);
    expect(parseRtmpUrl('RTMPS://Example.com/rtmp/FB-1-2').protocol).toBe('rtmps');
  });

  it('refuses what is not an RTMP URL with RTMP_BAD_URL, never echoing a key', () => {
    for (const bad of ['http://x/live/secretkey', 'rtmp://host', 'rtmp://host/secretkey', 'rtmp://host/live/', 'rtmp://u:secretkey@host/live/k', 'rtmp://host:99999/live/secretkey', 'rtmp:///live/secretkey']) {
      let err: { code?: string; message?: string } = {};
      try {
        parseRtmpUrl(bad);
      } catch (e) {
        err = e as typeof err;
      }
      expect(err.code, bad).toBe('RTMP_BAD_URL');
      expect(err.message, bad).not.toContain('secretkey');
    }
  });
});

describe('redaction', () => {
  it('redactUrl and redactKey scrub the stream key, with or without its query', () => {
    const url = 'rtmp://a.example/live/sk_live_42?auth=tok3n';
    expect(redactUrl(url)).toBe('rtmp://a.example/live/***');
    expect(redactUrl('nonsense sk_live_42')).not.toContain('sk_live_42');
    expect(redactKey('publish sk_live_42?auth=tok3n failed; sk_live_42 busy', url)).toBe('publish *** failed; *** busy');
    expect(redactKey('nothing here', 'not a url')).toBe('nothing here');
  });
});

describe('resolveServerUrl: where a redirect or reconnect request sends the stream', () => {
  const current = parseRtmpUrl('rtmp://a.example.com:1936/live/sk_live_42?auth=1');
  it('takes the four forms of Enhanced RTMP v2 tcUrl and keeps the stream name', () => {
    expect(resolveServerUrl('rtmp://foo.mydomain.com:1935/realtimeapp', current)).toBe('rtmp://foo.mydomain.com:1935/realtimeapp/sk_live_42?auth=1');
    expect(resolveServerUrl('rtmps://b.example.com/app/', current)).toBe('rtmps://b.example.com/app/sk_live_42?auth=1');
    expect(resolveServerUrl('//192.0.2.0/realtimeapp', current)).toBe('rtmp://192.0.2.0/realtimeapp/sk_live_42?auth=1');
    expect(resolveServerUrl('/realtimeapp', current)).toBe('rtmp://a.example.com:1936/realtimeapp/sk_live_42?auth=1');
    // The same server when the request names none (the caller passes the current tcUrl).
    expect(resolveServerUrl(current.tcUrl, current)).toBe('rtmp://a.example.com:1936/live/sk_live_42?auth=1');
  });

  it('takes a whole URL that already ends with the stream name (old SRS redirects) as it is', () => {
    expect(resolveServerUrl('rtmp://10.0.0.2:19350/live/sk_live_42', current)).toBe('rtmp://10.0.0.2:19350/live/sk_live_42');
    expect(resolveServerUrl('rtmp://10.0.0.2:19350/live/sk_live_42?auth=1', current)).toBe('rtmp://10.0.0.2:19350/live/sk_live_42?auth=1');
  });

  it('refuses what cannot be dialled with RTMP_BAD_URL, without the key', () => {
    for (const ref of ['http://evil.example.com/app', 'realtimeapp', 'rtmp://user:pw@host/app', 'rtmp://host:99999/app', 'rtmp://host']) {
      let err: { code?: string; message?: string } = {};
      try {
        resolveServerUrl(ref, current);
      } catch (e) {
        err = e as typeof err;
      }
      expect(err.code, ref).toBe('RTMP_BAD_URL');
      expect(err.message).not.toContain('sk_live_42');
    }
  });
});

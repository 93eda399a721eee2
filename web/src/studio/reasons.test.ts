import { describe, expect, it } from 'vitest';
import { exceededLimits, PLATFORMS, platformById } from './presets.js';
import { describeMove, explainReason } from './reasons.js';

describe('a destination reason in plain words', () => {
  it('turns a refused stream key into the fix, keeping the bridge words as detail', () => {
    // As bridge/src/relay/destination-relay.ts reports it after repeated refusals.
    const reason = "the server refused the stream key: check it in the platform's dashboard (publish refused: NetStream.Publish.BadName [RTMP_PUBLISH_BADNAME])";
    const e = explainReason(reason);
    expect(e.text).toMatch(/^Stream key refused — /);
    expect(e.text).not.toMatch(/\[|RTMP_/);
    expect(e.detail).toBe(reason);
  });

  it('has a sentence for every code a destination retries or fails with, and never shows a bare code', () => {
    for (const code of ['RTMP_CONNECT_REFUSED', 'RTMP_CONNECT_FAILED', 'RTMP_CONNECT_TIMEOUT', 'RTMP_DNS_TIMEOUT', 'HANDSHAKE_FAILED', 'TLS_CERT_HAS_EXPIRED', 'DESTINATION_REFUSED', 'RTMP_CONNECTION_LOST', 'CONNECTION_CLOSED', 'RTMP_SEND_STALLED', 'RTMP_PUBLISH_FAILED', 'RTMP_CONNECT_REJECTED']) {
      const e = explainReason(`connect ECONNREFUSED 203.0.113.9:1935 [${code}]`);
      expect(e.text, code).toMatch(/ — /);
      expect(e.text, code).not.toContain(code);
    }
    const unknown = explainReason('something new happened [SOMETHING_NEW]');
    expect(unknown.text).toBe('something new happened');
    expect(explainReason('reconnecting to the bridge')).toEqual({ text: 'reconnecting to the bridge' });
  });
});

describe('a destination a server moved, in a few words', () => {
  it('names the host it publishes at now and counts the moves', () => {
    expect(describeMove({})).toBeUndefined();
    expect(describeMove({ movedTo: 'rtmp://edge2.example.com:1936/live/***' })).toBe('moved to edge2.example.com:1936');
    expect(describeMove({ movedTo: 'rtmps://b.example.com/app/***', moves: 1 })).toBe('moved to b.example.com (1 move)');
    expect(describeMove({ moves: 2 })).toBe("reconnected at the server's request (2 moves)");
  });
});

describe('platform presets', () => {
  it('use RTMPS ingests and warn when the quality goes past a platform limit', () => {
    for (const p of PLATFORMS.filter((x) => x.id !== 'custom')) {
      expect(p.server, p.id).toMatch(/^rtmps:\/\/[^/]+:443\//);
      expect(p.keyHelp?.where, p.id).toBeTruthy();
      expect(p.limits?.keyframeIntervalS, p.id).toBe(2);
    }
    const twitch = platformById('twitch')!.limits!;
    const q = { width: 1280, height: 720, fps: 30, videoBitrate: 2_500_000, keyframeIntervalS: 2, sampleRate: 48_000 };
    expect(exceededLimits(twitch, q)).toEqual([]);
    expect(exceededLimits(twitch, { ...q, videoBitrate: 8_000_000 })).toEqual([expect.stringMatching(/8 Mbps is over its 6 Mbps/)]);
    expect(exceededLimits(twitch, { ...q, width: 2560, height: 1440, fps: 120, sampleRate: 32_000, keyframeIntervalS: 4 })).toHaveLength(4);
  });
});

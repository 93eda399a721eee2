import { describe, expect, it } from 'vitest';
import { ingestServer, previewSocketUrl } from './restream.svelte.js';

describe('the Restream view', () => {
  it('gives the encoder the embedded server as OBS takes it, on the page host when it listens everywhere', () => {
    expect(ingestServer({ host: null, port: 1935, app: 'live', open: false }, 'studio.example')).toBe('rtmp://studio.example:1935/live');
    expect(ingestServer({ host: '127.0.0.1', port: 19350, app: 'live', open: true }, 'localhost')).toBe('rtmp://127.0.0.1:19350/live');
    expect(ingestServer({ host: null, port: 1935, app: 'live', open: false }, '[::1]')).toBe('rtmp://[::1]:1935/live');
    expect(ingestServer({ host: '::1', port: 1935, app: 'live', open: true }, 'x')).toBe('rtmp://[::1]:1935/live');
    expect(ingestServer(null, 'x')).toBeNull();
  });

  it('plays the preview from the watch socket the watch page would use', () => {
    const loc = { protocol: 'http:', host: '127.0.0.1:8080' };
    expect(previewSocketUrl('/watch/live/k3y', loc)).toBe('ws://127.0.0.1:8080/watch-ws/live/k3y');
    expect(previewSocketUrl('/watch?src=rtmp%3A%2F%2Fh%2Fapp%2Fkey', { protocol: 'https:', host: 'a.example' })).toBe(
      `wss://a.example/watch-ws?src=${encodeURIComponent('rtmp://h/app/key')}`,
    );
    expect(previewSocketUrl('/studio', loc)).toBeUndefined();
    expect(previewSocketUrl('/watch/only-one-part', loc)).toBeUndefined();
  });
});

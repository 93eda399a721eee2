import { describe, expect, it } from 'vitest';
import { isParentMessage, mayPublish } from './messages.js';

describe('mayPublish (the embedded server beyond loopback)', () => {
  const keys = new Set(['ingest-key']);
  const bridge = new Set(['studio-key']);

  it('lets an ingest key publish in app live from anywhere, and nothing else from elsewhere', () => {
    expect(mayPublish('live', 'ingest-key', false, keys, bridge)).toBe(true);
    expect(mayPublish('other', 'ingest-key', false, keys, bridge)).toBe(false);
    expect(mayPublish('live', 'guess', false, keys, bridge)).toBe(false);
  });

  it("lets the studio's own key publish from this machine only: a watch link names it", () => {
    expect(mayPublish('live', 'studio-key', true, keys, bridge)).toBe(true);
    expect(mayPublish('live', 'studio-key', false, keys, bridge)).toBe(false);
    expect(mayPublish('other', 'studio-key', true, keys, bridge)).toBe(false);
  });

  it('lets anything publish when the keys are not gated (a loopback bind)', () => {
    expect(mayPublish('any', 'name', false, null, bridge)).toBe(true);
  });
});

describe('isParentMessage', () => {
  it('takes publish keys with the local keys, and refuses a message without them', () => {
    expect(isParentMessage({ type: 'publish-keys', keys: ['a'], localKeys: ['b'] })).toBe(true);
    expect(isParentMessage({ type: 'publish-keys', keys: null, localKeys: [] })).toBe(true);
    expect(isParentMessage({ type: 'publish-keys', keys: ['a'] })).toBe(false);
    expect(isParentMessage({ type: 'publish-keys', keys: [1], localKeys: [] })).toBe(false);
    expect(isParentMessage({ type: 'stop' })).toBe(true);
  });
});

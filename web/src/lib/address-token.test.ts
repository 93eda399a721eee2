import { describe, expect, it } from 'vitest';
import { searchWithoutToken } from './address-token.js';

describe('searchWithoutToken', () => {
  it('drops every token parameter and keeps the others exactly as spelled', () => {
    expect(searchWithoutToken('?token=s3cret')).toBe('');
    expect(searchWithoutToken('?src=rtmp%3A%2F%2Fh%2Flive%2Fk%2Bx&token=s3cret&latency=0.3')).toBe('?src=rtmp%3A%2F%2Fh%2Flive%2Fk%2Bx&latency=0.3');
    expect(searchWithoutToken('?token=a&src=rtmp://h/live/k+x&token=b')).toBe('?src=rtmp://h/live/k+x');
    expect(searchWithoutToken('?%74oken=s3cret&a=1')).toBe('?a=1');
    expect(searchWithoutToken('?token')).toBe('');
  });

  it('leaves a URL without a token alone', () => {
    expect(searchWithoutToken('')).toBeUndefined();
    expect(searchWithoutToken('?src=rtmp://h/live/k')).toBeUndefined();
    expect(searchWithoutToken('?tokens=1&my_token=2&%E0=3')).toBeUndefined();
  });
});

import { describe, expect, it } from 'vitest';
import { OnairError } from '@onair/shared';
import { Admission } from './admission.js';

describe('Admission', () => {
  it('holds a global and a per-client limit; loopback clients only meet the global one', () => {
    const a = new Admission({ max: 4, perClient: 2 }, 'VIEWER_LIMIT', 'viewers');
    const r1 = a.admit('203.0.113.5');
    a.admit('203.0.113.5');
    expect(() => a.admit('203.0.113.5')).toThrow(/2 viewers from one address/);
    a.admit('127.0.0.1');
    a.admit('::1');
    expect(a.count).toBe(4);
    try {
      a.admit('198.51.100.1');
      throw new Error('admitted past the limit');
    } catch (err) {
      expect(err).toBeInstanceOf(OnairError);
      expect((err as OnairError).code).toBe('VIEWER_LIMIT');
      expect((err as Error).message).toMatch(/carries 4 viewers already/);
    }
    r1();
    r1();
    expect(a.count).toBe(3);
    a.admit('203.0.113.5');
    expect(() => a.admit('203.0.113.5')).toThrow(OnairError);
  });
});

import { describe, expect, it } from 'vitest';
import { OnairError } from '../errors.js';
import { Amf0EcmaArray, amf0Props, decodeAmf0, encodeAmf0, type Amf0Value } from './amf0.js';
import { h } from '../testing/bytes.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof OnairError ? err.code : `not an OnairError: ${String(err)}`;
  }
  return undefined;
}

// Golden bytes hand-assembled from the AMF0 spec (Adobe, AMF 0 Specification §2).
const golden: Array<[string, Amf0Value, Uint8Array]> = [
  ['number 1.5', 1.5, h('00 3f f8 00 00 00 00 00 00')],
  ['number -0.25', -0.25, h('00 bf d0 00 00 00 00 00 00')],
  ['boolean true', true, h('01 01')],
  ['boolean false', false, h('01 00')],
  ['string', 'abc', h("02 00 03 'abc'")],
  ['empty string', '', h('02 00 00')],
  ['utf-8 string', 'é', h('02 00 02 c3 a9')],
  ['object', { a: 1, b: 'x' }, h("03 00 01 'a' 00 3f f0 00 00 00 00 00 00 00 01 'b' 02 00 01 'x' 00 00 09")],
  ['empty object', {}, h('03 00 00 09')],
  ['null', null, h('05')],
  ['undefined', undefined, h('06')],
  ['ECMA array', new Amf0EcmaArray({ w: 2 }), h("08 00 00 00 01 00 01 'w' 00 40 00 00 00 00 00 00 00 00 00 09")],
  ['strict array', [1, 'x', null], h("0a 00 00 00 03 00 3f f0 00 00 00 00 00 00 02 00 01 'x' 05")],
  ['date', new Date(Date.UTC(2020, 0, 1)), h('0b 42 76 f5 e6 6e 80 00 00 00 00')],
];

describe('AMF0 golden bytes', () => {
  for (const [name, value, bytes] of golden) {
    it(`${name}: encodes to and decodes from the spec bytes`, () => {
      expect(encodeAmf0([value])).toEqual(bytes);
      expect(decodeAmf0(bytes)).toEqual([value]);
    });
  }

  it('long string (0x0c) decodes, and strings over 65535 bytes encode as one', () => {
    expect(decodeAmf0(h("0c 00 00 00 03 'abc'"))).toEqual(['abc']);
    const long = 'x'.repeat(70000);
    const bytes = encodeAmf0([long]);
    expect(Array.from(bytes.subarray(0, 5))).toEqual([0x0c, 0x00, 0x01, 0x11, 0x70]);
    expect(bytes.length).toBe(5 + 70000);
    expect(decodeAmf0(bytes)).toEqual([long]);
  });

  it('XML document, typed object and unsupported decode to usable values', () => {
    expect(decodeAmf0(h("0f 00 00 00 02 '<a'"))).toEqual(['<a']);
    expect(decodeAmf0(h("10 00 01 'C' 00 01 'k' 01 01 00 00 09"))).toEqual([{ k: true }]);
    expect(decodeAmf0(h('0d'))).toEqual([undefined]);
  });

  it('ECMA array count is a hint: entries end at the object-end marker', () => {
    const v = decodeAmf0(h("08 00 00 00 00 00 01 'a' 01 01 00 01 'b' 01 00 00 00 09"))[0]!;
    expect(v).toBeInstanceOf(Amf0EcmaArray);
    expect(amf0Props(v)).toEqual({ a: true, b: false });
  });

  it('SRS-style _result(txn, null, undefined) for releaseStream/FCPublish', () => {
    const body = h("02 00 07 '_result' 00 40 00 00 00 00 00 00 00 05 06");
    expect(decodeAmf0(body)).toEqual(['_result', 2, null, undefined]);
    expect(encodeAmf0(['_result', 2, null, undefined])).toEqual(body);
  });

  it('a connect command round-trips', () => {
    const cmd: Amf0Value[] = [
      'connect',
      1,
      { app: 'live', type: 'nonprivate', flashVer: 'FMLE/3.0 (compatible; onair)', tcUrl: 'rtmp://127.0.0.1/live' },
    ];
    expect(decodeAmf0(encodeAmf0(cmd))).toEqual(cmd);
  });
});

describe('AMF0 malformed and hostile input', () => {
  const nested = (depth: number): Uint8Array => {
    // depth objects each holding the next under key "a", the innermost empty.
    const open = Array.from({ length: depth }, (_, i) => (i === depth - 1 ? '03' : "03 00 01 'a'")).join(' ');
    const close = Array.from({ length: depth }, (_, i) => (i === 0 ? '00 00 09' : '00 00 09')).join(' ');
    return h(`${open} ${close}`);
  };

  it('accepts nesting up to the limit (16) and refuses deeper', () => {
    expect(() => decodeAmf0(nested(16))).not.toThrow();
    expect(codeOf(() => decodeAmf0(nested(17)))).toBe('AMF0_MALFORMED');
    expect(codeOf(() => decodeAmf0(nested(4), { maxDepth: 3 }))).toBe('AMF0_MALFORMED');
    const arrays = h(`${'0a 00 00 00 01 '.repeat(40)} 05`);
    expect(codeOf(() => decodeAmf0(arrays))).toBe('AMF0_MALFORMED');
  });

  it('a single value truncated at every offset throws SHORT_INPUT or AMF0_MALFORMED', () => {
    const value: Amf0Value = {
      n: 1.5,
      b: true,
      s: 'str',
      o: { x: null, y: undefined },
      e: new Amf0EcmaArray({ k: 'v' }),
      a: [1, 'two', [false]],
      d: new Date(0),
    };
    const bytes = encodeAmf0([value]);
    expect(decodeAmf0(bytes)).toEqual([value]);
    expect(decodeAmf0(bytes.subarray(0, 0))).toEqual([]);
    for (let i = 1; i < bytes.length; i++) {
      const code = codeOf(() => decodeAmf0(bytes.subarray(0, i)));
      expect(['SHORT_INPUT', 'AMF0_MALFORMED'], `cut at ${i}`).toContain(code);
    }
  });

  it('a command truncated at every offset throws or yields only whole leading values', () => {
    const values: Amf0Value[] = ['_result', 1, { fmsVer: 'FMS/3,0,1,123' }, { level: 'status', code: 'NetConnection.Connect.Success' }];
    const bytes = encodeAmf0(values);
    for (let i = 0; i < bytes.length; i++) {
      let got: Amf0Value[] | undefined;
      const code = codeOf(() => (got = decodeAmf0(bytes.subarray(0, i))));
      if (code === undefined) expect(got, `cut at ${i}`).toEqual(values.slice(0, got!.length));
      else expect(['SHORT_INPUT', 'AMF0_MALFORMED'], `cut at ${i}`).toContain(code);
    }
  });

  it('refuses a strict array count larger than the input', () => {
    expect(codeOf(() => decodeAmf0(h('0a ff ff ff ff 05')))).toBe('AMF0_MALFORMED');
  });

  it('refuses unknown and reference markers', () => {
    expect(codeOf(() => decodeAmf0(h('07 00 01')))).toBe('AMF0_MALFORMED');
    expect(codeOf(() => decodeAmf0(h('11 00')))).toBe('AMF0_MALFORMED');
    expect(codeOf(() => decodeAmf0(h('ff')))).toBe('AMF0_MALFORMED');
  });

  it('an empty key not followed by object-end is malformed', () => {
    expect(codeOf(() => decodeAmf0(h('03 00 00 05')))).toBe('AMF0_MALFORMED');
  });

  it('a "__proto__" key stays data and pollutes nothing', () => {
    const bytes = h("03 00 09 '__proto__' 03 00 08 'polluted' 01 01 00 00 09 00 00 09");
    const [v] = decodeAmf0(bytes) as [Record<string, unknown>];
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(Object.keys(v)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(v, '__proto__')?.value).toEqual({ polluted: true });
    expect((v as { polluted?: unknown }).polluted).toBeUndefined();
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    expect(encodeAmf0([v as Amf0Value])).toEqual(bytes);
  });
});

// shared/ is isomorphic: it uses only what both browsers and Node provide. ES lib typings
// lack the WHATWG encoding classes, so the two it needs are declared here, narrowly.
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input?: Uint8Array): string;
}
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}

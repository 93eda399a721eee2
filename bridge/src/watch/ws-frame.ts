/** WebSocket opcodes a watch socket sends (RFC 6455 §5.2). */
export const enum WsOpcode {
  Text = 0x1, // text frame
  Binary = 0x2, // binary frame
}

const FIN = 0x80;

/**
 * One final, unmasked frame as a server sends it: header and payload in one buffer, so a tag
 * fanned out to N viewers is framed once and written N times.
 */
export function wsFrame(opcode: WsOpcode, payload: Uint8Array): Buffer {
  const n = payload.length;
  const headerSize = n < 126 ? 2 : n < 0x10000 ? 4 : 10;
  const out = Buffer.allocUnsafe(headerSize + n);
  out[0] = FIN | opcode;
  if (n < 126) {
    out[1] = n;
  } else if (n < 0x10000) {
    out[1] = 126;
    out.writeUInt16BE(n, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    out.writeUInt32BE(n >>> 0, 6);
  }
  out.set(payload, headerSize);
  return out;
}

import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { securityHeaders } from './headers.js';

/**
 * Refuses an HTTP upgrade the way ws does (`abortHandshake`): an error handler goes on first, so a
 * client that resets the connection mid-answer costs nothing but this socket, then the answer is
 * written and the socket ended. `reason` goes in a plain-text body, for people reading it by hand.
 * The answer carries the security headers of every other response.
 */
export function refuseUpgrade(socket: Duplex, status: number, reason = '', headers: Record<string, string> = {}): void {
  socket.on('error', () => socket.destroy());
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = reason === '' ? '' : `${reason}\n`;
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'connection: close',
    'content-type: text/plain; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    ...Object.entries({ ...securityHeaders(), ...headers }).map(([k, v]) => `${k}: ${v}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

import { createServer, type Server, type Socket } from 'node:net';

/** A TCP server on 127.0.0.1 that is not an RTMP server. */
export interface BadServer {
  readonly port: number;
  /** `rtmp://127.0.0.1:<port>/<app>/<name>` */
  url(app: string, name: string): string;
  close(): Promise<void>;
}

async function listen(onSocket: (socket: Socket) => void): Promise<BadServer> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    onSocket(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('no port assigned');
  return {
    port: address.port,
    url: (app, name) => `rtmp://127.0.0.1:${address.port}/${app}/${name}`,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Accepts connections and never sends a byte: a client must give up on its own timer. */
export function startSilentServer(): Promise<BadServer> {
  return listen(() => undefined);
}

// What an HTTP server answers to bytes it cannot parse, longer than S0+S1+S2 (3073 bytes) so a
// client that reads the whole handshake before checking it still gets an answer at once.
const HTTP_400_BODY = `<html><body>${'<p>400 Bad Request</p>'.repeat(160)}</body></html>`;
const HTTP_400 = Buffer.from(
  `HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\nContent-Length: ${HTTP_400_BODY.length}\r\n\r\n${HTTP_400_BODY}`,
);

/** Answers every connection with `reply` (default: an HTTP 400 page), then ignores what comes. */
export function startGarbageServer(reply: Uint8Array = HTTP_400): Promise<BadServer> {
  return listen((socket) => {
    socket.write(reply);
  });
}

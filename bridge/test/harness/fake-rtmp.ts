import { createServer, type Server, type Socket } from 'node:net';
import { amf0Props, encodeAmf0, type Amf0Value } from '@onair/shared';
import { ChunkReader } from '../../src/rtmp/chunk-reader.js';
import { ChunkWriter } from '../../src/rtmp/chunk-writer.js';
import { decodeCommand } from '../../src/rtmp/commands.js';

/** How a fake server refuses connect to send the client elsewhere, as real servers do. */
export type RedirectForm =
  /** Wowza: `_error` answering connect, `ex: { code: 302, redirect: tcUrl }`. */
  | 'wowza'
  /** SRS 4+: `onStatus` level error, `ex: { code: 302, redirect: tcUrl, redirect2: whole URL }`. */
  | 'srs'
  /** The URL only in the description of a plain rejection. */
  | 'description';

export interface FakeRtmpOptions {
  /** Names in this server's log lines. */
  label: string;
  /** Where connect is sent instead of accepted (a tcUrl, absolute or relative), and how. */
  redirect?: { to: string; form: RedirectForm };
  /**
   * Names being published, shared by the servers of one cluster: a publish of a name another
   * connection holds gets `NetStream.Publish.BadName` "Already publishing", as nginx-rtmp answers.
   */
  names?: Set<string>;
  /** One log for several servers, to see the order of events across them. */
  log?: string[];
  /** Answers createStream this much later (a slow server). */
  createStreamDelayMs?: number;
}

/** A media or data message a publisher sent (`@setDataFrame` removed from metadata). */
export interface FakeMessage {
  /** Which of this server's connections it came on, from 1. */
  connection: number;
  type: number;
  timestamp: number;
  payload: Uint8Array;
}

export interface FakeRtmpServer {
  readonly port: number;
  /** `rtmp://127.0.0.1:<port>/<app>/<name>` */
  url(app: string, name: string): string;
  tcUrl(app: string): string;
  /** Audio, video and data messages from publishers, in arrival order (all connections). */
  readonly received: FakeMessage[];
  /** Connections accepted so far. */
  connections(): number;
  /** Connections open now. */
  open(): number;
  /** Publishers live now. */
  live(): number;
  /** Sends `NetConnection.Connect.ReconnectRequest` to every live publisher. */
  requestReconnect(info?: { tcUrl?: string; description?: string }): void;
  close(): Promise<void>;
}

const SET_DATA_FRAME = encodeAmf0(['@setDataFrame']);

function startsWith(b: Uint8Array, prefix: Uint8Array): boolean {
  return b.length >= prefix.length && prefix.every((v, i) => b[i] === v);
}

/**
 * A small RTMP publish server built on the real chunk reader and writer, for what real servers
 * cannot be made to do on demand: redirect a connect, ask a live publisher to reconnect.
 * Closes a connection when the client half-closes it, as nginx-rtmp does.
 */
export async function startFakeRtmp(opts: FakeRtmpOptions): Promise<FakeRtmpServer> {
  const sockets = new Set<Socket>();
  const received: FakeMessage[] = [];
  const publishers = new Set<(values: Amf0Value[]) => void>();
  const names = opts.names ?? new Set<string>();
  let connections = 0;
  const log = (line: string): void => void opts.log?.push(`${opts.label}: ${line}`);

  const server: Server = createServer((socket) => {
    const connection = ++connections;
    sockets.add(socket);
    socket.on('error', () => undefined);
    const writer = new ChunkWriter();
    const reader = new ChunkReader();
    let handshake = 0;
    let holding: string | undefined;
    const release = (why: string): void => {
      if (holding === undefined) return;
      names.delete(holding);
      holding = undefined;
      log(`released the name (${why})`);
    };
    const cmd = (streamId: number, ...values: Amf0Value[]): void => {
      if (socket.writable) socket.write(writer.encode({ csid: 3, type: 20, timestamp: 0, streamId, payload: encodeAmf0(values) }));
    };
    const reconnect = (values: Amf0Value[]): void => cmd(0, ...values);
    socket.on('end', () => {
      log('client closed');
      release('closed');
      socket.end();
    });
    socket.on('close', () => {
      sockets.delete(socket);
      publishers.delete(reconnect);
      release('closed');
    });
    socket.on('data', (data: Buffer) => {
      let rest: Uint8Array = data;
      if (handshake < 1537 + 1536) {
        const now = handshake + Math.min(data.length, 1537 + 1536 - handshake);
        if (handshake < 1537 && now >= 1537) socket.write(new Uint8Array(1 + 1536 * 2).fill(3, 0, 1));
        rest = data.subarray(now - handshake);
        handshake = now;
      }
      for (const m of reader.push(rest)) {
        if (m.type === 8 || m.type === 9 || m.type === 18) {
          const payload = m.type === 18 && startsWith(m.payload, SET_DATA_FRAME) ? m.payload.slice(SET_DATA_FRAME.length) : m.payload;
          received.push({ connection, type: m.type, timestamp: m.timestamp, payload });
          continue;
        }
        if (m.type !== 20) continue;
        const c = decodeCommand(m.type, m.payload);
        switch (c.name) {
          case 'connect': {
            const tcUrl = String(amf0Props(c.commandObject)?.['tcUrl'] ?? '');
            log(`connect ${tcUrl}`);
            const r = opts.redirect;
            if (r === undefined) {
              cmd(0, '_result', c.transactionId, { fmsVer: 'FMS/3,0,1,123' }, { level: 'status', code: 'NetConnection.Connect.Success' });
            } else if (r.form === 'wowza') {
              cmd(0, '_error', c.transactionId, null, { level: 'error', code: 'NetConnection.Connect.Rejected', description: 'Connection failed: Application rejected connection.', ex: { code: 302, redirect: r.to } });
            } else if (r.form === 'srs') {
              cmd(0, 'onStatus', 0, null, { level: 'error', code: 'NetConnection.Connect.Rejected', description: 'RTMP 302 Redirect', ex: { code: 302, redirect: r.to, redirect2: `${r.to}/unused` } });
            } else {
              cmd(0, '_error', c.transactionId, null, { level: 'error', code: 'NetConnection.Connect.Rejected', description: `moved to ${r.to}` });
            }
            break;
          }
          case 'createStream':
            if (opts.createStreamDelayMs) setTimeout(() => cmd(0, '_result', c.transactionId, null, 1), opts.createStreamDelayMs);
            else cmd(0, '_result', c.transactionId, null, 1);
            break;
          case 'publish': {
            const name = String(c.args[0]);
            if (names.has(name)) {
              log('publish refused: already publishing');
              cmd(1, 'onStatus', 0, null, { level: 'error', code: 'NetStream.Publish.BadName', description: 'Already publishing' });
              break;
            }
            names.add(name);
            holding = name;
            publishers.add(reconnect);
            log('publish');
            cmd(1, 'onStatus', 0, null, { level: 'status', code: 'NetStream.Publish.Start', description: 'Start publishing' });
            break;
          }
          case 'FCUnpublish':
          case 'deleteStream':
            log(c.name);
            publishers.delete(reconnect);
            release(c.name);
            break;
          default:
            break;
        }
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: (app, name) => `rtmp://127.0.0.1:${port}/${app}/${name}`,
    tcUrl: (app) => `rtmp://127.0.0.1:${port}/${app}`,
    received,
    connections: () => connections,
    open: () => sockets.size,
    live: () => publishers.size,
    requestReconnect: (info = {}) => {
      log('reconnect request');
      const obj: Record<string, Amf0Value> = { level: 'status', code: 'NetConnection.Connect.ReconnectRequest', description: info.description ?? 'The streaming server is undergoing updates.' };
      if (info.tcUrl !== undefined) obj['tcUrl'] = info.tcUrl;
      for (const send of publishers) send(['onStatus', 0, null, obj]);
    },
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

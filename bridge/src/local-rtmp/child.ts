// The embedded RTMP server in a process of its own, so its faults are not the bridge's:
// node-media-server throws from its socket handlers on malformed input (an onMetaData whose
// strict array announces more items than the message holds), calls process.exit() when it cannot
// listen, and keeps process-wide state. The bridge supervises this process (local-rtmp.ts).
// It is also the ingest gate: only the publish keys the bridge sends may publish, and beyond
// loopback only this machine may play.
// Usage: node child.js '<ChildConfig JSON>'; talks over the IPC channel only, and listens once the
// bridge has sent the publish keys.
import { rmdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo, Server, Socket } from 'node:net';
import { dirname } from 'node:path';
import { isLoopbackHost } from '../server/policy.js';
import { EXIT_FATAL, EXIT_LISTEN, isParentMessage, mayPublish as keyMayPublish, type ChildConfig, type ChildMessage } from './messages.js';

interface NmsSession {
  streamApp: string;
  streamName: string;
  streamPath: string;
  /** RTMP sessions only. */
  socket?: Socket;
  /** RTMP sessions only: the protocol parser, which hands every media message it reads to this callback. */
  rtmp?: { onPacketCallback: (packet: unknown) => void };
  close(): void;
}

type NmsEvent = 'prePublish' | 'postPublish' | 'donePublish' | 'prePlay';

interface NodeMediaServer {
  rtmpServer: { tcpServer?: unknown };
  on(event: NmsEvent, fn: (session: NmsSession) => void): void;
  run(): Promise<void>;
  stop(): Promise<void>;
}

const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;

// Whatever happens to the parent, this process must not outlive it and keep the port. A parent
// that was killed cannot remove the store either: do it here.
process.on('disconnect', () => {
  rmSync(config.store, { recursive: true, force: true });
  try {
    rmdirSync(dirname(config.store));
  } catch {
    // not empty or gone already: the parent's business
  }
  process.exit(0);
});

function send(message: ChildMessage, then?: () => void): void {
  if (!process.connected || process.send === undefined) {
    then?.();
    return;
  }
  process.send(message, undefined, undefined, () => then?.());
}

function die(exitCode: number, message: ChildMessage): void {
  // The message must reach the parent before the process goes; a stuck channel must not keep it.
  setTimeout(() => process.exit(exitCode), 1000).unref();
  send(message, () => process.exit(exitCode));
}

const onFatal = (err: unknown): void => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? String(err)) : String(err)}\n`);
  die(EXIT_FATAL, { type: 'fatal', error: String(err) });
};
process.on('uncaughtException', onFatal);
process.on('unhandledRejection', onFatal);

const require = createRequire(import.meta.url);
const NodeMediaServerClass = require('node-media-server') as new (config: object, configPath: string) => NodeMediaServer;
const server = new NodeMediaServerClass({ bind: config.host, rtmp: { port: config.port }, store: { path: config.store } }, '');

// The names allowed to publish in app `live`; null: any name in any app. Until the bridge says,
// nothing (the server does not listen before).
let allowed: ReadonlySet<string> | null = new Set();
/** The bridge's own keys: from this machine only. */
let localOnly: ReadonlySet<string> = new Set();
const beyondLoopback = !isLoopbackHost(config.host);
const refused = new WeakSet<NmsSession>();
const publishers = new Set<NmsSession>();
/** Stream paths the bridge was told are published and not yet that they ended. */
const announced = new Set<string>();

function mayPublish(s: NmsSession): boolean {
  // Hashed lookups of the exact string, not a scan that compares the name with every key.
  return keyMayPublish(s.streamApp, s.streamName, s.socket !== undefined && isLocalClient(s.socket), allowed, localOnly);
}

/** On this machine: loopback, or an address of its own (the bridge dials a specific bind address). */
function isLocalClient(socket: Socket): boolean {
  const remote = socket.remoteAddress;
  return remote !== undefined && (isLoopbackHost(remote) || remote === socket.localAddress);
}

/**
 * node-media-server has no way to refuse from its hooks but closing the session (as its own
 * notify server does). Close it at once, not with end(): a half-closed publisher goes on sending,
 * node-media-server goes on reading, and the encoder hears of it late.
 */
function disconnect(s: NmsSession): void {
  if (s.socket !== undefined) s.socket.destroy();
  else s.close();
}

function refuse(s: NmsSession, what: 'publish' | 'play'): void {
  refused.add(s);
  const client = s.socket?.remoteAddress ?? 'unknown';
  // The parser goes on with the bytes already read and hands any media in them to the stream's
  // players, whatever the session's role: nothing a refused client sent may reach them.
  if (s.rtmp !== undefined) s.rtmp.onPacketCallback = () => undefined;
  disconnect(s);
  send({ type: 'refused', what, client });
}

// prePublish and prePlay come after node-media-server has read the stream name and before it
// registers the publisher or the player. Refused sessions still go through the rest of its
// bookkeeping and are left out here: postPublish; and a refused session can take over the grace
// period of the path's last publisher (same client address), so its donePublish may end a
// publish that was announced: the path, not the session, says whether to tell the bridge.
server.on('prePublish', (s) => {
  if (!mayPublish(s)) refuse(s, 'publish');
});
server.on('prePlay', (s) => {
  if (beyondLoopback && s.socket !== undefined && !isLocalClient(s.socket)) refuse(s, 'play');
});
server.on('postPublish', (s) => {
  if (refused.has(s)) return;
  publishers.add(s);
  s.socket?.once('close', () => publishers.delete(s));
  announced.add(s.streamPath);
  send({ type: 'published', app: s.streamApp, stream: s.streamName, path: s.streamPath });
});
server.on('donePublish', (s) => {
  if (announced.delete(s.streamPath)) send({ type: 'unpublished', path: s.streamPath });
});

function setPublishKeys(keys: readonly string[] | null, localKeys: readonly string[]): void {
  allowed = keys === null ? null : new Set(keys);
  localOnly = new Set(localKeys);
  // A key taken away ends its publish now, not at the encoder's next reconnect.
  for (const s of publishers) {
    if (mayPublish(s)) continue;
    publishers.delete(s);
    disconnect(s);
  }
}

function listen(): void {
  server.run().catch(onFatal);
  // run() has called listen() synchronously; 'listening' and 'error' come later. NMS's own error
  // handler logs and exits 1: the parent gets the reason instead.
  const tcp = server.rtmpServer.tcpServer as Server | undefined;
  if (tcp === undefined || typeof tcp.removeAllListeners !== 'function') throw new Error('node-media-server has no RTMP listener (rtmpServer.tcpServer)');
  tcp.removeAllListeners('error');
  tcp.on('error', (err: NodeJS.ErrnoException) => die(EXIT_LISTEN, { type: 'listen-failed', code: err.code ?? 'ERROR', message: err.message }));
  tcp.once('listening', () => send({ type: 'ready', port: (tcp.address() as AddressInfo).port }));
}

let listening = false;
let stopping = false;
process.on('message', (m: unknown) => {
  if (!isParentMessage(m) || stopping) return;
  if (m.type === 'publish-keys') {
    setPublishKeys(m.keys, m.localKeys);
    if (!listening) {
      listening = true;
      listen();
    }
    return;
  }
  stopping = true;
  if (!listening) process.exit(0);
  server.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});

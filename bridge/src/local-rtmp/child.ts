// The embedded RTMP server in a process of its own, so its faults are not the bridge's:
// node-media-server throws from its socket handlers on malformed input (an onMetaData whose
// strict array announces more items than the message holds), calls process.exit() when it cannot
// listen, and keeps process-wide state. The bridge supervises this process (local-rtmp.ts).
// Usage: node child.js '<ChildConfig JSON>'; talks over the IPC channel only.
import { rmdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo, Server } from 'node:net';
import { dirname } from 'node:path';
import { EXIT_FATAL, EXIT_LISTEN, type ChildConfig, type ChildMessage, type ParentMessage } from './messages.js';

interface NmsSession {
  streamApp: string;
  streamName: string;
  streamPath: string;
}

interface NodeMediaServer {
  rtmpServer: { tcpServer?: unknown };
  on(event: 'postPublish' | 'donePublish', fn: (session: NmsSession) => void): void;
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
const server = new NodeMediaServerClass({ bind: '127.0.0.1', rtmp: { port: config.port }, store: { path: config.store } }, '');

server.on('postPublish', (s) => send({ type: 'published', app: s.streamApp, stream: s.streamName, path: s.streamPath }));
server.on('donePublish', (s) => send({ type: 'unpublished', path: s.streamPath }));

let stopping = false;
process.on('message', (m: ParentMessage) => {
  if (m.type !== 'stop' || stopping) return;
  stopping = true;
  server.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});

const running = server.run();
// run() has called listen() synchronously; 'listening' and 'error' come later. NMS's own error
// handler logs and exits 1: the parent gets the reason instead.
const tcp = server.rtmpServer.tcpServer as Server | undefined;
if (tcp === undefined || typeof tcp.removeAllListeners !== 'function') throw new Error('node-media-server has no RTMP listener (rtmpServer.tcpServer)');
tcp.removeAllListeners('error');
tcp.on('error', (err: NodeJS.ErrnoException) => die(EXIT_LISTEN, { type: 'listen-failed', code: err.code ?? 'ERROR', message: err.message }));
tcp.once('listening', () => send({ type: 'ready', port: (tcp.address() as AddressInfo).port }));
await running;

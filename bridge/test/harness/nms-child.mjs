// Runs node-media-server in its own process: its Context is a process-wide singleton and it
// calls process.exit() when a port cannot be bound. Usage: node nms-child.mjs '<config JSON>'
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const NodeMediaServer = require('node-media-server');
const Context = require('node-media-server/src/core/context.js');

const { publishGraceMs, ...config } = JSON.parse(process.argv[2] ?? '{}');
const server = new NodeMediaServer(config, '');
// NMS 4.4 keeps a publish alive for 30 s after its publisher disconnects, so that the same
// client (same address) can resume it; only then does it end the stream and close the recording.
if (typeof publishGraceMs === 'number') {
  server.on('postPublish', (session) => {
    const broadcast = Context.broadcasts.get(session.streamPath);
    if (broadcast) broadcast.publishGraceMs = publishGraceMs;
  });
}
// The parent learns through the IPC channel when a recording is complete, instead of polling.
// NMS emits doneRecord when it starts closing the file; the bytes are on disk only at 'close'.
server.on('doneRecord', (session) => {
  const done = () => process.send?.({ event: 'doneRecord', streamPath: session.streamPath, filePath: session.filePath });
  if (session.fileStream.closed) done();
  else session.fileStream.once('close', done);
});
await server.run();

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.stop();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

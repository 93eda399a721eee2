import { createServer, type Server } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { startNginxRtmp } from '../../test/harness/nginx.js';
import { startNodeMediaServer } from '../../test/harness/nms.js';
import { RtmpPublisher } from './publisher.js';
import { failure } from '../../../shared/src/testing/async.js';

// Real servers refusing a publish: a refusal the server states ends with its own code
// (RTMP_PUBLISH_BADNAME, RTMP_PUBLISH_FAILED) and the server's words, key redacted, so a relay can
// tell it from a lost connection. (nginx-rtmp's "Already publishing" BadName is in
// rtmp-nginx.test.ts.)

const http: Server[] = [];
afterAll(() => Promise.all(http.map((s) => new Promise((r) => s.close(r)))));

describe('publish refusals from real servers', () => {
  it('nginx-rtmp whose on_publish hook refuses the key (HTTP 403) closes before Publish.Start: RTMP_PUBLISH_FAILED', async () => {
    const asked: string[] = [];
    const hook = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        asked.push(new URLSearchParams(body).get('name') ?? '');
        res.writeHead(403).end();
      });
    });
    http.push(hook);
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const port = (hook.address() as { port: number }).port;
    const nginx = await startNginxRtmp({ record: false, liveDirectives: `on_publish http://127.0.0.1:${port}/publish;` });
    try {
      const err = await failure(RtmpPublisher.connect(nginx.url('live', 'sekret-key')));
      expect(err).toMatchObject({
        code: 'RTMP_PUBLISH_FAILED',
        message: `rtmp://127.0.0.1:${nginx.rtmpPort}/live/***: server closed the connection before NetStream.Publish.Start: is the stream name or key right?`,
      });
      expect(asked).toEqual(['sekret-key']);
    } finally {
      await nginx.dispose();
    }
  });

  it('node-media-server answers a second publisher of a name with Publish.Start and closes at once: the message says what that may be; the first carries on', async () => {
    const nms = await startNodeMediaServer({ publishGraceMs: 0 });
    try {
      const first = await RtmpPublisher.connect(nms.url('live', 'sekret-twice'));
      const second = await RtmpPublisher.connect(nms.url('live', 'sekret-twice'));
      const err = await failure(second.closed);
      // Nothing tells this refusal from a connection lost at that moment but its timing.
      expect(err).toMatchObject({
        code: 'RTMP_CONNECTION_LOST',
        message: expect.stringMatching(
          /^rtmp:\/\/127\.0\.0\.1:\d+\/live\/\*\*\*: server closed the connection \d+ ms after NetStream\.Publish\.Start \(node-media-server does so when the name is already being published or the key is refused\)$/,
        ),
      });
      // The first publisher's session is untouched: it still writes and ends cleanly.
      first.write({ type: 18, timestamp: 0, data: new Uint8Array([0x02, 0x00, 0x01, 0x78]) });
      await first.end();
    } finally {
      await nms.stop();
    }
  });
});

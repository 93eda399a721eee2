import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ffmpegPublish } from '../../test/harness/ffmpeg.js';
import { shortFlv } from '../../test/harness/fixtures.js';
import { freePort, waitForPort } from '../../test/harness/ports.js';
import { spawnTracked, waitFor } from '../../test/harness/proc.js';
import { ONAIR_BIN, runOnair } from '../../test/harness/run.js';
import { SERVE_HELP, parseServeArgs } from '../serve.js';

describe('onair serve options', () => {
  it('documents every option and environment variable it reads', async () => {
    const help = await runOnair(['serve', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout.toString()).toBe(SERVE_HELP);
    for (const word of ['--host', '--port', '--token', '--allow-private-destinations', '--allow-origin', '--local-rtmp-port', '--local-rtmp-host', '--no-local-rtmp', '--web-root', '--verbose', '--resume-grace', '--resend-buffer', '--max-sessions', '--max-sessions-per-client', '--max-viewers', '--max-viewers-per-client', '--max-upstreams',
      '--tls-cert', '--tls-key', '--public-url', '--trusted-proxy',
      'ONAIR_TLS_CERT', 'ONAIR_TLS_KEY', 'ONAIR_PUBLIC_URL', 'ONAIR_TRUSTED_PROXY',
      'ONAIR_HOST', 'ONAIR_PORT', 'ONAIR_TOKEN', 'ONAIR_ALLOW_PRIVATE', 'ONAIR_ALLOW_ORIGIN', 'ONAIR_LOCAL_RTMP_PORT', 'ONAIR_LOCAL_RTMP_HOST', 'ONAIR_NO_LOCAL_RTMP', 'ONAIR_WEB_ROOT', 'ONAIR_VERBOSE', 'ONAIR_RESUME_GRACE', 'ONAIR_RESEND_BUFFER', 'ONAIR_MAX_SESSIONS', 'ONAIR_MAX_SESSIONS_PER_CLIENT', 'ONAIR_MAX_VIEWERS', 'ONAIR_MAX_VIEWERS_PER_CLIENT', 'ONAIR_MAX_UPSTREAMS']) {
      expect(SERVE_HELP).toContain(word);
    }
  });

  it('takes options over environment variables, with loopback defaults', () => {
    expect(parseServeArgs([], {})).toMatchObject({ host: '127.0.0.1', port: 8080, token: undefined, localRtmpPort: 1935, allowPrivate: undefined, verbose: false });
    const env = { ONAIR_HOST: '0.0.0.0', ONAIR_PORT: '9000', ONAIR_TOKEN: 't', ONAIR_LOCAL_RTMP_PORT: '1940', ONAIR_ALLOW_PRIVATE: '1', ONAIR_ALLOW_ORIGIN: 'https://a, https://b' };
    expect(parseServeArgs([], env)).toMatchObject({ host: '0.0.0.0', port: 9000, token: 't', localRtmpPort: 1940, allowPrivate: true, allowOrigins: ['https://a', 'https://b'] });
    expect(parseServeArgs(['--port', '0', '--no-local-rtmp', '--host', '::1'], env)).toMatchObject({ host: '::1', port: 0, localRtmpPort: undefined });
    expect(parseServeArgs([], {})).toMatchObject({ localRtmpHost: '127.0.0.1' });
    expect(parseServeArgs(['--local-rtmp-host', '::'], { ONAIR_LOCAL_RTMP_HOST: '0.0.0.0' })).toMatchObject({ localRtmpHost: '::' });
    expect(parseServeArgs([], { ONAIR_LOCAL_RTMP_HOST: '0.0.0.0' })).toMatchObject({ localRtmpHost: '0.0.0.0' });
    expect(() => parseServeArgs(['--port', '70000'], {})).toThrow(/not a port number/);
    expect(parseServeArgs([], {})).toMatchObject({ resumeGraceMs: 30_000, resendBufferMs: 15_000, maxSessions: 16, maxSessionsPerClient: 4, maxViewers: 2000, maxViewersPerClient: 20, maxUpstreams: 64 });
    expect(parseServeArgs(['--resume-grace', '5', '--resend-buffer', '2.5', '--max-sessions', '3'], { ONAIR_MAX_SESSIONS_PER_CLIENT: '1' })).toMatchObject({ resumeGraceMs: 5000, resendBufferMs: 2500, maxSessions: 3, maxSessionsPerClient: 1 });
    expect(() => parseServeArgs(['--resume-grace', 'soon'], {})).toThrow(/not a number of seconds/);
    expect(() => parseServeArgs(['--max-sessions', '0'], {})).toThrow(/whole number/);
    expect(parseServeArgs([], {})).toMatchObject({ tlsCert: undefined, tlsKey: undefined, publicUrl: undefined, trustedProxies: [] });
    const proxied = { ONAIR_TLS_CERT: 'c.pem', ONAIR_TLS_KEY: 'k.pem', ONAIR_PUBLIC_URL: 'https://live.example.com', ONAIR_TRUSTED_PROXY: '127.0.0.1, 10.0.0.0/8' };
    expect(parseServeArgs([], proxied)).toMatchObject({ tlsCert: 'c.pem', tlsKey: 'k.pem', publicUrl: 'https://live.example.com', trustedProxies: ['127.0.0.1', '10.0.0.0/8'] });
    expect(parseServeArgs(['--trusted-proxy', '::1', '--trusted-proxy', '10.1.0.0/16', '--tls-cert', 'a', '--tls-key', 'b'], proxied)).toMatchObject({ tlsCert: 'a', tlsKey: 'b', trustedProxies: ['::1', '10.1.0.0/16'] });
    expect(() => parseServeArgs(['--tls-key', 'k.pem'], {})).toThrow(/go together/);
  });
});

describe('onair serve process', () => {
  it('serves the studio, runs the embedded RTMP server quietly, and exits 0 on SIGTERM', async () => {
    const [port, rtmpPort] = [await freePort(), await freePort()];
    const child = spawnTracked(process.execPath, [ONAIR_BIN, 'serve', '--port', String(port), '--local-rtmp-port', String(rtmpPort)], { keepLines: 200 });
    try {
      await waitForPort(port, 60_000);
      await waitFor('URL printed', () => (child.tail().includes(`http://127.0.0.1:${port}/`) ? true : undefined));
      const config = (await (await fetch(`http://127.0.0.1:${port}/api/config`)).json()) as { localRtmp: { url: string; key: string } };
      expect(config.localRtmp.url).toBe(`rtmp://127.0.0.1:${rtmpPort}/live`);
      expect(config.localRtmp.key).toMatch(/^[0-9a-f]{12}$/);
      // The embedded server takes a real publisher (ffmpeg) …
      await ffmpegPublish(await shortFlv(), `${config.localRtmp.url}/cli-test`);
      // … and stays silent about it: our lines only, and never the key.
      expect(child.tail()).not.toMatch(/Node-Media-Server|\[INFO\]/);
      expect(child.tail()).not.toContain(config.localRtmp.key);
    } finally {
      const exit = await child.stop('SIGTERM', 10_000);
      expect(exit.code).toBe(0);
    }
    expect(child.tail()).toMatch(/shutting down/);
  });

  it('--verbose passes the embedded server\'s log through with stream keys redacted', async () => {
    const [port, rtmpPort] = [await freePort(), await freePort()];
    const child = spawnTracked(process.execPath, [ONAIR_BIN, 'serve', '--verbose', '--port', String(port), '--local-rtmp-port', String(rtmpPort)], { keepLines: 400 });
    try {
      await waitForPort(port, 60_000);
      await ffmpegPublish(await shortFlv(), `rtmp://127.0.0.1:${rtmpPort}/live/verbose-secret-key`);
      await waitFor('the publish in the log', () => (/local RTMP: .*start push \/live\/\*\*\*/.test(child.tail()) ? true : undefined));
      expect(child.tail()).toMatch(/local RTMP: .*Node-Media-Server/);
      expect(child.tail()).not.toContain('verbose-secret-key');
    } finally {
      expect((await child.stop('SIGTERM', 10_000)).code).toBe(0);
    }
  });

  it('fails politely when the local RTMP port is taken or a public bind has no token', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const busyPort = (busy.address() as { port: number }).port;
    try {
      const taken = await runOnair(['serve', '--port', '0', '--local-rtmp-port', String(busyPort)]);
      expect(taken.code).toBe(1);
      expect(taken.stderr).toMatch(/PORT_IN_USE/);
    } finally {
      busy.close();
    }
    const open = await runOnair(['serve', '--port', '0', '--host', '0.0.0.0', '--no-local-rtmp'], { env: { ONAIR_TOKEN: '' } });
    expect(open.code).toBe(1);
    expect(open.stderr).toMatch(/requires a token/);
  });
});

import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lateTimestampFlv, REPO_ROOT, shortFlv } from './harness/fixtures.js';
import { comparePackets, framemd5 } from './harness/judge.js';
import { startNginxRtmp, type NginxRtmp } from './harness/nginx.js';
import { startNodeMediaServer, type NodeMediaServerHandle } from './harness/nms.js';
import { startChaosProxy, type ChaosProxy } from './harness/proxy.js';
import { ffmpegPublish } from './harness/ffmpeg.js';
import { KEEP_TEMP_ENV, makeTempDir, removeTempDir, spawnTracked, waitFor } from './harness/proc.js';
import { makeTestCertificates, type TestCertificates } from './harness/tls.js';

// The harness judged against ffmpeg, a publisher we did not write: if these fail, the onair
// tests' verdicts mean nothing.
describe('test harness, with ffmpeg as the publisher', () => {
  let nginx: NginxRtmp;
  let certs: TestCertificates;
  let work: string;
  beforeAll(async () => {
    certs = await makeTestCertificates();
    nginx = await startNginxRtmp({ stat: true, tlsTerminator: { cert: certs.cert, key: certs.key } });
    work = makeTempDir('onair-harness-');
  });
  afterAll(async () => {
    await nginx?.dispose();
    certs?.dispose();
    if (work) removeTempDir(work);
  });

  it('nginx-rtmp records exactly what ffmpeg published, and the judge sees a flipped byte', async () => {
    const source = await shortFlv();
    await ffmpegPublish(source, nginx.url('live', 'ffmpeg1'));
    const recorded = await nginx.recordingDone('ffmpeg1');
    const expected = await framemd5(source);
    const cmp = comparePackets(expected, await framemd5(recorded), 'exact');
    expect(cmp.equal, cmp.summary).toBe(true);
    expect(expected.packets.length).toBeGreaterThan(300);

    // One payload byte changed in the middle of the file: the judge must name it.
    const corrupt = join(work, 'corrupt.flv');
    copyFileSync(recorded, corrupt);
    const fd = openSync(corrupt, 'r+');
    const at = Math.floor(statSync(corrupt).size / 2);
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, at);
    byte[0] = (byte[0] ?? 0) ^ 0x01;
    writeSync(fd, byte, 0, 1, at);
    closeSync(fd);
    const bad = comparePackets(expected, await framemd5(corrupt), 'exact');
    expect(bad.equal).toBe(false);
    expect(bad.summary).toMatch(/packet \d+: payload/);
  });

  it('keeps timestamps past 0xFFFFFF ms through nginx-rtmp', async () => {
    const source = await lateTimestampFlv();
    const expected = await framemd5(source);
    expect(Math.max(...expected.packets.map((p) => p.dts))).toBeGreaterThan(0xffffff);
    await ffmpegPublish(source, nginx.url('live', 'late'), { copyts: true });
    const cmp = comparePackets(expected, await framemd5(await nginx.recordingDone('late')), 'exact');
    expect(cmp.equal, cmp.summary).toBe(true);
  });

  it('reaches nginx through the TLS terminator and reports publishers on the stat page', async () => {
    const source = await shortFlv();
    const publishing = ffmpegPublish(source, nginx.rtmpsUrl('live', 'tls1'), { realtime: true });
    await waitFor('ffmpeg to publish through the terminator', async () => ((await nginx.isPublishing('live', 'tls1')) ? true : undefined));
    await publishing;
    expect(await nginx.isPublishing('live', 'tls1')).toBe(false);
    const cmp = comparePackets(await framemd5(source), await framemd5(await nginx.recordingDone('tls1')), 'exact');
    expect(cmp.equal, cmp.summary).toBe(true);
  });
});

describe('node-media-server harness', () => {
  let nms: NodeMediaServerHandle;
  beforeAll(async () => {
    nms = await startNodeMediaServer({ record: true, publishGraceMs: 0 });
  });
  afterAll(async () => {
    await nms?.stop();
  });

  it('node-media-server records exactly what ffmpeg published', async () => {
    const source = await shortFlv();
    await ffmpegPublish(source, nms.url('live', 'ffmpeg2'));
    const recording = await nms.recordingDone('live', 'ffmpeg2');
    expect(nms.recordings('live', 'ffmpeg2')).toEqual([recording]);
    const cmp = comparePackets(await framemd5(source), await framemd5(recording), 'exact');
    expect(cmp.equal, `${cmp.summary}\n${nms.tail()}`).toBe(true);
  });
});

// What a test process leaves behind when it ends without disposing: an uncaught error, a
// runner's process.exit() or SIGTERM. The harness runs here as a plain Node process, so it is
// transpiled to JavaScript inside the repository (its imports must resolve).
describe('harness cleanup when the test process ends', () => {
  let copy: string;
  beforeAll(() => {
    copy = join(REPO_ROOT, 'node_modules', '.cache', `onair-harness-cleanup-${process.pid}`);
    mkdirSync(copy, { recursive: true });
    for (const name of readdirSync(join(REPO_ROOT, 'bridge', 'test', 'harness'))) {
      if (!name.endsWith('.ts')) continue;
      const source = readFileSync(join(REPO_ROOT, 'bridge', 'test', 'harness', name), 'utf8');
      const { outputText } = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
      writeFileSync(join(copy, name.replace(/\.ts$/, '.js')), outputText);
    }
    writeFileSync(
      join(copy, 'leaver.mjs'),
      [
        "import { startNginxRtmp } from './nginx.js';",
        'const nginx = await startNginxRtmp();',
        "process.stdout.write(JSON.stringify({ prefix: nginx.prefix }) + '\\n');",
        "const how = process.argv[2];",
        "if (how === 'exit') process.exit(3);",
        "if (how === 'throw') throw new Error('a failing test');",
        'setInterval(() => undefined, 1000);',
      ].join('\n'),
    );
  });
  afterAll(() => {
    if (copy) rmSync(copy, { recursive: true, force: true });
  });

  /** Runs leaver.mjs, ends it `how`, and returns the prefix it made and whether nginx still runs there. */
  async function leave(how: 'exit' | 'throw' | 'SIGTERM', env: NodeJS.ProcessEnv = process.env): Promise<{ prefix: string; nginxLeft: boolean }> {
    const child = spawnTracked(process.execPath, [join(copy, 'leaver.mjs'), how], { env, captureStdout: true });
    const prefix = await waitFor('the child to start nginx', () => {
      const line = child.stdout().toString('utf8').split('\n')[0];
      return line && line.endsWith('}') ? (JSON.parse(line) as { prefix: string }).prefix : undefined;
    }, 20_000);
    if (how === 'SIGTERM') child.process.kill('SIGTERM');
    const exit = await child.exited;
    expect(exit.code ?? exit.signal, child.tail()).toBe(how === 'exit' ? 3 : how === 'throw' ? 1 : 'SIGTERM');
    // nginx runs with `-p <prefix>`: look for it among the live processes.
    const nginxAlive = (): boolean =>
      readdirSync('/proc').some((pid) => {
        if (!/^\d+$/.test(pid)) return false;
        try {
          const status = readFileSync(`/proc/${pid}/status`, 'utf8');
          return !/^State:\s+Z/m.test(status) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(prefix);
        } catch {
          return false;
        }
      });
    const nginxLeft = await waitFor('nginx to die', () => (nginxAlive() ? undefined : false), 5_000).catch(() => true);
    return { prefix, nginxLeft };
  }

  it.each(['exit', 'throw', 'SIGTERM'] as const)('removes nginx and its prefix on %s', async (how) => {
    const { prefix, nginxLeft } = await leave(how);
    expect(prefix).toMatch(/onair-nginx-/);
    expect(nginxLeft).toBe(false);
    expect(existsSync(prefix)).toBe(false);
  });

  it(`keeps the prefix with ${KEEP_TEMP_ENV}=1, and a recording timeout quotes the error log`, async () => {
    const { prefix } = await leave('exit', { ...process.env, [KEEP_TEMP_ENV]: '1' });
    try {
      expect(existsSync(join(prefix, 'nginx.conf'))).toBe(true);
    } finally {
      rmSync(prefix, { recursive: true, force: true });
    }
    const nginx = await startNginxRtmp();
    try {
      await expect(nginx.recordingDone('never-published', 200)).rejects.toThrow(/never created\)\nnginx error log, last lines:\n.+/);
    } finally {
      await nginx.dispose();
    }
    expect(existsSync(nginx.prefix)).toBe(false);
  });
});

describe('chaos proxy', () => {
  /** An echo server, and a client through the proxy that collects what comes back. */
  async function echoThroughProxy(): Promise<{ proxy: ChaosProxy; client: Socket; got: () => string; close: () => Promise<void> }> {
    const echo = createServer((s) => {
      s.on('error', () => undefined);
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    const proxy = await startChaosProxy((echo.address() as AddressInfo).port);
    const client = createConnection({ host: '127.0.0.1', port: proxy.port });
    client.on('error', () => undefined);
    let text = '';
    client.on('data', (d: Buffer) => (text += d.toString()));
    await new Promise((r) => client.once('connect', r));
    return {
      proxy,
      client,
      got: () => text,
      close: async () => {
        client.destroy();
        await proxy.close();
        await new Promise((r) => echo.close(r));
      },
    };
  }

  it('passes bytes, holds them through a blackhole and delivers them after it, in order', async () => {
    const t = await echoThroughProxy();
    try {
      t.client.write('a');
      await waitFor('echo', () => (t.got() === 'a' ? true : undefined));
      const hole = t.proxy.blackhole(400);
      await new Promise((r) => setTimeout(r, 50));
      t.client.write('b');
      await new Promise((r) => setTimeout(r, 200));
      expect(t.got()).toBe('a');
      await hole;
      await waitFor('the held byte', () => (t.got() === 'ab' ? true : undefined));
    } finally {
      await t.close();
    }
  });

  it('releases the target’s bytes in bursts', async () => {
    const t = await echoThroughProxy();
    try {
      t.proxy.burst(300);
      const sentAt = Date.now();
      t.client.write('x');
      await waitFor('the burst', () => (t.got() === 'x' ? true : undefined));
      expect(Date.now() - sentAt).toBeGreaterThanOrEqual(100);
      t.proxy.burst(0);
    } finally {
      await t.close();
    }
  });

  it('resets open connections and refuses new ones for a while', async () => {
    const t = await echoThroughProxy();
    try {
      const closed = new Promise<string>((resolve) => {
        t.client.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
        t.client.once('close', () => resolve('close'));
      });
      const refusal = t.proxy.reset(500);
      expect(await closed).toBe('ECONNRESET');
      const during = createConnection({ host: '127.0.0.1', port: t.proxy.port });
      const duringEnd = await new Promise<string>((resolve) => {
        during.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
        during.once('close', () => resolve('close'));
      });
      expect(duringEnd).toBe('ECONNRESET');
      await refusal;
      expect(t.proxy.accepted).toBe(1);
      const after = createConnection({ host: '127.0.0.1', port: t.proxy.port });
      after.on('error', () => undefined);
      await new Promise((r) => after.once('connect', r));
      await waitFor('accepted again', () => (t.proxy.accepted === 2 ? true : undefined));
      after.destroy();
    } finally {
      await t.close();
    }
  });
});

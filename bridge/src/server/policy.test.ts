import type { IncomingMessage } from 'node:http';
import { createServer, isIP, type LookupFunction, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { OnairError } from '@onair/shared';
import { RtmpPublisher } from '../rtmp/publisher.js';
import { ServerPolicy, isLoopbackHost, isNonPublicAddress } from './policy.js';

function req(url: string, headers: Record<string, string>): IncomingMessage {
  return { url, headers } as unknown as IncomingMessage;
}

async function refused(policy: ServerPolicy, url: string): Promise<string> {
  try {
    await policy.isAllowed(url);
  } catch (err) {
    expect((err as OnairError).code).toBe('DESTINATION_REFUSED');
    return (err as Error).message;
  }
  throw new Error(`${url} was allowed`);
}

describe('address classes', () => {
  it.each([
    '127.0.0.1', '127.255.0.9', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254',
    '100.64.0.1', '100.127.255.255', '0.0.0.0', '0.1.2.3', '224.0.0.1', '255.255.255.255', '198.18.0.1', '192.0.0.8',
    '::1', '::', 'fe80::1', 'fe80::1%eth0', 'febf::1', 'fd12:3456::1', 'fc00::1', 'ff02::1', '100::1',
    // IPv4 inside IPv6: mapped (dotted, and hex as the URL parser writes it), translated, compatible, NAT64, 6to4.
    '::ffff:127.0.0.1', '::ffff:10.0.0.1', '::ffff:7f00:1', '::FFFF:A9FE:A9FE', '::ffff:0:127.0.0.1', '::127.0.0.1', '::8.8.8.8',
    '64:ff9b::127.0.0.1', '64:ff9b::a9fe:a9fe', '64:ff9b:1::8.8.8.8', '2002:7f00:1::1', '2002:c0a8:101::',
  ])('%s is not public', (ip) => {
    expect(isNonPublicAddress(ip)).toBe(true);
  });

  it.each([
    '8.8.8.8', '172.32.0.1', '172.15.255.255', '100.128.0.1', '100.63.255.255', '1.1.1.1', '2001:4860:4860::8888', '::ffff:8.8.8.8',
    '::ffff:808:808', '64:ff9b::8.8.8.8', '2002:808:808::1', 'fec0::1', '2001:db8::1',
  ])('%s is public', (ip) => {
    expect(isNonPublicAddress(ip)).toBe(false);
  });

  it('knows loopback listen addresses and names', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', 'studio.localhost', '::1', '[::1]']) expect(isLoopbackHost(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.10', 'example.com', 'localhost.example.com']) expect(isLoopbackHost(h)).toBe(false);
  });
});

describe('ServerPolicy on loopback', () => {
  const policy = new ServerPolicy({ host: '127.0.0.1' });

  it('serves the local user without a token, any destination allowed', async () => {
    expect(policy.checkRequest(req('/', { host: '127.0.0.1:8080' }))).toEqual({ ok: true });
    expect(policy.checkRequest(req('/', { host: 'localhost:8080' }))).toEqual({ ok: true });
    await policy.isAllowed('rtmp://127.0.0.1:1935/live/key');
  });

  it('refuses other Host names (DNS rebinding) and foreign WebSocket origins', () => {
    expect(policy.checkRequest(req('/', { host: 'evil.example:8080' }))).toMatchObject({ ok: false, status: 403 });
    expect(policy.checkUpgrade(req('/studio-ws', { host: '127.0.0.1:8080', origin: 'https://evil.example' }))).toMatchObject({ ok: false, status: 403 });
    expect(policy.checkUpgrade(req('/studio-ws', { host: '127.0.0.1:8080', origin: 'http://127.0.0.1:8080' }))).toEqual({ ok: true });
    expect(policy.checkUpgrade(req('/studio-ws', { host: '127.0.0.1:8080', origin: 'null' }))).toMatchObject({ ok: false, status: 403 });
  });

  it('still refuses what is not RTMP', async () => {
    await refused(policy, 'http://127.0.0.1/');
    await refused(policy, 'not a url');
  });
});

describe('ServerPolicy: requests from other sites', () => {
  const policy = new ServerPolicy({ host: '127.0.0.1', allowedOrigins: ['https://studio.example'] });
  const own = 'http://127.0.0.1:8080';
  const at = (url: string, headers: Record<string, string> = {}): IncomingMessage => req(url, { host: '127.0.0.1:8080', ...headers });
  const refusedBy = (header: RegExp) => expect.objectContaining({ ok: false, status: 403, reason: expect.stringMatching(header) as string });

  // What browsers send: Origin on WebSockets and CORS fetches, Sec-Fetch-Site on everything
  // (Chromium, Firefox, Safari 16.4+); players and scripts send neither.
  const crossSite = [
    { origin: 'https://evil.example' },
    { origin: 'http://127.0.0.1:8081' },
    { origin: 'http://localhost:8080' },
    { origin: 'null' },
    { origin: 'not a url' },
    { 'sec-fetch-site': 'cross-site' },
    { 'sec-fetch-site': 'same-site' },
    { origin: own, 'sec-fetch-site': 'cross-site' },
    { origin: 'https://evil.example', 'sec-fetch-site': 'same-origin' },
  ];
  const sameSite = [{}, { origin: own }, { 'sec-fetch-site': 'same-origin' }, { 'sec-fetch-site': 'none' }, { origin: own, 'sec-fetch-site': 'same-origin' }];

  it('decides by Origin and Sec-Fetch-Site', () => {
    for (const headers of crossSite) expect(policy.checkSite(at('/', headers)), JSON.stringify(headers)).toMatchObject({ ok: false, status: 403 });
    for (const headers of sameSite) expect(policy.checkSite(at('/', headers)), JSON.stringify(headers)).toEqual({ ok: true });
    expect(policy.checkSite(at('/', { origin: 'https://evil.example' }))).toEqual(refusedBy(/origin https:\/\/evil\.example refused.*--allow-origin/));
    expect(policy.checkSite(at('/', { 'sec-fetch-site': 'same-site' }))).toEqual(refusedBy(/another site.*Sec-Fetch-Site: same-site/));
    expect(policy.checkSite(req('/', { origin: 'null' }))).toMatchObject({ ok: false, status: 403 });
  });

  it('lets a listed origin through, whatever Sec-Fetch-Site says', () => {
    expect(policy.checkSite(at('/', { origin: 'https://studio.example', 'sec-fetch-site': 'cross-site' }))).toEqual({ ok: true });
    expect(policy.checkSite(at('/', { origin: 'HTTPS://Studio.Example' }))).toEqual({ ok: true });
    expect(policy.checkSite(at('/', { origin: 'https://studio.example:444' }))).toMatchObject({ ok: false });
    // A navigation carries no Origin: a listed site's links to sources are refused like any other's.
    expect(policy.checkSite(at('/', { 'sec-fetch-site': 'cross-site' }))).toMatchObject({ ok: false });
  });

  it('applies to every request that opens an RTMP session and every WebSocket, not to pages and files', () => {
    const opening = ['/flv?src=rtmp%3A%2F%2F192.168.1.1%2Flive%2Fx', '/flv', '/live/x.flv', '/LIVE/X.FLV', '/watch?src=rtmp://10.0.0.1/live/x', '/watch/live/x?src=rtmp://h/a/b', '/?src=rtmp://h/a/b'];
    const harmless = ['/', '/watch/live/x', '/assets/index-1.js', '/api/config', '/metrics', '/watch?latency=0.3'];
    for (const headers of crossSite) {
      for (const url of opening) expect(policy.checkRequest(at(url, headers)), `${url} ${JSON.stringify(headers)}`).toMatchObject({ ok: false, status: 403 });
      for (const url of harmless) expect(policy.checkRequest(at(url, headers)), `${url} ${JSON.stringify(headers)}`).toEqual({ ok: true });
      for (const url of ['/studio-ws', '/watch-ws/live/x', '/watch-ws?src=rtmp://h/a/b']) expect(policy.checkUpgrade(at(url, headers))).toMatchObject({ ok: false, status: 403 });
    }
    for (const headers of sameSite) {
      for (const url of [...opening, ...harmless]) expect(policy.checkRequest(at(url, headers))).toEqual({ ok: true });
      for (const url of ['/studio-ws', '/watch-ws/live/x', '/watch-ws?src=rtmp://h/a/b']) expect(policy.checkUpgrade(at(url, headers))).toEqual({ ok: true });
    }
  });

  it('with a token, both checks apply: the token first', () => {
    const guarded = new ServerPolicy({ host: '0.0.0.0', token: 'tok' });
    const host = { host: '203.0.113.5:8080' };
    expect(guarded.checkRequest(req('/live/x.flv', { ...host, 'sec-fetch-site': 'cross-site' }))).toMatchObject({ ok: false, status: 401 });
    expect(guarded.checkRequest(req('/live/x.flv?token=tok', { ...host, 'sec-fetch-site': 'cross-site' }))).toMatchObject({ ok: false, status: 403 });
    expect(guarded.checkRequest(req('/live/x.flv?token=tok', host))).toEqual({ ok: true });
    expect(guarded.checkUpgrade(req('/watch-ws/live/x', { ...host, authorization: 'Bearer tok', origin: 'https://evil.example' }))).toMatchObject({ ok: false, status: 403 });
  });
});

describe('ServerPolicy: the token cookie', () => {
  const policy = new ServerPolicy({ host: '0.0.0.0', token: 'a b;c' });
  const withSocket = (url: string, encrypted: boolean): IncomingMessage => ({ url, headers: {}, socket: { encrypted } }) as unknown as IncomingMessage;

  it('is set only when the token came in the query: HttpOnly, SameSite=Strict, Path=/, Secure over TLS', () => {
    expect(policy.tokenCookie(withSocket('/', false))).toBeUndefined();
    expect(policy.tokenCookie(withSocket('/?token=a%20b%3Bc', false))).toBe('onair_token=a%20b%3Bc; Path=/; HttpOnly; SameSite=Strict');
    expect(policy.tokenCookie(withSocket('/watch/live/x?token=x', true))).toBe('onair_token=a%20b%3Bc; Path=/; HttpOnly; SameSite=Strict; Secure');
    expect(new ServerPolicy({ host: '127.0.0.1' }).tokenCookie(withSocket('/?token=x', false))).toBeUndefined();
  });
});

describe('ServerPolicy beyond loopback', () => {
  it('will not start without a token', () => {
    expect(() => new ServerPolicy({ host: '0.0.0.0' })).toThrow(expect.objectContaining({ code: 'TOKEN_REQUIRED' }) as Error);
    expect(() => new ServerPolicy({ host: '0.0.0.0', token: '' })).toThrow(/requires a token/);
  });

  const policy = new ServerPolicy({ host: '0.0.0.0', token: 's3cret-token', allowedOrigins: ['https://studio.example'] });
  const host = { host: '203.0.113.5:8080' };

  it('checks the token from the query, a bearer header or the cookie', () => {
    expect(policy.checkRequest(req('/', host))).toMatchObject({ ok: false, status: 401 });
    expect(policy.checkRequest(req('/?token=wrong', host))).toMatchObject({ ok: false, status: 401 });
    expect(policy.checkRequest(req('/?token=s3cret-token', host))).toEqual({ ok: true });
    expect(policy.checkRequest(req('/', { ...host, authorization: 'Bearer s3cret-token' }))).toEqual({ ok: true });
    expect(policy.checkRequest(req('/', { ...host, cookie: 'a=b; onair_token=s3cret-token' }))).toEqual({ ok: true });
    expect(policy.checkRequest(req('/', { ...host, cookie: 'onair_token=s3cret-tokenX' }))).toMatchObject({ ok: false });
  });

  it('checks the Origin of WebSockets: same origin or listed', () => {
    const withToken = { ...host, cookie: 'onair_token=s3cret-token' };
    expect(policy.checkUpgrade(req('/studio-ws', { ...withToken, origin: 'http://203.0.113.5:8080' }))).toEqual({ ok: true });
    expect(policy.checkUpgrade(req('/studio-ws', { ...withToken, origin: 'https://studio.example' }))).toEqual({ ok: true });
    expect(policy.checkUpgrade(req('/studio-ws', { ...withToken, origin: 'https://evil.example' }))).toMatchObject({ ok: false, status: 403 });
    expect(policy.checkUpgrade(req('/studio-ws', { ...host, origin: 'http://203.0.113.5:8080' }))).toMatchObject({ ok: false, status: 401 });
  });

  it('refuses loopback, private and link-local destinations, by literal and by name', async () => {
    expect(await refused(policy, 'rtmp://127.0.0.1:1935/live/key')).toMatch(/--allow-private-destinations/);
    await refused(policy, 'rtmp://10.0.0.8/live/key');
    await refused(policy, 'rtmps://[::1]:443/live/key');
    await refused(policy, 'rtmp://169.254.169.254/latest/meta-data');
    await refused(policy, 'rtmp://localhost/live/key');
    await refused(policy, 'rtmp://[::ffff:127.0.0.1]/live/key');
    await refused(policy, 'rtmp://[fe80::1]/live/key');
    await refused(policy, 'rtmp://2130706433/live/key');
    await refused(policy, 'rtmp://0x7f.1/live/key');
    await policy.isAllowed('rtmp://8.8.8.8/app/key');
    await policy.isAllowed('rtmps://[2001:4860:4860::8888]:443/app/key');
  });

  it('a name that never resolves: RTMP_DNS_TIMEOUT after 5 s, not a refusal (a relay may retry it)', async () => {
    const names: string[] = [];
    const never: LookupFunction = (hostname) => void names.push(hostname);
    const slow = new ServerPolicy({ host: '0.0.0.0', token: 't', lookup: never });
    const t0 = performance.now();
    const err = await slow.isAllowed('rtmp://studio.onair.test/live/key').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'RTMP_DNS_TIMEOUT', message: 'studio.onair.test did not resolve within 5000 ms' });
    expect(performance.now() - t0).toBeGreaterThan(4900);
    expect(names).toEqual(['studio.onair.test']);
  });

  it('lets private destinations through when told to', async () => {
    const open = new ServerPolicy({ host: '0.0.0.0', token: 't', allowPrivateDestinations: true });
    await open.isAllowed('rtmp://127.0.0.1/live/key');
  });
});

/** A name whose DNS answer changes between calls, as a rebinding attacker's server makes it. */
function rebinding(...answers: string[]): { lookup: LookupFunction; calls: () => number } {
  let calls = 0;
  const lookup: LookupFunction = (_hostname, options, callback) => {
    const address = answers[Math.min(calls++, answers.length - 1)] ?? '';
    const family = isIP(address);
    setImmediate(() => (options.all ? callback(null, [{ address, family }]) : callback(null, address, family)));
  };
  return { lookup, calls: () => calls };
}

describe('ServerPolicy at connect time (DNS rebinding)', () => {
  const servers: Server[] = [];
  afterEach(() => Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r)))));

  /** Stands in for a service on this host that must stay out of reach. */
  async function localService(): Promise<{ port: number; connections: () => number }> {
    let n = 0;
    const server = createServer((s) => {
      n++;
      s.destroy();
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { port: (server.address() as { port: number }).port, connections: () => n };
  }

  async function connectFailure(url: string, policy: ServerPolicy): Promise<OnairError> {
    try {
      await RtmpPublisher.connect(url, { ...policy.connectOptions(), connectTimeoutMs: 3000 });
    } catch (err) {
      return err as OnairError;
    }
    throw new Error(`${url} connected`);
  }

  it('refuses a name that passed isAllowed on a public answer and then resolves to 127.0.0.1', async () => {
    const service = await localService();
    const dns = rebinding('8.8.8.8', '127.0.0.1');
    const policy = new ServerPolicy({ host: '0.0.0.0', token: 't', lookup: dns.lookup });
    const url = `rtmp://rebind.onair.test:${service.port}/live/s3cretkey`;
    await policy.isAllowed(url);
    const err = await connectFailure(url, policy);
    expect(err.code).toBe('DESTINATION_REFUSED');
    expect(err.message).toMatch(/127\.0\.0\.1 \(rebind\.onair\.test\).*--allow-private-destinations/);
    expect(err.message).not.toContain('s3cretkey');
    expect(dns.calls()).toBe(2);
    expect(service.connections()).toBe(0);
  });

  it('refuses localhost and loopback literals at connect time with the system resolver', async () => {
    const service = await localService();
    const policy = new ServerPolicy({ host: '0.0.0.0', token: 't' });
    for (const host of ['localhost', '127.0.0.1', '[::ffff:127.0.0.1]']) {
      expect(await connectFailure(`rtmp://${host}:${service.port}/live/k`, policy)).toMatchObject({ code: 'DESTINATION_REFUSED' });
    }
    expect(service.connections()).toBe(0);
  });

  it('dials the same name when private destinations are allowed, and checks nothing on loopback', async () => {
    const service = await localService();
    const dns = rebinding('127.0.0.1');
    const open = new ServerPolicy({ host: '0.0.0.0', token: 't', allowPrivateDestinations: true, lookup: dns.lookup });
    expect(open.connectOptions()).toEqual({ lookup: dns.lookup });
    // The service hangs up at once: the handshake fails, after the connection was made.
    const err = await connectFailure(`rtmp://rebind.onair.test:${service.port}/live/k`, open);
    expect(err.code).toBe('HANDSHAKE_FAILED');
    expect(service.connections()).toBe(1);
    expect(dns.calls()).toBe(1);
    expect(new ServerPolicy({ host: '127.0.0.1' }).connectOptions()).toEqual({});
  });
});

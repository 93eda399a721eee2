import type { IncomingMessage } from 'node:http';
import { createServer, isIP, type LookupFunction, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { OnairError } from '@onair/shared';
import { RtmpPublisher } from '../rtmp/publisher.js';
import { ServerPolicy, TOKEN_COOKIE_MAX_AGE_S, isLoopbackHost, isNonPublicAddress, isWatchRequest } from './policy.js';

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
    const src = '/flv?src=rtmp%3A%2F%2F192.168.1.1%2Flive%2Fx';
    expect(guarded.checkRequest(req(src, { ...host, 'sec-fetch-site': 'cross-site' }))).toMatchObject({ ok: false, status: 401 });
    expect(guarded.checkRequest(req(`${src}&token=tok`, { ...host, 'sec-fetch-site': 'cross-site' }))).toMatchObject({ ok: false, status: 403 });
    expect(guarded.checkRequest(req(`${src}&token=tok`, host))).toEqual({ ok: true });
    // A watch link needs no token, and the site check still holds for it.
    expect(guarded.checkRequest(req('/live/x.flv', { ...host, 'sec-fetch-site': 'cross-site' }))).toMatchObject({ ok: false, status: 403 });
    expect(guarded.checkUpgrade(req('/watch-ws/live/x', { ...host, origin: 'https://evil.example' }))).toMatchObject({ ok: false, status: 403 });
  });
});

describe('ServerPolicy: studio and watch access', () => {
  const policy = new ServerPolicy({ host: '0.0.0.0', token: 'studio-tok' });
  const host = { host: '203.0.113.5:8443', origin: 'https://203.0.113.5:8443' };
  const watchLinks = ['/watch/live/abc123', '/watch/app_2/k.e-y~', '/watch-ws/live/abc123', '/live/abc123.flv', '/assets/index-1.js', '/assets/Watch-2.css'];
  const studioOnly = [
    '/', '/index.html', '/restream', '/api/config', '/api/restream', '/api/restream/inputs', '/metrics', '/studio-ws', '/anything',
    '/flv', '/flv?src=rtmp%3A%2F%2F8.8.8.8%2Flive%2Fx', '/watch?src=rtmp%3A%2F%2F8.8.8.8%2Flive%2Fx', '/watch-ws?src=rtmp%3A%2F%2F8.8.8.8%2Flive%2Fx',
    '/watch/live/abc123?src=rtmp%3A%2F%2F8.8.8.8%2Fa%2Fb', '/live/x.flv?src=rtmp%3A%2F%2F8.8.8.8%2Fa%2Fb', '/watch-ws/live/x?%73rc=rtmp://8.8.8.8/a/b',
    '/watch', '/watch/', '/watch/live', '/watch/live/a/b', '/watch/live/..', '/watch-ws/live/%2e%2e', '/watchx/live/a', '/assets',
  ];

  it('watch links need no token; everything else needs the studio token', () => {
    for (const url of watchLinks) {
      expect(isWatchRequest(new URL(url, 'http://x')), url).toBe(true);
      expect(policy.checkRequest(req(url, host)), url).toEqual({ ok: true });
      expect(policy.checkUpgrade(req(url, host)), url).toEqual({ ok: true });
      // A wrong token on a watch link is ignored, not let in elsewhere.
      expect(policy.checkRequest(req(`${url}?token=wrong`, host)), url).toEqual({ ok: true });
    }
    for (const url of studioOnly) {
      expect(isWatchRequest(new URL(url, 'http://x')), url).toBe(false);
      expect(policy.checkRequest(req(url, host)), url).toMatchObject({ ok: false, status: 401 });
      expect(policy.checkUpgrade(req(url, host)), url).toMatchObject({ ok: false, status: 401 });
      expect(policy.checkRequest(req(url, { ...host, cookie: `onair_token=studio-tok` })), url).toEqual({ ok: true });
    }
  });
});

describe('ServerPolicy: the token cookie', () => {
  const policy = new ServerPolicy({ host: '0.0.0.0', token: 'a b;c' });
  const withSocket = (url: string, encrypted: boolean, headers: Record<string, string> = {}): IncomingMessage =>
    ({ url, headers, socket: { encrypted, remoteAddress: '198.51.100.7' } }) as unknown as IncomingMessage;
  const attributes = `Path=/; Max-Age=${TOKEN_COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Strict`;

  it('is set when the right token came in the query: HttpOnly, SameSite=Strict, Path=/, an expiry, Secure over TLS', () => {
    expect(TOKEN_COOKIE_MAX_AGE_S).toBe(604_800);
    expect(policy.tokenCookie(withSocket('/', false))).toBeUndefined();
    expect(policy.tokenCookie(withSocket('/?token=a%20b%3Bc', false))).toBe(`onair_token=a%20b%3Bc; ${attributes}`);
    expect(policy.tokenCookie(withSocket('/watch/live/x?token=a+b%3Bc', true))).toBe(`onair_token=a%20b%3Bc; ${attributes}; Secure`);
    // A watch link lets any token through: a wrong one must not come back as a cookie.
    expect(policy.tokenCookie(withSocket('/watch/live/x?token=x', true))).toBeUndefined();
    expect(new ServerPolicy({ host: '127.0.0.1' }).tokenCookie(withSocket('/?token=x', false))).toBeUndefined();
  });

  it('is renewed when a page is loaded with it, not on other requests', () => {
    const cookie = 'onair_token=a%20b%3Bc';
    expect(policy.tokenCookie(withSocket('/', false, { cookie, 'sec-fetch-dest': 'document' }))).toBe(`${cookie}; ${attributes}`);
    expect(policy.tokenCookie(withSocket('/api/config', false, { cookie, 'sec-fetch-dest': 'empty' }))).toBeUndefined();
    expect(policy.tokenCookie(withSocket('/', false, { cookie: 'onair_token=old', 'sec-fetch-dest': 'document' }))).toBeUndefined();
  });

  it('is Secure behind an https public URL, or a trusted proxy that says https', () => {
    const behind = new ServerPolicy({ host: '127.0.0.1', token: 't', trustedProxies: ['198.51.100.0/24'] });
    expect(behind.tokenCookie(withSocket('/?token=t', false))).not.toContain('Secure');
    expect(behind.tokenCookie(withSocket('/?token=t', false, { 'x-forwarded-proto': 'https' }))).toMatch(/; Secure$/);
    const untrusted = new ServerPolicy({ host: '127.0.0.1', token: 't', trustedProxies: ['10.0.0.1'] });
    expect(untrusted.tokenCookie(withSocket('/?token=t', false, { 'x-forwarded-proto': 'https' }))).not.toContain('Secure');
    const pub = new ServerPolicy({ host: '127.0.0.1', token: 't', publicUrl: 'https://live.example.com' });
    expect(pub.tokenCookie(withSocket('/?token=t', false))).toMatch(/; Secure$/);
  });
});

describe('ServerPolicy behind a reverse proxy', () => {
  const policy = new ServerPolicy({ host: '127.0.0.1', token: 'tok', publicUrl: 'https://Live.Example.com', trustedProxies: ['127.0.0.1', '::1', '10.1.0.0/16'] });
  const from = (remoteAddress: string, headers: Record<string, string>, url = '/'): IncomingMessage =>
    ({ url, headers, socket: { remoteAddress } }) as unknown as IncomingMessage;
  const auth = { cookie: 'onair_token=tok' };

  it('holds the Host and Origin checks against the public URL', () => {
    for (const host of ['live.example.com', 'LIVE.example.com:443', '127.0.0.1:8080', 'localhost']) {
      expect(policy.checkRequest(from('127.0.0.1', { ...auth, host })), host).toEqual({ ok: true });
    }
    for (const host of ['live.example.com:8443', 'evil.example', 'live.example.com.evil.example']) {
      expect(policy.checkRequest(from('127.0.0.1', { ...auth, host })), host).toMatchObject({ ok: false, status: 403 });
    }
    // The proxy may hand on the public Host or its own upstream's; the Origin is the public one.
    for (const host of ['live.example.com', '127.0.0.1:8080']) {
      expect(policy.checkUpgrade(from('127.0.0.1', { ...auth, host, origin: 'https://live.example.com' }, '/studio-ws')), host).toEqual({ ok: true });
      expect(policy.checkUpgrade(from('127.0.0.1', { ...auth, host, origin: 'https://live.example.com:443' }, '/studio-ws')), host).toEqual({ ok: true });
      for (const origin of ['http://live.example.com', 'https://live.example.com:8443', 'https://evil.example', 'null']) {
        expect(policy.checkUpgrade(from('127.0.0.1', { ...auth, host, origin }, '/studio-ws')), origin).toMatchObject({ ok: false, status: 403 });
      }
    }
    expect(policy.checkUpgrade(from('127.0.0.1', { host: 'live.example.com', origin: 'https://live.example.com' }, '/watch-ws/live/k'))).toEqual({ ok: true });
    expect(policy.checkUpgrade(from('127.0.0.1', { host: 'live.example.com', origin: 'https://live.example.com' }, '/studio-ws'))).toMatchObject({ ok: false, status: 401 });
  });

  it('takes the client address from X-Forwarded-For only through trusted proxies', () => {
    expect(policy.clientAddress(from('127.0.0.1', { 'x-forwarded-for': '203.0.113.9' }))).toBe('203.0.113.9');
    expect(policy.clientAddress(from('::ffff:127.0.0.1', { 'x-forwarded-for': '203.0.113.9' }))).toBe('203.0.113.9');
    // The left part is the client's to write: read from the right, through trusted hops only.
    expect(policy.clientAddress(from('127.0.0.1', { 'x-forwarded-for': '1.2.3.4, 203.0.113.9, 10.1.2.3' }))).toBe('203.0.113.9');
    expect(policy.clientAddress(from('127.0.0.1', { 'x-forwarded-for': '10.1.0.7,10.1.2.3' }))).toBe('10.1.0.7');
    expect(policy.clientAddress(from('127.0.0.1', { 'x-forwarded-for': 'unknown, 10.1.2.3' }))).toBe('10.1.2.3');
    expect(policy.clientAddress(from('127.0.0.1', { 'x-forwarded-for': '2001:db8::5' }))).toBe('2001:db8::5');
    expect(policy.clientAddress(from('127.0.0.1', {}))).toBe('127.0.0.1');
    // Anyone else's header is theirs to forge.
    expect(policy.clientAddress(from('203.0.113.50', { 'x-forwarded-for': '127.0.0.1' }))).toBe('203.0.113.50');
    expect(new ServerPolicy({ host: '127.0.0.1' }).clientAddress(from('127.0.0.1', { 'x-forwarded-for': '203.0.113.9' }))).toBe('127.0.0.1');
  });

  it('refuses a public URL that is not an origin and a proxy that is not an address', () => {
    for (const publicUrl of ['live.example.com', 'ftp://live.example.com', 'https://live.example.com/onair/', 'https://live.example.com/?a=1', 'https://u:p@live.example.com']) {
      expect(() => new ServerPolicy({ host: '127.0.0.1', publicUrl }), publicUrl).toThrow(expect.objectContaining({ code: 'USAGE' }) as Error);
    }
    for (const proxy of ['proxy.local', '10.0.0.0/33', '10.0.0.0/8/1', '::1/129', '10.0.0.1/', '10.0.0.0/x']) {
      expect(() => new ServerPolicy({ host: '127.0.0.1', trustedProxies: [proxy] }), proxy).toThrow(expect.objectContaining({ code: 'USAGE' }) as Error);
    }
    expect(new ServerPolicy({ host: '127.0.0.1', publicUrl: 'http://live.example.com:8080/' }).publicUrl?.host).toBe('live.example.com:8080');
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

  it('lets the embedded server through, at its own address and port only', async () => {
    const pub = new ServerPolicy({ host: '0.0.0.0', token: 't' });
    pub.allowEmbedded('127.0.0.1', 19350);
    await pub.isAllowed('rtmp://127.0.0.1:19350/live/key');
    expect(pub.connectOptions('rtmp://127.0.0.1:19350/live/key').checkAddress).toBeUndefined();
    for (const url of ['rtmp://127.0.0.1:19351/live/key', 'rtmp://127.0.0.1/live/key', 'rtmps://127.0.0.1:19350/live/key', 'rtmp://127.0.0.2:19350/live/key', 'rtmp://localhost:19350/live/key']) {
      await refused(pub, url);
      expect(pub.connectOptions(url).checkAddress, url).toBeDefined();
    }
    expect(pub.connectOptions().checkAddress).toBeDefined();
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

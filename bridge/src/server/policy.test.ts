import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { OnairError } from '@onair/shared';
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
    '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', '::', 'fe80::1', 'fd12:3456::1', 'fc00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1',
  ])('%s is not public', (ip) => {
    expect(isNonPublicAddress(ip)).toBe(true);
  });

  it.each(['8.8.8.8', '172.32.0.1', '172.15.255.255', '100.128.0.1', '1.1.1.1', '2001:4860:4860::8888', '::ffff:8.8.8.8'])('%s is public', (ip) => {
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
    await policy.isAllowed('rtmp://8.8.8.8/app/key');
    await policy.isAllowed('rtmps://[2001:4860:4860::8888]:443/app/key');
  });

  it('lets private destinations through when told to', async () => {
    const open = new ServerPolicy({ host: '0.0.0.0', token: 't', allowPrivateDestinations: true });
    await open.isAllowed('rtmp://127.0.0.1/live/key');
  });
});

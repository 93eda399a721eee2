import { timingSafeEqual } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { FLV_SRC_PATH, LOCAL_FLV_PATH, OnairError, WATCH_WS_PATH, parseWatchTarget } from '@onair/shared';
import { DEFAULT_DNS_TIMEOUT_MS, type RtmpAddressOptions } from '../rtmp/session.js';

export interface PolicyOptions {
  /** The address the server listens on. */
  host: string;
  /**
   * The studio token: required on every request and WebSocket but the watch links' when set
   * (isWatchRequest); mandatory off loopback.
   */
  token?: string | undefined;
  /** Let destinations (and watch sources) on loopback/private/link-local addresses through. */
  allowPrivateDestinations?: boolean | undefined;
  /** Other page origins allowed to use the server from a browser (besides the server's own). */
  allowedOrigins?: readonly string[] | undefined;
  /** Name resolution for destinations, in isAllowed and at connect time; `dns.lookup` unless set. */
  lookup?: LookupFunction | undefined;
  /**
   * Where the public reaches the bridge through a reverse proxy (`--public-url`): an http(s)
   * origin. Its host passes the Host check of a loopback bind and its origin is this server's own.
   */
  publicUrl?: string | undefined;
  /**
   * Peers whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed (`--trusted-proxy`): IP
   * addresses or CIDR ranges. Everyone else's are ignored.
   */
  trustedProxies?: readonly string[] | undefined;
}

export type Verdict = { ok: true } | { ok: false; status: 401 | 403; reason: string };

export const TOKEN_COOKIE = 'onair_token';
/**
 * How long the token cookie lasts, seconds: a week, renewed whenever a page of the bridge is loaded
 * with it, so a bridge in daily use never asks again and a forgotten browser stops holding the key.
 */
export const TOKEN_COOKIE_MAX_AGE_S = 7 * 24 * 3600;

// Addresses a relay on a public interface must never be pointed at: it would be an SSRF tool
// reaching the host's own services or its private network.
const NON_PUBLIC = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // RFC 6598 carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 3], // multicast and reserved
] as const) {
  NON_PUBLIC.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 96], // unspecified, loopback, IPv4-compatible (deprecated, RFC 4291 §2.5.5.1)
  ['64:ff9b:1::', 48], // local-use NAT64 (RFC 8215)
  ['100::', 64], // discard-only (RFC 6666)
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  NON_PUBLIC.addSubnet(net, bits, 'ipv6');
}

/** The 8 groups of a valid IPv6 address (zone already removed). */
function ipv6Groups(address: string): number[] {
  let text = address;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [, a, b, c, d] = dotted.map(Number) as [number, number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? [] : new Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => parseInt(g, 16));
}

/**
 * The IPv4 address an IPv6 address leads to: IPv4-mapped and -translated (SIIT), the NAT64
 * well-known prefix (RFC 6052) and 6to4 (RFC 3056) all carry one a gateway may dial.
 */
function embeddedIpv4(address: string): string | undefined {
  const g = ipv6Groups(address);
  const v4 = (hi: number, lo: number): string => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  const zero = (from: number, to: number): boolean => g.slice(from, to).every((x) => x === 0);
  if (zero(0, 5) && g[5] === 0xffff) return v4(g[6] ?? 0, g[7] ?? 0);
  if (zero(0, 4) && g[4] === 0xffff && g[5] === 0) return v4(g[6] ?? 0, g[7] ?? 0);
  if (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6)) return v4(g[6] ?? 0, g[7] ?? 0);
  if (g[0] === 0x2002) return v4(g[1] ?? 0, g[2] ?? 0);
  return undefined;
}

/** True for an address on loopback, a private range, link-local, multicast or unspecified. */
export function isNonPublicAddress(address: string): boolean {
  const bare = address.replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 4) return NON_PUBLIC.check(bare, 'ipv4');
  if (family !== 6) return false;
  const v4 = embeddedIpv4(bare);
  if (v4 !== undefined && NON_PUBLIC.check(v4, 'ipv4')) return true;
  return NON_PUBLIC.check(bare, 'ipv6');
}

/** True for a listen address that means every interface. */
export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

/** `host` as it goes into a URL: IPv6 addresses in brackets. */
export function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** True when `host` (a listen address or host name) only reaches this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1' || /^::ffff:127\./.test(h);
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * `Sec-Fetch-Site` values that say the request comes from this server's own pages or from the
 * user (typed URL, bookmark). `same-site` is not among them: a site is a registrable domain and
 * a scheme, ports ignored, so every other service on localhost, and every sibling subdomain of a
 * public name, is `same-site` (docs/studio.md, Security).
 */
const OWN_FETCH_SITES: ReadonlySet<string> = new Set(['same-origin', 'none']);

/**
 * Requests that make the bridge open an RTMP session: anything naming a source (`src`: the
 * `/flv`, `/watch` and `/watch-ws` forms) and HTTP-FLV (`/flv`, `/live/<stream>.flv`, served by
 * bridge/src/watch/watch-service.ts). A page on another site must not be able to start them.
 */
function opensUpstream(url: URL): boolean {
  // Case-blind: refusing too much here costs nothing, and a route may come to match more loosely.
  const path = url.pathname.toLowerCase();
  return url.searchParams.has('src') || path === FLV_SRC_PATH || LOCAL_FLV_PATH.test(path);
}

/**
 * What a watch link needs, and all it may reach without the studio token: the app's files, the
 * watch page of a stream on the embedded server (`/watch/<app>/<stream>`), its WebSocket
 * (`/watch-ws/<app>/<stream>`) and its HTTP-FLV (`/live/<stream>.flv`). Anything naming a source
 * (`src`), the studio, its socket and config, the Restream view and API and `/metrics` need the token.
 */
export function isWatchRequest(url: URL): boolean {
  if (url.searchParams.has('src')) return false;
  const path = url.pathname;
  if (path.startsWith('/assets/') || LOCAL_FLV_PATH.test(path)) return true;
  for (const prefix of ['/watch', WATCH_WS_PATH]) {
    if (path.startsWith(`${prefix}/`) && parseWatchTarget(prefix, path, '')?.kind === 'local') return true;
  }
  return false;
}

/** An address as BlockList and comparisons take it: IPv4-mapped IPv6 (a dual-stack socket's) as IPv4. */
function plainAddress(address: string): string {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '').toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
  return mapped?.[1] ?? bare;
}

/** The BlockList of `--trusted-proxy` values (addresses or CIDR ranges); OnairError USAGE for a bad one. */
function proxyList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', bits, extra] = entry.trim().split('/');
    const ip = plainAddress(address);
    const family = isIP(ip);
    const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
    if (family === 0 || extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 6 ? 128 : 32) || (bits !== undefined && !/^\d+$/.test(bits))) {
      throw new OnairError('USAGE', `trusted proxy "${entry.slice(0, 100)}" is not an IP address or CIDR range`);
    }
    list.addSubnet(ip, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  return list;
}

/** The parsed `--public-url`: an http(s) origin, nothing after the host but `/`; OnairError USAGE otherwise. */
function publicOrigin(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new OnairError('USAGE', `public URL "${text.slice(0, 100)}" is not a URL`);
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new OnairError('USAGE', `public URL "${text.slice(0, 100)}" must be an origin such as https://live.example.com (the bridge serves from /)`);
  }
  return url;
}

/** `host[:port]` of an Origin header, lower case; '' for 'null' and anything that does not parse. */
function originHost(origin: string): string {
  try {
    return new URL(origin).host.toLowerCase();
  } catch {
    return '';
  }
}

/** The comma-separated values of a header that may also come more than once, trimmed. */
function headerList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value.join(',') : value).split(',').map((v) => v.trim()).filter((v) => v !== '');
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

/**
 * Who may use the server and where it may connect. Bound to loopback it serves the local user:
 * no token needed, any destination allowed. Bound anywhere else it requires the studio token for
 * everything but watch links (isWatchRequest) and refuses non-public destinations unless told
 * otherwise; the embedded RTMP server stays allowed (allowEmbedded). On every bind, a browser
 * request from another site may not open a WebSocket or start an RTMP session (checkSite).
 */
export class ServerPolicy {
  readonly loopbackOnly: boolean;
  readonly token: string | undefined;
  readonly allowPrivateDestinations: boolean;
  /** `--public-url`, parsed; undefined without one. */
  readonly publicUrl: URL | undefined;
  readonly #allowedOrigins: ReadonlySet<string>;
  readonly #lookup: LookupFunction | undefined;
  readonly #trustedProxies: BlockList | undefined;
  /** `host:port` of the embedded RTMP server as the bridge dials it (lower case). */
  readonly #embedded = new Set<string>();

  constructor(opts: PolicyOptions) {
    this.loopbackOnly = isLoopbackHost(opts.host);
    this.token = opts.token === '' ? undefined : opts.token;
    if (!this.loopbackOnly && this.token === undefined) {
      throw new OnairError('TOKEN_REQUIRED', `listening on ${opts.host} (not loopback) requires a token: --token or ONAIR_TOKEN`);
    }
    this.allowPrivateDestinations = opts.allowPrivateDestinations ?? this.loopbackOnly;
    this.#allowedOrigins = new Set((opts.allowedOrigins ?? []).map((o) => o.toLowerCase()));
    this.#lookup = opts.lookup;
    this.publicUrl = opts.publicUrl === undefined || opts.publicUrl === '' ? undefined : publicOrigin(opts.publicUrl);
    const proxies = opts.trustedProxies ?? [];
    this.#trustedProxies = proxies.length === 0 ? undefined : proxyList(proxies);
  }

  /**
   * Lets studio (and restream) destinations reach the embedded RTMP server at `host:port` (where
   * the bridge dials it) whatever the bind: it is the default destination, and refusing it as a
   * loopback address would leave a public bridge without one. Only that address and port.
   */
  allowEmbedded(host: string, port: number): void {
    this.#embedded.add(`${plainAddress(host)}:${port}`);
  }

  /**
   * The address of the client behind a request: the peer's, or, when the peer is a trusted proxy,
   * the nearest address in `X-Forwarded-For` that is not one (read from the right: the left part
   * is whatever the client wrote).
   */
  clientAddress(req: IncomingMessage): string {
    let client = plainAddress(req.socket?.remoteAddress ?? '');
    if (this.#trustedProxies === undefined) return client;
    const hops = headerList(req.headers['x-forwarded-for']);
    for (let i = hops.length - 1; i >= 0 && this.#trusts(client); i--) {
      const hop = plainAddress(hops[i] ?? '');
      if (isIP(hop) === 0) break;
      client = hop;
    }
    return client;
  }

  /** The token presented by a request: `?token=`, `Authorization: Bearer`, or the cookie set on first visit. */
  presentedToken(req: IncomingMessage): string | undefined {
    const url = new URL(req.url ?? '/', 'http://x');
    const query = url.searchParams.get('token');
    if (query !== null) return query;
    const auth = req.headers.authorization;
    if (auth?.startsWith('Bearer ')) return auth.slice(7).trim();
    return cookie(req, TOKEN_COOKIE);
  }

  /**
   * Checks the studio token (when one is configured) unless the request is a watch link's, on
   * loopback the Host header, and for a request that opens an RTMP session (HTTP-FLV, any `src`)
   * where the browser says it comes from.
   */
  checkRequest(req: IncomingMessage): Verdict {
    const url = new URL(req.url ?? '/', 'http://x');
    const verdict = this.#checkAccess(req, url);
    if (!verdict.ok || !opensUpstream(url)) return verdict;
    return this.checkSite(req);
  }

  /** Like checkRequest, with checkSite for every WebSocket handshake. */
  checkUpgrade(req: IncomingMessage): Verdict {
    const verdict = this.#checkAccess(req, new URL(req.url ?? '/', 'http://x'));
    if (!verdict.ok) return verdict;
    return this.checkSite(req);
  }

  /**
   * Refuses a request a browser marks as coming from another site: an `Origin` that is neither
   * this server's (its Host's, or the public URL's) nor allowed, or `Sec-Fetch-Site` other than
   * same-origin or none (the user's own navigation) unless the `Origin` is allowed. Clients that
   * send neither header (ffmpeg, VLC, Node) are not browsers running someone else's page, and pass.
   */
  checkSite(req: IncomingMessage): Verdict {
    const origin = req.headers.origin;
    if (origin !== undefined) {
      // A listed origin is another site on purpose; its requests say cross-site and that is fine.
      if (this.#allowedOrigins.has(origin.toLowerCase())) return { ok: true };
      const own = (req.headers.host ?? '').toLowerCase();
      // Through the public URL's host, the scheme counts too: an http page there is not the https one.
      const sameHost = own !== '' && originHost(origin) === own && !this.#isPublicHost(own);
      if (!sameHost && !this.#isPublicOrigin(origin)) {
        return { ok: false, status: 403, reason: `request from origin ${origin.slice(0, 100)} refused: not this server's (--allow-origin allows one)` };
      }
    }
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && !OWN_FETCH_SITES.has(site)) {
      return { ok: false, status: 403, reason: `request from another site refused (Sec-Fetch-Site: ${site.slice(0, 20)}); open it from this server's own pages` };
    }
    return { ok: true };
  }

  /**
   * The Set-Cookie value that keeps the studio token for the page's later requests and WebSockets,
   * or undefined when there is nothing to keep: set when the right token comes as `?token=`,
   * renewed when a page is loaded with the cookie. HttpOnly: page scripts never see it;
   * SameSite=Strict: another site's links and requests do not carry it; Max-Age: it ends;
   * Secure when the browser reached the bridge over TLS (secureRequest).
   */
  tokenCookie(req: IncomingMessage): string | undefined {
    if (this.token === undefined) return undefined;
    const inQuery = new URL(req.url ?? '/', 'http://x').searchParams.has('token');
    const pageLoad = req.headers['sec-fetch-dest'] === 'document' && cookie(req, TOKEN_COOKIE) !== undefined;
    if (!inQuery && !pageLoad) return undefined;
    const presented = this.presentedToken(req);
    if (presented === undefined || !sameSecret(presented, this.token)) return undefined;
    const secure = this.secureRequest(req) ? '; Secure' : '';
    return `${TOKEN_COOKIE}=${encodeURIComponent(this.token)}; Path=/; Max-Age=${TOKEN_COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Strict${secure}`;
  }

  /**
   * True when the browser reached the bridge over TLS: the bridge's own listener, a trusted proxy
   * saying `X-Forwarded-Proto: https`, or an https public URL (the address the public uses).
   */
  secureRequest(req: IncomingMessage): boolean {
    if ((req.socket as { encrypted?: boolean } | undefined)?.encrypted === true) return true;
    if (this.publicUrl?.protocol === 'https:') return true;
    const peer = plainAddress(req.socket?.remoteAddress ?? '');
    return this.#trusts(peer) && headerList(req.headers['x-forwarded-proto']).at(-1)?.toLowerCase() === 'https';
  }

  #trusts(address: string): boolean {
    if (this.#trustedProxies === undefined) return false;
    const family = isIP(address);
    return family !== 0 && this.#trustedProxies.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }

  #isPublicOrigin(origin: string): boolean {
    if (this.publicUrl === undefined) return false;
    try {
      return new URL(origin).origin === this.publicUrl.origin;
    } catch {
      return false;
    }
  }

  /** True when a Host header names the public URL's host (default port or not). */
  #isPublicHost(host: string): boolean {
    const pub = this.publicUrl;
    if (pub === undefined) return false;
    const h = host.toLowerCase();
    return h === pub.host || h === `${pub.hostname}:${pub.port === '' ? (pub.protocol === 'https:' ? 443 : 80) : pub.port}`;
  }

  #checkAccess(req: IncomingMessage, url: URL): Verdict {
    if (this.loopbackOnly) {
      // A page on another site could resolve its own name to 127.0.0.1 (DNS rebinding); only
      // loopback names, and the public URL's behind a proxy, reach a loopback-only server legitimately.
      const header = req.headers.host ?? '';
      const host = header.replace(/:\d+$/, '');
      if (!isLoopbackHost(host) && !this.#isPublicHost(header)) return { ok: false, status: 403, reason: `host "${host.slice(0, 100)}" is not a loopback name or the public URL's` };
    }
    if (this.token !== undefined && !isWatchRequest(url)) {
      const presented = this.presentedToken(req);
      if (presented === undefined || !sameSecret(presented, this.token)) return { ok: false, status: 401, reason: 'missing or wrong token' };
    }
    return { ok: true };
  }

  /**
   * Resolves when `url` (rtmp/rtmps) may be contacted; rejects with OnairError
   * DESTINATION_REFUSED otherwise. Every address the name resolves to must be public. This is the
   * early, friendly answer; the client resolves the name again when it connects, so pass
   * connectOptions() to RtmpPublisher/RtmpPlayer.connect as well.
   */
  async isAllowed(url: string): Promise<void> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new OnairError('DESTINATION_REFUSED', 'not a valid URL');
    }
    if (parsed.protocol !== 'rtmp:' && parsed.protocol !== 'rtmps:') {
      throw new OnairError('DESTINATION_REFUSED', `protocol ${parsed.protocol} is not rtmp: or rtmps:`);
    }
    if (this.allowPrivateDestinations || this.#isEmbedded(parsed)) return;
    const host = parsed.hostname.replace(/^\[|\]$/g, '');
    let addresses: string[];
    if (isIP(host) !== 0) {
      addresses = [host];
    } else {
      try {
        addresses = (await this.#resolve(host)).map((a) => a.address);
      } catch (err) {
        // A slow resolver is no refusal: RTMP_DNS_TIMEOUT, as at connect, may be retried.
        if (err instanceof OnairError) throw err;
        throw new OnairError('DESTINATION_REFUSED', `cannot resolve ${host}`);
      }
    }
    const bad = addresses.find(isNonPublicAddress);
    if (bad !== undefined) {
      throw new OnairError('DESTINATION_REFUSED', `${host} is a loopback/private/link-local address (${bad}); start with --allow-private-destinations to allow it`);
    }
  }

  /**
   * Options for RtmpPublisher/RtmpPlayer.connect that apply this policy to the address actually
   * dialled: a name can resolve to a public address for isAllowed and to 127.0.0.1 a moment later
   * (DNS rebinding).
   */
  connectOptions(url?: string): RtmpAddressOptions {
    const lookup = this.#lookup === undefined ? {} : { lookup: this.#lookup };
    if (this.allowPrivateDestinations || (url !== undefined && this.#isEmbedded(url))) return lookup;
    return { ...lookup, checkAddress: checkPublicAddress };
  }

  /** True for a plain rtmp:// URL on the embedded server's address and port (allowEmbedded). */
  #isEmbedded(url: string | URL): boolean {
    if (this.#embedded.size === 0) return false;
    let parsed: URL;
    try {
      parsed = typeof url === 'string' ? new URL(url) : url;
    } catch {
      return false;
    }
    return parsed.protocol === 'rtmp:' && this.#embedded.has(`${plainAddress(parsed.hostname)}:${parsed.port === '' ? 1935 : parsed.port}`);
  }

  #resolve(host: string): Promise<LookupAddress[]> {
    const lookup = this.#lookup ?? (dnsLookup as LookupFunction);
    return new Promise((resolve, reject) => {
      // The client's limit at connect: a resolver that never answers must not hold a destination.
      const timer = setTimeout(
        () => reject(new OnairError('RTMP_DNS_TIMEOUT', `${host} did not resolve within ${DEFAULT_DNS_TIMEOUT_MS} ms`)),
        DEFAULT_DNS_TIMEOUT_MS,
      );
      lookup(host, { all: true, verbatim: true }, (err, addresses) => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(typeof addresses === 'string' ? [{ address: addresses, family: isIP(addresses) }] : addresses);
      });
    });
  }
}

function checkPublicAddress(address: string): void {
  if (isNonPublicAddress(address)) {
    throw new OnairError('DESTINATION_REFUSED', 'a loopback/private/link-local address; start with --allow-private-destinations to allow it');
  }
}

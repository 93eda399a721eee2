import { OnairError } from '@onair/shared';

export interface RtmpUrl {
  protocol: 'rtmp' | 'rtmps';
  /** Host name or IP address (IPv6 without brackets), for net/tls connect. */
  host: string;
  port: number;
  /** Everything between the host and the last `/`: application, instance and an app query. */
  app: string;
  tcUrl: string;
  /** The last path segment with its query: the stream key when publishing. */
  streamName: string;
  /** The URL with the stream name replaced by `***`, safe for logs and errors. */
  redacted: string;
}

const DEFAULT_PORT = { rtmp: 1935, rtmps: 443 } as const;

function bad(message: string): OnairError {
  return new OnairError('RTMP_BAD_URL', message);
}

/**
 * Splits `rtmp[s]://host[:port]/app[/instance]/streamName[?query]` as OBS and FFmpeg do: the
 * stream name is what follows the last `/`, everything before it is the app (sent in `connect`
 * and in `tcUrl`). That keeps YouTube's `live2?backup=1/KEY` app query with the app and
 * Twitch's `KEY?bandwidthtest=true` with the name.
 */
export function parseRtmpUrl(url: string): RtmpUrl {
  const m = /^(rtmps?):\/\/([^/?#]*)(.*)$/i.exec(url.trim());
  if (!m) throw bad(`not an rtmp:// or rtmps:// URL: ${redactUnparsed(url)}`);
  const protocol = m[1]!.toLowerCase() as 'rtmp' | 'rtmps';
  const authority = m[2]!;
  const rest = m[3]!;
  if (authority.includes('@')) throw bad('RTMP URLs carry no user:password@; put credentials in the stream name');
  const hm = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(authority);
  if (!hm) throw bad(`bad host in RTMP URL: ${protocol}://${authority}/…`);
  const hostPart = hm[1]!;
  const host = hostPart.startsWith('[') ? hostPart.slice(1, -1) : hostPart;
  const port = hm[2] === undefined ? DEFAULT_PORT[protocol] : Number(hm[2]);
  if (port < 1 || port > 65535) throw bad(`port ${hm[2]} outside 1..65535 in ${protocol}://${authority}`);
  const slash = rest.lastIndexOf('/');
  const app = slash > 0 ? rest.slice(1, slash) : '';
  const streamName = slash >= 0 ? rest.slice(slash + 1) : '';
  if (!rest.startsWith('/') || app === '' || streamName === '') {
    throw bad(
      `RTMP URL needs an app and a stream name, ${protocol}://host[:port]/app/streamName: got ${protocol}://${authority}${app ? `/${app}/` : '/'}${streamName ? '***' : ''}`,
    );
  }
  const base = `${protocol}://${authority}/${app}`;
  return { protocol, host, port, app, tcUrl: base, streamName, redacted: `${base}/***` };
}

/** For a URL that did not parse: keep the scheme and host, drop anything that could be a key. */
function redactUnparsed(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/[^/?#]*)/i.exec(url.trim());
  return m ? `${m[1]}/…` : '(unparsed URL hidden)';
}

/** Replaces the stream name (and its parts) of `url` wherever it appears in `text`. */
export function redactKey(text: string, url: RtmpUrl | string): string {
  let name: string;
  if (typeof url === 'string') {
    try {
      name = parseRtmpUrl(url).streamName;
    } catch {
      return text;
    }
  } else {
    name = url.streamName;
  }
  const forms = new Set<string>([name]);
  const q = name.indexOf('?');
  if (q > 0) forms.add(name.slice(0, q));
  try {
    forms.add(decodeURIComponent(name));
    forms.add(encodeURIComponent(name));
  } catch {
    // not percent-encoded: the literal forms suffice
  }
  let out = text;
  // Longest first, so a key's query form is replaced whole before the bare key.
  for (const form of [...forms].sort((a, b) => b.length - a.length)) {
    if (form.length >= 3) out = out.split(form).join('***');
  }
  return out;
}

/** The redacted form of any RTMP URL string, even one that does not parse. */
export function redactUrl(url: string): string {
  try {
    return parseRtmpUrl(url).redacted;
  } catch {
    return redactUnparsed(url);
  }
}

/**
 * The URL to publish or play `current`'s stream name at, on the server a server sent us to:
 * `ref` is a tcUrl (`rtmp://host/app`), absolute or relative to `current`'s (`//host/app`,
 * `/app`), as Enhanced RTMP v2 reconnect requests and 302 redirects give it. A `ref` whose last
 * segment already is the stream name (old SRS redirects carry the whole URL) is taken whole.
 */
export function resolveServerUrl(ref: string, current: RtmpUrl): string {
  const authority = /^rtmps?:\/\/([^/]*)/i.exec(current.tcUrl)![1]!;
  let abs: string;
  if (/^rtmps?:\/\//i.test(ref)) abs = ref;
  else if (ref.startsWith('//')) abs = `${current.protocol}:${ref}`;
  else if (ref.startsWith('/')) abs = `${current.protocol}://${authority}${ref}`;
  else throw bad(`the server sent us to ${JSON.stringify(redactKey(ref, current).slice(0, 200))}, not an rtmp:// or rtmps:// URL`);
  abs = abs.replace(/\/+$/, '');
  const q = current.streamName.indexOf('?');
  const bare = q < 0 ? current.streamName : current.streamName.slice(0, q);
  const last = abs.slice(abs.lastIndexOf('/') + 1);
  const whole = last === current.streamName || last === bare || last.startsWith(`${bare}?`);
  const url = whole ? abs : `${abs}/${current.streamName}`;
  // Throws RTMP_BAD_URL for what cannot be dialled (no app, user info, bad port).
  parseRtmpUrl(url);
  return url;
}

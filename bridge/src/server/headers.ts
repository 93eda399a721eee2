import type { IncomingMessage, ServerResponse } from 'node:http';

// A Host header fit to be written into a CSP source: a name or address and a port, nothing else.
const HOST_SOURCE = /^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/**
 * The Content-Security-Policy of every response: exactly what the built studio and watch page use.
 * - scripts: Vite's module scripts and chunks from this origin; `blob:` for the AudioWorklet the
 *   studio builds from a string (capture.ts, the path without MediaStreamTrackProcessor);
 *   `'wasm-unsafe-eval'` to compile the WASM AAC encoder (@mediabunny/aac-encoder).
 * - workers: the encode worker from this origin; `blob:` for the workers mediabunny and its AAC
 *   encoder start from inline code.
 * - connect: `/api/config` and the WebSockets to this host. CSP3 lets `'self'` match ws:/wss: of
 *   the same host; the host is named too for browsers that predate that.
 * - media: the watch page plays a MediaSource object URL (`blob:`); the studio preview uses
 *   srcObject, which CSP does not govern.
 * - styles: the CSS files Vite extracts from the Svelte components; no inline styles.
 * - images: index.html's empty icon (`data:,`), which keeps browsers from asking for /favicon.ico.
 * Nothing may frame the app, post a form, change the base URL or load plugins.
 */
function contentSecurityPolicy(hosts: readonly (string | undefined)[]): string {
  const named = [...new Set(hosts.filter((h): h is string => h !== undefined && HOST_SOURCE.test(h)))];
  const sockets = named.map((h) => ` ws://${h} wss://${h}`).join('');
  return [
    "default-src 'none'",
    "script-src 'self' blob: 'wasm-unsafe-eval'",
    "worker-src 'self' blob:",
    `connect-src 'self'${sockets}`,
    "media-src 'self' blob:",
    "style-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * The headers every response carries, pages, files, errors, streams and refused upgrades alike.
 * `req` names the host for the WebSocket sources of the CSP, and so does `publicHost` (the
 * `--public-url`'s, when a proxy hands the bridge another Host); without them they rest on `'self'`.
 */
export function securityHeaders(req?: IncomingMessage, publicHost?: string): Record<string, string> {
  return {
    'content-security-policy': contentSecurityPolicy([req?.headers.host, publicHost]),
    // frame-ancestors for browsers without CSP level 2.
    'x-frame-options': 'DENY',
    'x-content-type-options': 'nosniff',
    // Page URLs carry secrets (`?token=` until the page removes it, stream keys in `?src=` and
    // `/watch/live/<key>`) and nothing the app loads needs a Referer.
    'referrer-policy': 'no-referrer',
    // Cross-origin isolation: precise performance.now() in the encode worker (5 µs instead of
    // 100 µs) for its per-frame stats. The app loads nothing from other origins.
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-embedder-policy': 'require-corp',
    // Other sites cannot pull the app's scripts or streams into their pages as no-cors subresources.
    'cross-origin-resource-policy': 'same-origin',
  };
}

/** Puts securityHeaders on `res` before anything writes its head. */
export function setSecurityHeaders(req: IncomingMessage, res: ServerResponse, publicHost?: string): void {
  for (const [name, value] of Object.entries(securityHeaders(req, publicHost))) res.setHeader(name, value);
}

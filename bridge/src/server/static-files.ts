import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, sep } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>onair</title>
<p>The studio is not built yet. Run <code>npm run build</code> in the repository, then reload.</p>`;

/**
 * Serves the built web app from `root`: files by path, and index.html for any other path without
 * an extension so client-side routes (`/watch/live/key`) load the app. The security headers are
 * the server's (headers.ts), set before this runs.
 */
export class StaticFiles {
  readonly #root: string;

  constructor(root: string) {
    this.#root = normalize(root.endsWith(sep) ? root : root + sep);
  }

  async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      res.writeHead(400).end();
      return;
    }
    const file = normalize(join(this.#root, pathname));
    if (!file.startsWith(this.#root) || pathname.includes('\0')) {
      res.writeHead(404).end();
      return;
    }
    if (await this.#send(req, res, file, pathname.startsWith('/assets/'))) return;
    if (extname(pathname) !== '') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    if (await this.#send(req, res, join(this.#root, 'index.html'), false)) return;
    res.writeHead(503, { 'content-type': 'text/html; charset=utf-8' }).end(NOT_BUILT);
  }

  async #send(req: IncomingMessage, res: ServerResponse, file: string, immutable: boolean): Promise<boolean> {
    let size: number;
    try {
      const info = await stat(file);
      if (!info.isFile()) return false;
      size = info.size;
    } catch {
      return false;
    }
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': size,
      // Vite puts a content hash in every asset name; index.html must always be fresh.
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    if (req.method === 'HEAD') {
      res.end();
      return true;
    }
    const stream = createReadStream(file);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
    return true;
  }
}

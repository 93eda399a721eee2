import { createServer, type Server } from 'node:http';

/** An nginx-rtmp `on_publish` hook on loopback: 403 for the refused stream names, 200 for the others. */
export interface PublishHook {
  /** The directive for `application live {}`. */
  readonly directive: string;
  /** Every name nginx asked about, in order. */
  readonly asked: string[];
  close(): Promise<void>;
}

export async function startPublishHook(refused: ReadonlySet<string>): Promise<PublishHook> {
  const asked: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString('utf8')));
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const name = new URLSearchParams(body).get('name') ?? '';
      asked.push(name);
      res.writeHead(refused.has(name) ? 403 : 200).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  return {
    directive: `on_publish http://127.0.0.1:${port}/publish;`,
    asked,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

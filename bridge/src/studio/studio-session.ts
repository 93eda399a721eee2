import {
  CloseCode,
  MAX_STUDIO_BINARY_BYTES,
  OnairError,
  STUDIO_PROTOCOL_VERSION,
  parseFlvTag,
  parseStudioClientMessage,
  type FlvTag,
  type StudioServerMessage,
  type StudioStartMessage,
} from '@onair/shared';
import type { WebSocket } from 'ws';
import { DestinationRelay, type DestinationRelayOptions, type StreamStart } from './destination-relay.js';
import { TagRole, tagRole } from './tags.js';

export interface StudioSessionOptions {
  policy: DestinationRelayOptions['policy'];
  log?: (line: string) => void;
  /** Status is pushed at least this often while live, and soon after any state change. */
  statusIntervalMs?: number;
  maxBufferedBytes?: number;
  retry?: DestinationRelayOptions['retry'];
}

/** The current GOP is kept for a destination's first connection; bounded whatever the page sends. */
const MAX_GOP_BYTES = 8 * 1024 * 1024;
const STATUS_DEBOUNCE_MS = 100;

/**
 * One studio WebSocket: FLV tags in from the page, relayed to every destination of the current
 * `start`. Keeps what a (re)connecting destination needs: metadata, sequence headers and the GOP.
 */
export class StudioSession {
  readonly #ws: WebSocket;
  readonly #opts: StudioSessionOptions;
  #relays: DestinationRelay[] = [];
  #metadata: FlvTag | undefined;
  #audioConfig: FlvTag | undefined;
  #videoConfig: FlvTag | undefined;
  #gop: { tag: FlvTag; role: TagRole }[] = [];
  #gopBytes = 0;
  #received = { bytes: 0, tags: 0 };
  #statusTimer: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #closed = false;
  /** Resolves once every destination has unpublished after the socket closed. */
  readonly done: Promise<void>;
  #resolveDone!: () => void;

  constructor(ws: WebSocket, opts: StudioSessionOptions) {
    this.#ws = ws;
    this.#opts = opts;
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
    ws.on('message', (data, isBinary) => this.#onMessage(data as Buffer | Buffer[] | ArrayBuffer, isBinary));
    ws.on('close', () => void this.#shutdown());
    ws.on('error', () => void this.#shutdown());
    this.#send({ type: 'welcome', version: STUDIO_PROTOCOL_VERSION, maxBinaryBytes: MAX_STUDIO_BINARY_BYTES });
    this.#statusTimer = setInterval(() => this.#sendStatus(), opts.statusIntervalMs ?? 1000);
  }

  #onMessage(raw: Buffer | Buffer[] | ArrayBuffer, isBinary: boolean): void {
    const bytes = Array.isArray(raw) ? Buffer.concat(raw) : raw instanceof ArrayBuffer ? new Uint8Array(raw) : raw;
    try {
      if (isBinary) this.#onTag(parseFlvTag(bytes, MAX_STUDIO_BINARY_BYTES));
      else this.#onControl(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
    } catch (err) {
      const code = err instanceof OnairError ? err.code : 'INTERNAL';
      const message = err instanceof Error ? err.message : String(err);
      this.#send({ type: 'error', code, message });
      this.#ws.close(isBinary ? CloseCode.InvalidData : CloseCode.PolicyViolation, code);
    }
  }

  #onControl(text: string): void {
    const msg = parseStudioClientMessage(text);
    if (msg.type === 'start') this.#start(msg);
    else void this.#stopRelays().then(() => this.#sendStatus());
  }

  #start(msg: StudioStartMessage): void {
    if (this.#relays.some((r) => r.state !== 'stopped' && r.state !== 'failed')) {
      throw new OnairError('ALREADY_LIVE', 'already live: send stop before starting again');
    }
    this.#metadata = this.#audioConfig = this.#videoConfig = undefined;
    this.#gop = [];
    this.#gopBytes = 0;
    this.#relays = msg.destinations.map(
      (d) =>
        new DestinationRelay({
          id: d.id,
          url: d.url,
          policy: this.#opts.policy,
          streamStart: () => this.#streamStart(),
          onChange: () => this.#statusSoon(),
          ...(this.#opts.maxBufferedBytes !== undefined ? { maxBufferedBytes: this.#opts.maxBufferedBytes } : {}),
          ...(this.#opts.retry !== undefined ? { retry: this.#opts.retry } : {}),
          ...(this.#opts.log !== undefined ? { log: this.#opts.log } : {}),
        }),
    );
  }

  #streamStart(): StreamStart {
    return { metadata: this.#metadata, audioConfig: this.#audioConfig, videoConfig: this.#videoConfig, gop: this.#gop };
  }

  #onTag(tag: FlvTag): void {
    this.#received.bytes += tag.data.length;
    this.#received.tags++;
    const role = tagRole(tag);
    switch (role) {
      case TagRole.Metadata:
        this.#metadata = tag;
        break;
      case TagRole.AudioConfig:
        this.#audioConfig = tag;
        break;
      case TagRole.VideoConfig:
        this.#videoConfig = tag;
        break;
      case TagRole.VideoKey:
        this.#gop = [{ tag, role }];
        this.#gopBytes = tag.data.length;
        break;
      case TagRole.Video:
      case TagRole.Audio:
        if (this.#gop.length > 0 && this.#gopBytes + tag.data.length <= MAX_GOP_BYTES) {
          this.#gop.push({ tag, role });
          this.#gopBytes += tag.data.length;
        }
        break;
      default:
        return;
    }
    for (const relay of this.#relays) relay.push(tag, role);
  }

  #statusSoon(): void {
    if (this.#debounce !== undefined || this.#closed) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.#sendStatus();
    }, STATUS_DEBOUNCE_MS);
  }

  #sendStatus(): void {
    this.#send({ type: 'status', destinations: this.#relays.map((r) => r.status()), received: { ...this.#received } });
  }

  #send(msg: StudioServerMessage): void {
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(JSON.stringify(msg));
  }

  async #stopRelays(): Promise<void> {
    await Promise.all(this.#relays.map((r) => r.stop()));
  }

  async #shutdown(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#statusTimer);
    clearTimeout(this.#debounce);
    await this.#stopRelays();
    this.#gop = [];
    this.#resolveDone();
  }

  /** Ends every destination cleanly and closes the socket. */
  async close(): Promise<void> {
    this.#ws.close(CloseCode.GoingAway, 'server shutting down');
    await this.#shutdown();
  }

  destroy(): void {
    this.#closed = true;
    clearInterval(this.#statusTimer);
    clearTimeout(this.#debounce);
    for (const r of this.#relays) r.destroy();
    this.#ws.terminate();
    this.#resolveDone();
  }
}

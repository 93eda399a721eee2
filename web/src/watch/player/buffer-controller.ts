import type { RemuxTrack, RemuxTrackKind } from '@onair/shared';

type Op = { kind: 'append'; data: Uint8Array; init: boolean; retried: boolean } | { kind: 'remove'; start: number; end: number } | { kind: 'changeType'; type: string };

export interface BufferControllerOptions {
  /** Seconds of played media kept behind the playhead; older media is removed. */
  backBufferS: number;
  /** Bytes waiting in one queue past which the controller gives up on the backlog. */
  maxQueuedBytes: number;
  /** Called when media had to be dropped (backlog or quota): the next append must start on a keyframe. */
  onResync: (why: string) => void;
  onError: (err: Error) => void;
}

export const DEFAULT_BUFFER_OPTIONS: Omit<BufferControllerOptions, 'onResync' | 'onError'> = {
  backBufferS: 10,
  maxQueuedBytes: 16 * 1024 * 1024,
};

type MediaSourceLike = MediaSource;

interface ManagedMediaSourceWindow {
  ManagedMediaSource?: { new (): MediaSource; isTypeSupported(type: string): boolean };
}

/**
 * ManagedMediaSource where the browser has it (Safari 17+, WebKitGTK; the only one on iOS
 * Safari, and the one WebKit recommends for power), otherwise MediaSource.
 */
export function mediaSourceClass(): { MS: { new (): MediaSourceLike; isTypeSupported(type: string): boolean }; managed: boolean } | undefined {
  const managed = (globalThis as ManagedMediaSourceWindow).ManagedMediaSource;
  if (managed !== undefined) return { MS: managed, managed: true };
  return typeof MediaSource === 'undefined' ? undefined : { MS: MediaSource, managed: false };
}

/**
 * One SourceBuffer and its operation queue: appendBuffer/remove run one at a time, the next on
 * `updateend`. A full buffer (QuotaExceededError) evicts what lies behind the playhead and retries.
 */
class SourceBufferQueue {
  readonly kind: RemuxTrackKind;
  readonly #sb: SourceBuffer;
  readonly #video: HTMLMediaElement;
  readonly #opts: BufferControllerOptions;
  #ops: Op[] = [];
  #queuedBytes = 0;
  #type: string;
  #destroyed = false;
  readonly #onUpdateEnd = (): void => this.#done();
  readonly #onError = (): void => this.#opts.onError(new Error(`${this.kind} SourceBuffer error`));

  constructor(kind: RemuxTrackKind, sb: SourceBuffer, type: string, video: HTMLMediaElement, opts: BufferControllerOptions) {
    this.kind = kind;
    this.#sb = sb;
    this.#type = type;
    this.#video = video;
    this.#opts = opts;
    sb.addEventListener('updateend', this.#onUpdateEnd);
    sb.addEventListener('error', this.#onError);
  }

  get buffered(): TimeRanges {
    return this.#sb.buffered;
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  append(data: Uint8Array, init = false): void {
    if (!init && this.#queuedBytes + data.length > this.#opts.maxQueuedBytes) {
      // The page cannot keep up (a slow device): drop the media backlog rather than grow. The
      // operation in progress and init segments stay.
      const running = this.#sb.updating ? this.#ops.slice(0, 1) : [];
      const kept = this.#ops.slice(running.length).filter((op) => op.kind !== 'append' || op.init);
      this.#ops = [...running, ...kept];
      this.#queuedBytes = this.#ops.reduce((n, op) => n + (op.kind === 'append' ? op.data.length : 0), 0);
      this.#opts.onResync(`${this.kind} append backlog over ${this.#opts.maxQueuedBytes} bytes`);
      return;
    }
    this.#queuedBytes += data.length;
    this.#push({ kind: 'append', data, init, retried: false });
  }

  remove(start: number, end: number): void {
    if (end > start) this.#push({ kind: 'remove', start, end });
  }

  /** A new configuration; `changeType` only when the MIME type really changed. */
  reconfigure(track: RemuxTrack): void {
    if (track.mimeType !== this.#type) {
      this.#type = track.mimeType;
      this.#push({ kind: 'changeType', type: track.mimeType });
    }
    this.append(track.init, true);
  }

  /** Removes media further behind the playhead than the back buffer allows. */
  evictBehind(playhead: number, keepS: number): void {
    const b = this.#sb.buffered;
    if (b.length === 0) return;
    const start = b.start(0);
    const end = playhead - keepS;
    if (end - start > 1) this.remove(start, end);
  }

  destroy(): void {
    this.#destroyed = true;
    this.#ops = [];
    this.#sb.removeEventListener('updateend', this.#onUpdateEnd);
    this.#sb.removeEventListener('error', this.#onError);
  }

  #push(op: Op): void {
    this.#ops.push(op);
    if (this.#ops.length === 1) this.#run();
  }

  #done(): void {
    const op = this.#ops.shift();
    if (op?.kind === 'append') this.#queuedBytes -= op.data.length;
    this.#run();
  }

  #run(): void {
    while (!this.#destroyed && this.#ops.length > 0 && !this.#sb.updating) {
      const op = this.#ops[0]!;
      try {
        if (op.kind === 'append') {
          this.#sb.appendBuffer(op.data as Uint8Array<ArrayBuffer>);
          return;
        }
        if (op.kind === 'remove') {
          this.#sb.remove(op.start, op.end);
          return;
        }
        // changeType is synchronous: no updateend follows. Without it (Safari before 13.1) the
        // next init segment still reconfigures a decoder of the same codec family.
        if (typeof this.#sb.changeType === 'function') this.#sb.changeType(op.type);
        this.#ops.shift();
      } catch (err) {
        if (op.kind === 'append' && !op.retried && err instanceof DOMException && err.name === 'QuotaExceededError') {
          op.retried = true;
          const playhead = this.#video.currentTime;
          const b = this.#sb.buffered;
          if (b.length > 0 && playhead - 1 > b.start(0)) {
            this.#ops.unshift({ kind: 'remove', start: b.start(0), end: playhead - 1 });
            continue;
          }
        }
        this.#ops.shift();
        if (op.kind === 'append') {
          this.#queuedBytes -= op.data.length;
          this.#opts.onResync(`${this.kind} ${op.kind} failed: ${err instanceof Error ? err.message : String(err)}`);
        } else {
          this.#opts.onError(err instanceof Error ? err : new Error(String(err)));
        }
      }
    }
  }
}

/**
 * Owns the MediaSource attached to the video element and one SourceBuffer queue per track.
 * Tracks are fixed once (MSE does not allow adding a SourceBuffer after media was appended).
 */
export class BufferController {
  readonly #video: HTMLVideoElement;
  readonly #opts: BufferControllerOptions;
  readonly #ms: MediaSourceLike;
  readonly #url: string;
  readonly #queues = new Map<RemuxTrackKind, SourceBufferQueue>();
  readonly opened: Promise<void>;
  readonly managed: boolean;

  constructor(video: HTMLVideoElement, opts: BufferControllerOptions) {
    const found = mediaSourceClass();
    if (found === undefined) throw new Error('this browser has no MediaSource or ManagedMediaSource');
    this.#video = video;
    this.#opts = opts;
    this.managed = found.managed;
    this.#ms = new found.MS();
    // ManagedMediaSource plays only when AirPlay has an alternative or is turned off.
    if (this.managed) video.disableRemotePlayback = true;
    this.#url = URL.createObjectURL(this.#ms);
    this.opened = new Promise((resolve) =>
      this.#ms.addEventListener(
        'sourceopen',
        () => {
          URL.revokeObjectURL(this.#url);
          resolve();
        },
        { once: true },
      ),
    );
    video.src = this.#url;
  }

  /** Track kinds with a SourceBuffer. */
  get tracks(): RemuxTrackKind[] {
    return [...this.#queues.keys()];
  }

  static isSupported(track: Pick<RemuxTrack, 'mimeType'>): boolean {
    return mediaSourceClass()?.MS.isTypeSupported(track.mimeType) ?? false;
  }

  /** Creates one SourceBuffer per track and queues its init segment. */
  async addTracks(tracks: readonly RemuxTrack[]): Promise<void> {
    await this.opened;
    for (const t of tracks) {
      if (this.#queues.has(t.kind)) continue;
      const sb = this.#ms.addSourceBuffer(t.mimeType);
      const q = new SourceBufferQueue(t.kind, sb, t.mimeType, this.#video, this.#opts);
      this.#queues.set(t.kind, q);
      q.append(t.init, true);
    }
  }

  reconfigure(track: RemuxTrack): void {
    this.#queues.get(track.kind)?.reconfigure(track);
  }

  append(kind: RemuxTrackKind, data: Uint8Array): void {
    this.#queues.get(kind)?.append(data);
  }

  /** Bytes waiting in the append queues. */
  get queuedBytes(): number {
    let n = 0;
    for (const q of this.#queues.values()) n += q.queuedBytes;
    return n;
  }

  /** End of the media every track can play: the live edge, in seconds. */
  get bufferedEnd(): number | undefined {
    const b = this.#video.buffered;
    return b.length === 0 ? undefined : b.end(b.length - 1);
  }

  evict(): void {
    const playhead = this.#video.currentTime;
    for (const q of this.#queues.values()) q.evictBehind(playhead, this.#opts.backBufferS);
  }

  destroy(): void {
    for (const q of this.#queues.values()) q.destroy();
    this.#queues.clear();
    this.#video.removeAttribute('src');
    this.#video.load();
  }
}

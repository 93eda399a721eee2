import { TagKind, type FlvTag } from '@onair/shared';

export interface GopCacheLimits {
  /** Bytes of frames kept since the last keyframe; past it the GOP is dropped until the next one. */
  maxBytes: number;
  /** Tags kept since the last keyframe. */
  maxTags: number;
}

export const DEFAULT_GOP_CACHE_LIMITS: GopCacheLimits = { maxBytes: 8 * 1024 * 1024, maxTags: 2000 };

/**
 * What a viewer joining a live stream needs to start at once: the last metadata, the codec
 * configurations, and every tag since the last keyframe (audio included, so both start together).
 */
export class GopCache<T extends FlvTag = FlvTag> {
  readonly #limits: GopCacheLimits;
  #metadata: T | undefined;
  #videoConfig: T | undefined;
  #audioConfig: T | undefined;
  #gop: T[] = [];
  #gopBytes = 0;
  #open = false;

  constructor(limits: Partial<GopCacheLimits> = {}) {
    this.#limits = { ...DEFAULT_GOP_CACHE_LIMITS, ...limits };
  }

  get gopBytes(): number {
    return this.#gopBytes;
  }

  push(tag: T, kind: TagKind): void {
    switch (kind) {
      case TagKind.Metadata:
        this.#metadata = tag;
        return;
      case TagKind.VideoConfig:
        this.#videoConfig = tag;
        return;
      case TagKind.AudioConfig:
        this.#audioConfig = tag;
        return;
      case TagKind.Keyframe:
        this.#gop = [tag];
        this.#gopBytes = tag.data.length;
        this.#open = true;
        return;
      case TagKind.Frame:
      case TagKind.Audio:
        if (!this.#open) return;
        if (this.#gop.length >= this.#limits.maxTags || this.#gopBytes + tag.data.length > this.#limits.maxBytes) {
          this.dropGop();
          return;
        }
        this.#gop.push(tag);
        this.#gopBytes += tag.data.length;
        return;
      case TagKind.Other:
        return;
    }
  }

  /** Metadata and configurations first, then the GOP in arrival order. */
  snapshot(): { headers: T[]; gop: T[] } {
    const headers: T[] = [];
    for (const t of [this.#metadata, this.#videoConfig, this.#audioConfig]) if (t !== undefined) headers.push(t);
    return { headers, gop: this.#gop.slice() };
  }

  /** Forgets everything: the next upstream session brings new configurations. */
  clear(): void {
    this.#metadata = this.#videoConfig = this.#audioConfig = undefined;
    this.dropGop();
  }

  /** Forgets the frames (the source stopped): a receiver joining now waits for the next keyframe. */
  dropGop(): void {
    this.#gop = [];
    this.#gopBytes = 0;
    this.#open = false;
  }
}

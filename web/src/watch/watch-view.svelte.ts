import { WATCH_WS_PATH, parseWatchTarget, watchTargetPath, type WatchTarget } from '@onair/shared';
import { WatchPlayer, type PlayerStats, type PlayerStatus } from './player/watch-player.js';

const PAGE_PATH = '/watch';

/** The watch target named by the page URL: `/watch?src=<rtmp URL>` or `/watch/<app>/<stream>`. */
export function pageTarget(loc: Pick<Location, 'pathname' | 'search'>): WatchTarget | undefined {
  return parseWatchTarget(PAGE_PATH, loc.pathname, loc.search);
}

/** What the watch page shows; the player's events land in `$state` fields. */
export class WatchView {
  readonly target: WatchTarget | undefined;
  status = $state.raw<PlayerStatus>({ state: 'connecting' });
  stats = $state.raw<PlayerStats | null>(null);
  muted = $state(true);
  volume = $state(1);
  showStats = $state(true);
  #player: WatchPlayer | undefined;

  /** `?latency=<seconds>`: the least distance behind the live edge; arrival jitter can raise it. */
  readonly latencyTargetS: number | undefined;

  constructor(loc: Pick<Location, 'pathname' | 'search' | 'host' | 'protocol'>) {
    this.target = pageTarget(loc);
    const latency = Number(new URLSearchParams(loc.search).get('latency') ?? NaN);
    this.latencyTargetS = Number.isFinite(latency) && latency >= 0.05 && latency <= 10 ? latency : undefined;
    if (this.target === undefined) this.status = { state: 'failed', reason: 'expected /watch?src=<rtmp:// URL> or /watch/<app>/<stream>' };
  }

  /** A name for the stream without its key: the host for an RTMP URL, app/stream locally. */
  get title(): string {
    const t = this.target;
    if (t === undefined) return 'onair — watch';
    if (t.kind === 'local') return `${t.app}/${t.stream}`;
    return /^rtmps?:\/\/([^/]+)/i.exec(t.url)?.[1] ?? 'stream';
  }

  /** Starts playing into `video`; returns the cleanup for `$effect`. */
  attach(video: HTMLVideoElement, loc: Pick<Location, 'host' | 'protocol'>): () => void {
    if (this.target === undefined) return () => {};
    const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
    let player: WatchPlayer;
    try {
      const min = this.latencyTargetS;
      const latency = min === undefined ? {} : { minTargetS: min, maxTargetS: Math.max(2, min) };
      player = new WatchPlayer(video, `${scheme}//${loc.host}${watchTargetPath(WATCH_WS_PATH, this.target)}`, { latency });
    } catch (err) {
      this.status = { state: 'failed', reason: err instanceof Error ? err.message : String(err) };
      return () => {};
    }
    this.#player = player;
    const offStatus = player.on('status', (s) => (this.status = s));
    const offStats = player.on('stats', (s) => (this.stats = s));
    return () => {
      offStatus();
      offStats();
      player.destroy();
      this.#player = undefined;
    };
  }

  get playing(): boolean {
    return this.#player !== undefined;
  }

  /** From a tap or click: play with sound (the browser allows it inside a user gesture). */
  userPlay(): void {
    this.muted = false;
    this.#player?.userPlay();
  }
}

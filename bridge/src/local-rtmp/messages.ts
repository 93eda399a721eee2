/**
 * The IPC contract between the bridge and the child process that runs the embedded RTMP server
 * (node-media-server). Both ends are ours, built from the same sources.
 */

/** argv[2] of the child, as JSON. Never put a stream key here: argv is visible to every user. */
export interface ChildConfig {
  /** Address the RTMP server listens on (node-media-server's `bind`). */
  host: string;
  /** Port the RTMP server listens on (0: any free one). */
  port: number;
  /** node-media-server's store directory, in one the parent made (the child removes both if the parent dies). */
  store: string;
}

/** Child → bridge. */
export type ChildMessage =
  /** Listening, on `port` (the configured one, or the one picked for 0). */
  | { type: 'ready'; port: number }
  | { type: 'listen-failed'; code: string; message: string }
  /** An uncaught error: the child exits with EXIT_FATAL right after. */
  | { type: 'fatal'; error: string }
  | { type: 'published'; app: string; stream: string; path: string }
  | { type: 'unpublished'; path: string }
  /** A publish or a play was refused and its connection closed (no stream name: it may be a key). */
  | { type: 'refused'; what: 'publish' | 'play'; client: string };

/** Bridge → child. */
export type ParentMessage =
  | { type: 'stop' }
  /**
   * The stream names allowed to publish in app `live` (null: any name in any app). Sent first,
   * before which the child does not listen, and again on every change: publishers whose name is
   * no longer allowed are disconnected.
   */
  | {
      type: 'publish-keys';
      keys: string[] | null;
      /** Names allowed to publish in app `live` from this machine only: the bridge's own (the studio's key). */
      localKeys: string[];
    };

/** The child's exit status after an uncaught error (EX_SOFTWARE). */
export const EXIT_FATAL = 70;
/** The child's exit status when its port cannot be bound. */
export const EXIT_LISTEN = 71;

/** The only app an encoder may publish to when publish keys are set. */
export const INGEST_APP = 'live';

export function isChildMessage(m: unknown): m is ChildMessage {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((k) => typeof k === 'string');

export function isParentMessage(m: unknown): m is ParentMessage {
  if (typeof m !== 'object' || m === null) return false;
  const { type, keys, localKeys } = m as { type?: unknown; keys?: unknown; localKeys?: unknown };
  if (type === 'stop') return true;
  return type === 'publish-keys' && (keys === null || isStrings(keys)) && isStrings(localKeys);
}

/**
 * Whether a publish of `app`/`name` is let in: any when the keys are not gated (null); else in app
 * `live` a publish key from anywhere, and one of the bridge's own keys only from this machine. A
 * watch link names its stream, which is the studio's key, so beyond loopback anyone holding a
 * watch link could otherwise publish with it while the studio is off air.
 */
export function mayPublish(app: string, name: string, fromThisMachine: boolean, keys: ReadonlySet<string> | null, localKeys: ReadonlySet<string>): boolean {
  if (keys === null) return true;
  if (app !== INGEST_APP) return false;
  return keys.has(name) || (fromThisMachine && localKeys.has(name));
}

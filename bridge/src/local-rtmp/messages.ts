/**
 * The IPC contract between the bridge and the child process that runs the embedded RTMP server
 * (node-media-server). Both ends are ours, built from the same sources.
 */

/** argv[2] of the child, as JSON. */
export interface ChildConfig {
  /** Loopback port the RTMP server listens on (0: any free one). */
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
  | { type: 'unpublished'; path: string };

/** Bridge → child. */
export type ParentMessage = { type: 'stop' };

/** The child's exit status after an uncaught error (EX_SOFTWARE). */
export const EXIT_FATAL = 70;
/** The child's exit status when its port cannot be bound. */
export const EXIT_LISTEN = 71;

export function isChildMessage(m: unknown): m is ChildMessage {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}

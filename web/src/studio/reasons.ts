import type { ErrorCode } from '@onair/shared';

/**
 * What a destination's reason means, in plain words with the fix: the bridge reports
 * `message [CODE]` (bridge/src/relay/destination-relay.ts #describe), after repeated refusals
 * `advice (message [CODE])`. The page shows the sentence and keeps the bridge's words as detail.
 */
export interface Explained {
  /** The sentence to show: what happened and what to do. */
  text: string;
  /** The bridge's own words, code included, for whoever needs them; absent when `text` is them. */
  detail?: string;
}

const SENTENCES: ReadonlyMap<ErrorCode, string> = new Map<ErrorCode, string>([
  ['RTMP_PUBLISH_BADNAME', "Stream key refused — copy it again from the platform's dashboard, and check that no other encoder is streaming with it."],
  ['RTMP_PUBLISH_FAILED', "The server would not take the stream — check the stream key in the platform's dashboard."],
  ['RTMP_CONNECT_REJECTED', 'The server turned the connection down — check the server URL, especially the part after the host (such as /app or /live2).'],
  ['RTMP_CONNECT_REFUSED', 'Nothing answers at that address — check the server URL and its port, and that the server is running.'],
  ['RTMP_CONNECT_FAILED', 'Could not reach the server — check the host name in the server URL and this computer’s internet connection.'],
  ['RTMP_DNS_TIMEOUT', 'The server’s name could not be looked up in time — check the host name and the internet connection.'],
  ['RTMP_CONNECT_TIMEOUT', 'The server did not answer in time — check the server URL and the internet connection.'],
  ['HANDSHAKE_FAILED', 'The server does not speak RTMP on that port — check rtmp:// or rtmps:// and the port in the server URL.'],
  ['TLS_HANDSHAKE_FAILED', 'The secure connection failed — check that the URL starts with rtmps:// and uses the platform’s host and port (usually 443).'],
  ['RTMP_BAD_URL', 'That server URL is not an rtmp:// or rtmps:// address — copy it again from the platform.'],
  ['DESTINATION_REFUSED', 'This bridge does not send to that address — use a public server, or start onair with --allow-private-destinations.'],
  ['RTMP_CONNECTION_LOST', 'The connection to the server dropped — reconnecting by itself.'],
  ['RTMP_CONNECTION_CLOSED', 'The server closed the connection — reconnecting; if it keeps happening, check the stream key.'],
  ['CONNECTION_CLOSED', 'The server closed the connection — reconnecting; if it keeps happening, check the stream key.'],
  ['RTMP_SEND_STALLED', 'The server stopped taking data — the upload may be too slow for this quality; try a lower bitrate.'],
  ['RTMP_ACK_STALLED', 'The server stopped acknowledging data — the upload may be too slow for this quality; try a lower bitrate.'],
  ['RTMP_CLOSE_TIMEOUT', 'The server did not confirm the end of the stream in time.'],
  ['RTMP_PROTOCOL', 'The server answered with something that is not valid RTMP — check the server URL.'],
  ['RELAY_LIMIT', 'The bridge is sending as many streams as it allows — remove a destination or end another stream.'],
  ['SESSION_LIMIT', 'The bridge has as many studios live as it allows — try again when one ends.'],
  ['ALREADY_LIVE', 'This studio is already live on the bridge.'],
  ['INTERNAL', 'Something went wrong inside the bridge — retrying; its log says more.'],
]);

const CODE = /\[([A-Z0-9_]+)\]\)?\s*$/;

/** The code at the end of a bridge reason, if any. */
export function reasonCode(reason: string): string | undefined {
  return CODE.exec(reason)?.[1];
}

/** A reason from the bridge (or the page) in plain words, with the fix. */
export function explainReason(reason: string): Explained {
  const code = reasonCode(reason);
  if (code === undefined) return { text: reason };
  const sentence = SENTENCES.get(code as ErrorCode) ?? (code.startsWith('TLS_') ? SENTENCES.get('TLS_HANDSHAKE_FAILED') : undefined);
  if (sentence !== undefined) return { text: sentence, detail: reason };
  // A code with no sentence yet: the bridge's own words without the bare code.
  return { text: reason.replace(CODE, '').replace(/\s*\($/, '').trim() || 'The destination stopped.', detail: reason };
}

/**
 * A destination a server sent elsewhere (a redirect at connect, reconnect requests), in a few
 * words for its status line: the host it publishes at and how many moves it made.
 */
export function describeMove(status: { movedTo?: string; moves?: number }): string | undefined {
  const moves = status.moves ?? 0;
  if (status.movedTo === undefined && moves === 0) return undefined;
  const times = moves === 0 ? '' : moves === 1 ? ' (1 move)' : ` (${moves} moves)`;
  if (status.movedTo === undefined) return `reconnected at the server's request${times}`;
  const host = /^rtmps?:\/\/([^/]+)/i.exec(status.movedTo)?.[1] ?? status.movedTo;
  return `moved to ${host}${times}`;
}

import {
  CloseCode,
  MAX_STUDIO_BINARY_BYTES,
  OnairError,
  STUDIO_PROTOCOL_VERSION,
  capReason,
  closeReason,
  parseStudioClientMessage,
  type StudioClientMessage,
  type StudioServerMessage,
} from '@onair/shared';
import type { WebSocket } from 'ws';
import type { SessionLink, StudioSession } from './studio-session.js';
import type { StudioSessions } from './studio-sessions.js';

export interface StudioSocketOptions {
  /** What the page should keep for resending, announced in `welcome`. */
  resendBufferMs: number;
  /** The bridge pings this often; a socket that misses two pongs in a row is dead. */
  pingIntervalMs: number;
  log?: (line: string) => void;
}

export const DEFAULT_PING_INTERVAL_MS = 5000;

/**
 * One studio WebSocket: `welcome`, then `start` (a new session) or `resume` (an existing one),
 * binary frames into that session, `gap` and `stop`. The socket only carries a session: when it
 * drops, the session waits for its page in the grace period. A page cannot send pings, so the
 * bridge does, and treats a socket that stops answering as gone (a half-open connection).
 */
export function serveStudioSocket(ws: WebSocket, client: string, sessions: StudioSessions, opts: StudioSocketOptions): void {
  let session: StudioSession | undefined;
  let alive = true;
  let closed = false;
  const send = (msg: StudioServerMessage): void => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
  };
  const link: SessionLink = {
    send,
    close: (code, reason) => {
      session = undefined;
      ws.close(code, closeReason(reason));
    },
  };
  const refuse = (code: CloseCode, err: unknown): void => {
    const e = err instanceof OnairError ? err : new OnairError('INTERNAL', err instanceof Error ? err.message : String(err));
    send({ type: 'error', code: e.code, message: capReason(e.message) });
    ws.close(code, closeReason(`${e.code}: ${e.message}`));
  };

  ws.on('error', () => ws.terminate());
  const pinger = setInterval(() => {
    if (!alive) {
      opts.log?.(`studio socket${session ? ` of session ${session.id}` : ''}: no answer to two pings; closing it`);
      ws.terminate();
      return;
    }
    alive = false;
    ws.ping();
  }, opts.pingIntervalMs);
  ws.on('pong', () => (alive = true));

  ws.on('close', () => {
    closed = true;
    clearInterval(pinger);
    session?.detach(link);
    session = undefined;
  });

  ws.on('message', (data, isBinary) => {
    if (closed) return;
    const raw = data as Buffer | Buffer[] | ArrayBuffer;
    const bytes = Array.isArray(raw) ? Buffer.concat(raw) : raw instanceof ArrayBuffer ? new Uint8Array(raw) : raw;
    if (isBinary) {
      const s = session;
      if (s === undefined) {
        refuse(CloseCode.PolicyViolation, new OnairError('BAD_MESSAGE', 'binary frame before start or resume'));
        return;
      }
      try {
        s.onFrame(link, bytes);
      } catch (err) {
        // The page's own data is broken: resending it would break again, so the session ends.
        refuse(CloseCode.InvalidData, err);
        s.end().catch(() => undefined);
      }
      return;
    }
    let msg: StudioClientMessage;
    try {
      msg = parseStudioClientMessage(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
    } catch (err) {
      refuse(CloseCode.PolicyViolation, err);
      return;
    }
    control(msg);
  });

  function control(msg: StudioClientMessage): void {
    switch (msg.type) {
      case 'start': {
        if (session !== undefined) {
          refuse(CloseCode.PolicyViolation, new OnairError('ALREADY_LIVE', 'already live: send stop before starting again'));
          return;
        }
        let created: ReturnType<StudioSessions['create']>;
        try {
          created = sessions.create(msg.destinations, client);
        } catch (err) {
          refuse(CloseCode.TryAgainLater, err);
          return;
        }
        session = created.session;
        session.attach(link);
        send({ type: 'session', id: session.id, token: created.token });
        return;
      }
      case 'resume': {
        if (session !== undefined) {
          refuse(CloseCode.PolicyViolation, new OnairError('ALREADY_LIVE', 'this socket already carries a session'));
          return;
        }
        let found: StudioSession;
        try {
          found = sessions.resume(msg.session, msg.token);
        } catch (err) {
          refuse(CloseCode.SessionEnded, err);
          return;
        }
        session = found;
        found.attach(link);
        opts.log?.(`studio session ${found.id}: resumed after frame ${found.received}`);
        send({ type: 'resumed', received: found.received });
        return;
      }
      case 'gap':
        if (session === undefined) refuse(CloseCode.PolicyViolation, new OnairError('BAD_MESSAGE', 'gap before start or resume'));
        else session.onGap(link, msg);
        return;
      case 'stop': {
        const s = session;
        if (s === undefined) return;
        s.stop(link).then(
          () => {
            if (session === s) session = undefined;
          },
          (err: unknown) => opts.log?.(`studio session ${s.id}: stop failed: ${String(err)}`),
        );
        return;
      }
    }
  }

  send({
    type: 'welcome',
    version: STUDIO_PROTOCOL_VERSION,
    maxBinaryBytes: MAX_STUDIO_BINARY_BYTES,
    graceMs: sessions.graceMs,
    resendBufferMs: opts.resendBufferMs,
  });
}

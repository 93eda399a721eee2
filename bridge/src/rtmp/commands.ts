import {
  DEFAULT_AMF0_LIMITS,
  OnairError,
  amf0Props,
  decodeAmf0,
  encodeAmf0,
  type Amf0Limits,
  type Amf0Value,
} from '@onair/shared';
import { MessageType } from './messages.js';

/** An AMF0 command message (RTMP spec §7.1.1, §7.2): name, transaction id, command object, arguments. */
export interface RtmpCommand {
  name: string;
  transactionId: number;
  commandObject: Amf0Value;
  args: Amf0Value[];
}

export function encodeCommand(cmd: RtmpCommand): Uint8Array {
  return encodeAmf0([cmd.name, cmd.transactionId, cmd.commandObject, ...cmd.args]);
}

function malformed(message: string, cause?: unknown): OnairError {
  return new OnairError('RTMP_PROTOCOL', message, cause === undefined ? undefined : { cause });
}

/**
 * The AMF0 values of a command or data message body. An AMF3 command (type 17) whose body
 * starts with a 0 byte is AMF0 after that byte (what AMF3 clients send).
 */
export function decodeAmf0Body(type: number, payload: Uint8Array, limits: Amf0Limits = DEFAULT_AMF0_LIMITS): Amf0Value[] {
  const body = (type === MessageType.CommandAmf3 || type === MessageType.DataAmf3) && payload[0] === 0 ? payload.subarray(1) : payload;
  try {
    return decodeAmf0(body, limits);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw malformed(`malformed AMF0 in message type ${type}: ${why}`, err);
  }
}

export function decodeCommand(type: number, payload: Uint8Array, limits?: Amf0Limits): RtmpCommand {
  const values = decodeAmf0Body(type, payload, limits);
  const [name, txn, commandObject, ...args] = values;
  if (typeof name !== 'string') throw malformed(`command message does not start with a name (got ${typeof name})`);
  // `_result(txn, null, undefined)` from SRS and a bare `onBWDone` with no transaction both occur.
  return {
    name,
    transactionId: typeof txn === 'number' ? txn : 0,
    commandObject: commandObject ?? null,
    args,
  };
}

export interface StatusInfo {
  level: string;
  code: string;
  description: string;
}

/** The info object of `onStatus` (the first argument) or of `_error`/`_result` replies. */
export function statusInfo(cmd: RtmpCommand): StatusInfo {
  const props = statusProps(cmd);
  return { level: text(props['level']), code: text(props['code']), description: text(props['description']) };
}

function statusProps(cmd: RtmpCommand): Record<string, Amf0Value> {
  return amf0Props(cmd.args[0] ?? null) ?? amf0Props(cmd.commandObject ?? null) ?? {};
}

function text(v: Amf0Value | undefined): string {
  return typeof v === 'string' ? v : '';
}

/** An rtmp:// or rtmps:// URL inside a sentence, up to the next space or quote. */
const URL_IN_TEXT = /rtmps?:\/\/[^\s"'<>]+/i;

/**
 * Where a `NetConnection.Connect.Rejected` answer to connect sends the client, if anywhere.
 * Wowza and SRS put it in `ex: { code: 302, redirect }` (SRS 4+ also `redirect2`, the whole URL
 * with the stream name, which we do not need: the name stays ours); some servers only write
 * the URL into the description, which counts when `ex.code` is 302 or the description says
 * "redirect" or "moved" (a rejection that merely names the URL it refused is no redirect).
 */
export function connectRedirect(cmd: RtmpCommand): string | undefined {
  const props = statusProps(cmd);
  if (!/^NetConnection\.Connect\.Rejected$/i.test(text(props['code']))) return undefined;
  const ex = amf0Props(props['ex'] ?? null);
  const redirect = ex === undefined ? '' : text(ex['redirect']);
  if (redirect !== '' && (ex?.['code'] === 302 || ex?.['code'] === undefined)) return redirect;
  const description = text(props['description']);
  if (ex?.['code'] !== 302 && !/redirect|moved/i.test(description)) return undefined;
  return URL_IN_TEXT.exec(description)?.[0];
}

/**
 * The `tcUrl` of an Enhanced RTMP v2 `NetConnection.Connect.ReconnectRequest` (absolute or
 * relative to the current one; '' when absent: reconnect to the same server).
 */
export function reconnectTcUrl(cmd: RtmpCommand): string {
  return text(statusProps(cmd)['tcUrl']);
}

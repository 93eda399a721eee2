import {
  DEFAULT_AMF0_LIMITS,
  OnairError,
  type ErrorCode,
  assert,
  encodeAmf0,
  type Amf0Object,
  type Amf0Value,
  type FlvTag,
} from '@onair/shared';
import { DEFAULT_PUBLISH_ACK_WINDOW } from './ack-window.js';
import { splitAggregate } from './aggregate.js';
import { ChunkReader, DEFAULT_CHUNK_READER_LIMITS, type ChunkReaderLimits } from './chunk-reader.js';
import { ChunkWriter, DEFAULT_OUT_CHUNK_SIZE } from './chunk-writer.js';
import {
  connectRedirect,
  decodeCommand,
  encodeCommand,
  reconnectTcUrl,
  statusInfo,
  type RtmpCommand,
  type StatusInfo,
} from './commands.js';
import { ClientHandshake } from './handshake.js';
import {
  ChunkStream,
  MessageType,
  PeerBandwidthLimit,
  UserControlEvent,
  acknowledgementMessage,
  decodeProtocolControl,
  setChunkSizeMessage,
  userControlMessage,
  windowAckSizeMessage,
  type RtmpMessage,
} from './messages.js';
import { redactKey, type RtmpUrl } from './url.js';

export interface RtmpLimits extends ChunkReaderLimits {
  /** Deepest AMF0 nesting accepted in commands and data messages. */
  maxAmfDepth: number;
}

export const DEFAULT_RTMP_LIMITS: Readonly<RtmpLimits> = {
  ...DEFAULT_CHUNK_READER_LIMITS,
  maxAmfDepth: DEFAULT_AMF0_LIMITS.maxDepth,
};

export type RtmpRole = 'publish' | 'play';

export type ClientPhase =
  | 'idle' // start() not called
  | 'handshake'
  | 'connecting' // connect sent, waiting for its _result
  | 'creating-stream' // createStream sent
  | 'ready' // publish with deferPublish: the stream exists, publish() not called yet
  | 'starting' // publish/play sent, waiting for NetStream.Publish.Start / Play.Start
  | 'live'
  | 'ending' // FCUnpublish/deleteStream sent, or the played stream ended
  | 'closed';

export type RtmpClientEvent =
  /** NetStream.Publish.Start or NetStream.Play.Start. */
  | { type: 'started'; info: StatusInfo }
  /** Play: an audio, video or script tag (onMetaData without its `@setDataFrame` wrapper). */
  | { type: 'tag'; tag: FlvTag }
  /** Any other onStatus or onFCPublish the server sent, for logs. */
  | { type: 'status'; info: StatusInfo }
  /** Play: the publisher stopped (UnpublishNotify, StreamEOF, Play.Stop, Play.Complete). */
  | { type: 'ended'; reason: string }
  /** The server's Acknowledgement: `sequence` is its count of bytes received, modulo 2^32. */
  | { type: 'acknowledgement'; sequence: number }
  /** Publish with deferPublish: the stream is created, publish() may be called. */
  | { type: 'ready' }
  /**
   * Publish, live: the server asks us to reconnect (Enhanced RTMP v2
   * NetConnection.Connect.ReconnectRequest), to `tcUrl` (absolute or relative; '' for the same).
   */
  | { type: 'reconnect-request'; tcUrl: string; description: string };

export interface RtmpClientSink {
  send(bytes: Uint8Array): void;
  event(event: RtmpClientEvent): void;
}

export interface RtmpClientCoreOptions {
  role: RtmpRole;
  url: RtmpUrl;
  limits?: Partial<RtmpLimits>;
  /** Outgoing chunk size, announced before connect. */
  chunkSize?: number;
  /** Play: the SetBufferLength sent after play, in ms. */
  bufferLengthMs?: number;
  /**
   * Window Acknowledgement Size announced to the server after connect: how many bytes it may
   * receive between two Acknowledgements. Publish: 128 KiB (acknowledgements are how a stalled
   * server shows); play: 2,500,000.
   */
  windowAckSize?: number;
  /**
   * Publish: stop after createStream (phase `ready`, event `ready`) until publish() is called,
   * so that a connection can be opened before the one it replaces has unpublished.
   */
  deferPublish?: boolean;
  /** C1's time field and random bytes; fixed values make transcripts reproducible. */
  handshakeEpochMs?: number;
  fillRandom?: (b: Uint8Array) => void;
}

const FLASH_VER = 'FMLE/3.0 (compatible; onair)';
const SET_DATA_FRAME = encodeAmf0(['@setDataFrame']);
const ON_META_DATA = encodeAmf0(['onMetaData']);
const PLAY_ENDED = new Set(['NetStream.Play.Stop', 'NetStream.Play.UnpublishNotify', 'NetStream.Play.Complete']);
/** nginx-rtmp: "Already publishing"; others for a key they refuse. Any case: some write `NetStream.publish.…`. */
const BAD_NAME = /^NetStream\.Publish\.BadName$/i;
/** A refusal whatever its level (some servers send `.Failed` or `.Denied` as a plain status). */
const REFUSED = /^NetStream\.Publish\.(Failed|Denied|Rejected|Unauthorized)$/i;
const RECONNECT_REQUEST = /^NetConnection\.Connect\.ReconnectRequest$/i;
/** Enhanced RTMP v2 `capsEx` bits (CapsExMask). */
const enum CapsEx {
  Reconnect = 0x01, // CapsExMask.Reconnect: handles NetConnection.Connect.ReconnectRequest
}

/**
 * `connect` refused with a redirect (ex.code 302, ex.redirect): RTMP_CONNECT_REJECTED for
 * whoever does not follow it, and where the server sends us for whoever does.
 */
export class RtmpRedirectError extends OnairError {
  /** The server's URL as sent: usually a tcUrl (`rtmp://host/app`), maybe relative. */
  readonly redirect: string;

  constructor(message: string, redirect: string) {
    super('RTMP_CONNECT_REJECTED', message);
    this.name = 'RtmpRedirectError';
    this.redirect = redirect;
  }
}

function startsWith(b: Uint8Array, prefix: Uint8Array): boolean {
  if (b.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (b[i] !== prefix[i]) return false;
  return true;
}

/** The first AMF0 value of a data message when it is a short string, without decoding the rest. */
function dataName(b: Uint8Array): string | undefined {
  if (b.length < 3 || b[0] !== 0x02) return undefined;
  const len = (b[1]! << 8) | b[2]!;
  if (len > 64 || b.length < 3 + len) return undefined;
  return String.fromCharCode(...b.subarray(3, 3 + len));
}

/**
 * Sans-I/O RTMP client connection for publish and play: bytes in through `receive`, bytes out
 * and events through the sink. Throws OnairError from `receive` when the connection must end.
 *
 * Publish: handshake → Set Chunk Size → connect → releaseStream, FCPublish, createStream (back to
 * back: nginx-rtmp and node-media-server never answer the first two) → publish → Publish.Start.
 * Play: handshake → Set Chunk Size → connect → Window Ack Size, createStream → play,
 * SetBufferLength → Play.Start, then tags.
 */
export class RtmpClientCore {
  readonly role: RtmpRole;
  readonly url: RtmpUrl;
  readonly stats = { bytesReceived: 0, bytesSent: 0, messagesSent: 0, messagesReceived: 0, acksSent: 0, acksReceived: 0 };
  readonly #sink: RtmpClientSink;
  readonly #opts: RtmpClientCoreOptions;
  readonly #amfLimits: { maxDepth: number };
  readonly #handshake = new ClientHandshake();
  readonly #reader: ChunkReader;
  readonly #writer = new ChunkWriter();
  readonly #pending = new Map<number, string>();
  #phase: ClientPhase = 'idle';
  #txn = 0;
  #streamId = 0;
  #peerWindow = 0;
  #lastAck = 0;
  #sentWindow = 0;
  /** The Window Acknowledgement Size this connection asks of the server. */
  readonly ackWindow: number;
  #ended = false;
  readonly #onMessage = (msg: RtmpMessage): void => {
    this.stats.messagesReceived++;
    this.#message(msg);
  };

  constructor(options: RtmpClientCoreOptions, sink: RtmpClientSink) {
    this.role = options.role;
    this.url = options.url;
    this.#opts = options;
    this.#sink = sink;
    const limits = { ...DEFAULT_RTMP_LIMITS, ...options.limits };
    this.#reader = new ChunkReader(limits);
    this.#amfLimits = { maxDepth: limits.maxAmfDepth };
    this.ackWindow = options.windowAckSize ?? (this.role === 'publish' ? DEFAULT_PUBLISH_ACK_WINDOW : 2_500_000);
  }

  get phase(): ClientPhase {
    return this.#phase;
  }

  /** The message stream id from createStream (0 before). */
  get streamId(): number {
    return this.#streamId;
  }

  /** Sends C0+C1. */
  start(): void {
    assert(this.#phase === 'idle', 'RtmpClientCore.start called twice');
    this.#phase = 'handshake';
    this.#sendRaw(this.#handshake.start(this.#opts.handshakeEpochMs ?? 0, this.#opts.fillRandom));
  }

  /** Takes bytes from the server. It keeps no view of `data`: the caller may reuse it at once. */
  receive(data: Uint8Array): void {
    if (this.#phase === 'closed' || data.length === 0) return;
    this.stats.bytesReceived += data.length;
    let rest = data;
    if (this.#phase === 'handshake') {
      const r = this.#handshake.push(data);
      if (r.c2) this.#sendRaw(r.c2);
      if (!r.done) return;
      rest = data.subarray(r.consumed);
      this.#connect();
    }
    if (rest.length > 0) {
      // Each message is acted on as soon as it is complete: a fault later in the same read
      // still lets what the server said before it (an error status, a close) through first.
      this.#reader.push(rest, this.#onMessage);
    }
    this.#maybeAck();
  }

  /** Publish: sends one FLV tag as an RTMP message on the published stream. */
  sendTag(tag: FlvTag): void {
    assert(this.role === 'publish', 'sendTag on a play connection');
    assert(this.#phase === 'live', `sendTag in phase ${this.#phase}`);
    let csid: number = ChunkStream.Data;
    let payload = tag.data;
    if (tag.type === MessageType.Audio) csid = ChunkStream.Audio;
    else if (tag.type === MessageType.Video) csid = ChunkStream.Video;
    else if (tag.type === MessageType.DataAmf0 && startsWith(payload, ON_META_DATA)) {
      // Servers store metadata for later players only when it arrives as @setDataFrame.
      const wrapped = new Uint8Array(SET_DATA_FRAME.length + payload.length);
      wrapped.set(SET_DATA_FRAME);
      wrapped.set(payload, SET_DATA_FRAME.length);
      payload = wrapped;
    }
    this.#send({ csid, type: tag.type, timestamp: tag.timestamp, streamId: this.#streamId, payload });
  }

  /** Publish with deferPublish, in phase `ready`: sends publish (NetStream.Publish.Start follows). */
  publish(): void {
    assert(this.#phase === 'ready', `publish in phase ${this.#phase}`);
    this.#command('publish', [this.url.streamName, 'live'], null, true);
    this.#phase = 'starting';
  }

  /** Ends the stream politely: FCUnpublish + deleteStream (publish) or deleteStream (play). */
  finish(): void {
    if (this.#phase === 'ending' || this.#phase === 'closed') return;
    if (this.#phase === 'idle' || this.#phase === 'handshake') {
      this.#phase = 'closed';
      return;
    }
    if (this.#streamId !== 0) {
      if (this.role === 'publish') this.#command('FCUnpublish', [this.url.streamName]);
      this.#command('deleteStream', [this.#streamId]);
    }
    this.#phase = 'ending';
  }

  /**
   * The error the peer closing the connection now means, or undefined when a close is expected
   * (after finish(), or after the played stream ended).
   */
  peerClosed(): OnairError | undefined {
    const phase = this.#phase;
    this.#phase = 'closed';
    const what = this.role === 'publish' ? 'NetStream.Publish.Start' : 'NetStream.Play.Start';
    switch (phase) {
      case 'idle':
      case 'handshake':
        return new OnairError(
          'HANDSHAKE_FAILED',
          `server closed the connection during the RTMP handshake${this.url.protocol === 'rtmp' ? ' (if it speaks RTMPS, use rtmps://)' : ''}`,
        );
      case 'connecting':
        return new OnairError('RTMP_CONNECT_REJECTED', 'server closed the connection during connect: is the app name right?');
      case 'creating-stream':
      case 'ready':
      case 'starting':
        return new OnairError(
          this.role === 'publish' ? 'RTMP_PUBLISH_FAILED' : 'RTMP_PLAY_FAILED',
          `server closed the connection before ${what}: is the stream name or key right?`,
        );
      case 'live':
        if (this.#ended) return undefined;
        return new OnairError('RTMP_CONNECTION_LOST', 'server closed the connection');
      default:
        return undefined;
    }
  }

  #error(code: ErrorCode, message: string): OnairError {
    return new OnairError(code, redactKey(message, this.url));
  }

  #sendRaw(bytes: Uint8Array): void {
    this.stats.bytesSent += bytes.length;
    this.#sink.send(bytes);
  }

  #send(msg: RtmpMessage): void {
    this.stats.messagesSent++;
    this.#sendRaw(this.#writer.encode(msg));
  }

  #command(name: string, args: Amf0Value[], commandObject: Amf0Value = null, onStream = false): number {
    const transactionId = ++this.#txn;
    this.#pending.set(transactionId, name);
    this.#send({
      csid: onStream ? ChunkStream.StreamCommand : ChunkStream.Command,
      type: MessageType.CommandAmf0,
      timestamp: 0,
      streamId: onStream ? this.#streamId : 0,
      payload: encodeCommand({ name, transactionId, commandObject, args }),
    });
    return transactionId;
  }

  #connect(): void {
    const size = this.#opts.chunkSize ?? DEFAULT_OUT_CHUNK_SIZE;
    this.#send(setChunkSizeMessage(size));
    this.#writer.setChunkSize(size);
    const { app, tcUrl } = this.url;
    const obj: Amf0Object = { app, type: 'nonprivate', flashVer: FLASH_VER, swfUrl: tcUrl, tcUrl };
    if (this.role === 'play') {
      Object.assign(obj, { fpad: false, capabilities: 15, audioCodecs: 0x0fff, videoCodecs: 0xfc, videoFunction: 1 });
    } else {
      // Enhanced RTMP v2: servers that can move a publisher ask with a reconnect request.
      obj['capsEx'] = CapsEx.Reconnect;
    }
    this.#txn = 0;
    this.#command('connect', [], obj);
    this.#phase = 'connecting';
  }

  #announceWindow(size: number): void {
    if (size === this.#sentWindow) return;
    this.#sentWindow = size;
    this.#send(windowAckSizeMessage(size));
  }

  #maybeAck(): void {
    if (this.#peerWindow > 0 && this.stats.bytesReceived - this.#lastAck >= this.#peerWindow / 2) {
      this.#lastAck = this.stats.bytesReceived;
      this.stats.acksSent++;
      this.#send(acknowledgementMessage(this.stats.bytesReceived % 2 ** 32));
    }
  }

  #message(msg: RtmpMessage): void {
    switch (msg.type) {
      case MessageType.SetChunkSize:
      case MessageType.Abort:
        return; // the reader applied them
      case MessageType.Acknowledgement:
      case MessageType.WindowAckSize:
      case MessageType.SetPeerBandwidth:
      case MessageType.UserControl:
        this.#control(msg);
        return;
      case MessageType.CommandAmf0:
      case MessageType.CommandAmf3:
        this.#commandMessage(decodeCommand(msg.type, msg.payload, this.#amfLimits));
        return;
      case MessageType.Audio:
      case MessageType.Video:
        this.#tag(msg.type, msg.timestamp, msg.payload);
        return;
      case MessageType.DataAmf0:
      case MessageType.DataAmf3:
        this.#data(msg);
        return;
      case MessageType.Aggregate:
        if (this.role !== 'play') return;
        for (const tag of splitAggregate(msg.payload, msg.timestamp)) {
          if (tag.type === MessageType.DataAmf0) this.#data({ ...msg, type: tag.type, timestamp: tag.timestamp, payload: tag.data });
          else if (tag.type === MessageType.Audio || tag.type === MessageType.Video) this.#tag(tag.type, tag.timestamp, tag.data);
          // Any other type has no place in an aggregate of FLV tags, and none downstream.
        }
        return;
      default:
        return; // shared objects and unknown types carry nothing a client needs
    }
  }

  #control(msg: RtmpMessage): void {
    const c = decodeProtocolControl(msg);
    if (!c) return;
    if (c.type === MessageType.Acknowledgement) {
      this.stats.acksReceived++;
      this.#sink.event({ type: 'acknowledgement', sequence: c.sequence });
    } else if (c.type === MessageType.WindowAckSize) {
      this.#peerWindow = c.size;
    } else if (c.type === MessageType.SetPeerBandwidth) {
      // RTMP spec §5.4.5: answer with our window size if it differs from the one last sent. A
      // publisher keeps its own small window: the server's acknowledgements are its stall alarm.
      if (c.size > 0 && c.limit !== PeerBandwidthLimit.Dynamic) this.#announceWindow(this.role === 'publish' ? this.ackWindow : c.size);
    } else if (c.type === MessageType.UserControl) {
      if (c.event === UserControlEvent.PingRequest) {
        this.#send(userControlMessage(UserControlEvent.PingResponse, c.value));
      } else if (c.event === UserControlEvent.StreamEOF && this.role === 'play' && c.value === this.#streamId && this.#streamId !== 0) {
        this.#end('StreamEOF');
      }
    }
  }

  #end(reason: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#sink.event({ type: 'ended', reason });
  }

  #tag(type: number, timestamp: number, data: Uint8Array): void {
    if (this.role !== 'play' || this.#ended) return;
    this.#sink.event({ type: 'tag', tag: { type, timestamp, data } });
  }

  #data(msg: RtmpMessage): void {
    if (this.role !== 'play') return;
    let payload = msg.type === MessageType.DataAmf3 && msg.payload[0] === 0 ? msg.payload.subarray(1) : msg.payload;
    const name = dataName(payload);
    if (name === '|RtmpSampleAccess' || name === 'onStatus') return;
    if (name === '@setDataFrame') payload = payload.subarray(SET_DATA_FRAME.length);
    if (payload.length === 0) return;
    this.#tag(MessageType.DataAmf0, msg.timestamp, payload);
  }

  #commandMessage(cmd: RtmpCommand): void {
    switch (cmd.name) {
      case '_result':
        this.#result(cmd);
        return;
      case '_error':
        this.#replyError(cmd);
        return;
      case 'onStatus':
        this.#status(cmd, statusInfo(cmd));
        return;
      case 'onFCPublish':
      case 'onFCUnpublish':
        this.#sink.event({ type: 'status', info: statusInfo(cmd) });
        return;
      case 'close':
        throw this.#error('RTMP_CONNECTION_CLOSED', `server sent close${describe(statusInfo(cmd))}`);
      default:
        return; // onBWDone, _checkbw and other calls need no answer
    }
  }

  #result(cmd: RtmpCommand): void {
    const name = this.#pending.get(cmd.transactionId);
    if (name === undefined) return;
    this.#pending.delete(cmd.transactionId);
    if (name === 'connect' && this.#phase === 'connecting') {
      const info = statusInfo(cmd);
      if (info.level === 'error') throw this.#error('RTMP_CONNECT_REJECTED', `connect rejected${describe(info)}`);
      this.#announceWindow(this.ackWindow);
      if (this.role === 'publish') {
        this.#command('releaseStream', [this.url.streamName]);
        this.#command('FCPublish', [this.url.streamName]);
      }
      this.#command('createStream', []);
      this.#phase = 'creating-stream';
    } else if (name === 'createStream' && this.#phase === 'creating-stream') {
      const id = cmd.args[0];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 0xffffffff) {
        throw this.#error('RTMP_PROTOCOL', `createStream answered with stream id ${String(id)}`);
      }
      this.#streamId = id;
      if (this.role === 'publish') {
        if (this.#opts.deferPublish) {
          this.#phase = 'ready';
          this.#sink.event({ type: 'ready' });
          return;
        }
        this.#command('publish', [this.url.streamName, 'live'], null, true);
      } else {
        this.#command('play', [this.url.streamName, -2000], null, true);
        this.#send(userControlMessage(UserControlEvent.SetBufferLength, id, this.#opts.bufferLengthMs ?? 3000));
      }
      this.#phase = 'starting';
    }
  }

  #replyError(cmd: RtmpCommand): void {
    const name = this.#pending.get(cmd.transactionId);
    if (name === undefined) return;
    this.#pending.delete(cmd.transactionId);
    const info = describe(statusInfo(cmd));
    switch (name) {
      case 'connect':
        throw this.#rejected(cmd, info);
      case 'createStream':
      case 'publish':
      case 'play':
        if (this.role === 'publish' && BAD_NAME.test(statusInfo(cmd).code)) throw this.#error('RTMP_PUBLISH_BADNAME', `${name} refused${info}`);
        throw this.#error(this.role === 'publish' ? 'RTMP_PUBLISH_FAILED' : 'RTMP_PLAY_FAILED', `${name} failed${info}`);
      default:
        return; // some servers answer releaseStream/FCPublish for unknown streams with _error
    }
  }

  /** connect refused: a redirect when the server names where to go. */
  #rejected(cmd: RtmpCommand, info: string): OnairError {
    const redirect = connectRedirect(cmd);
    if (redirect === undefined) return this.#error('RTMP_CONNECT_REJECTED', `connect rejected by the server${info}`);
    return new RtmpRedirectError(redactKey(`connect rejected by the server${info}, redirected to ${redirect}`, this.url), redirect);
  }

  #status(cmd: RtmpCommand, info: StatusInfo): void {
    const { code } = info;
    // SRS refuses connect with an onStatus, not an _error (a redirect among them).
    if (this.#phase === 'connecting' && info.level === 'error') throw this.#rejected(cmd, describe(info));
    if (this.role === 'publish') {
      if (RECONNECT_REQUEST.test(code)) {
        if (this.#phase === 'live') this.#sink.event({ type: 'reconnect-request', tcUrl: reconnectTcUrl(cmd), description: info.description });
        return;
      }
      if (code === 'NetStream.Publish.Start') {
        if (this.#phase === 'starting') {
          this.#phase = 'live';
          this.#sink.event({ type: 'started', info });
        }
        return;
      }
      if (this.#phase === 'ending') return this.#sink.event({ type: 'status', info });
      if (BAD_NAME.test(code)) throw this.#error('RTMP_PUBLISH_BADNAME', `publish refused: ${explain(info)}`);
      if (info.level === 'error' || REFUSED.test(code)) throw this.#error('RTMP_PUBLISH_FAILED', `publish failed: ${explain(info)}`);
    } else {
      if (code === 'NetStream.Play.Start') {
        if (this.#phase === 'starting') {
          this.#phase = 'live';
          this.#sink.event({ type: 'started', info });
        }
        return;
      }
      if (PLAY_ENDED.has(code)) {
        this.#end(code);
        return;
      }
      if (info.level === 'error' && this.#phase !== 'ending') throw this.#error('RTMP_PLAY_FAILED', `play failed: ${explain(info)}`);
    }
    this.#sink.event({ type: 'status', info });
  }
}

/** `description (code)`, for onStatus errors. */
function explain(info: StatusInfo): string {
  if (!info.description) return info.code || 'onStatus error';
  return info.code ? `${info.description} (${info.code})` : info.description;
}

function describe(info: StatusInfo): string {
  const parts = [info.code, info.description].filter((s) => s !== '');
  return parts.length ? ` (${parts.join(': ')})` : '';
}

import { OnairError } from '@onair/shared';

/** RTMP message type ids (RTMP spec §5.4, §7.1). */
export const enum MessageType {
  SetChunkSize = 1, // Protocol Control Message 1
  Abort = 2, // Protocol Control Message 2
  Acknowledgement = 3, // Protocol Control Message 3
  UserControl = 4, // User Control Message (§6.2)
  WindowAckSize = 5, // Protocol Control Message 5
  SetPeerBandwidth = 6, // Protocol Control Message 6
  Audio = 8, // Audio Message
  Video = 9, // Video Message
  DataAmf3 = 15, // Data Message, AMF3
  SharedObjectAmf3 = 16, // Shared Object Message, AMF3
  CommandAmf3 = 17, // Command Message, AMF3
  DataAmf0 = 18, // Data Message, AMF0
  SharedObjectAmf0 = 19, // Shared Object Message, AMF0
  CommandAmf0 = 20, // Command Message, AMF0
  Aggregate = 22, // Aggregate Message
}

/** User Control event types (RTMP spec §7.1.7). */
export const enum UserControlEvent {
  StreamBegin = 0, // Stream Begin
  StreamEOF = 1, // Stream EOF
  StreamDry = 2, // StreamDry
  SetBufferLength = 3, // SetBuffer Length
  StreamIsRecorded = 4, // StreamIs Recorded
  PingRequest = 6, // PingRequest
  PingResponse = 7, // PingResponse
}

/** Set Peer Bandwidth limit types (RTMP spec §5.4.5). */
export const enum PeerBandwidthLimit {
  Hard = 0,
  Soft = 1,
  Dynamic = 2,
}

/**
 * Chunk stream ids onair sends on. Only 2–8: nginx-rtmp drops chunk stream ids at or above
 * its `max_streams` (32) and several readers mishandle the 2- and 3-byte basic headers.
 */
export const enum ChunkStream {
  Control = 2, // protocol control and user control messages (spec: csid 2, msid 0)
  Command = 3, // NetConnection commands
  Audio = 4,
  Data = 5,
  Video = 6,
  StreamCommand = 8, // NetStream commands (publish, play, deleteStream)
}

/** One complete RTMP message. `timestamp` is absolute, in ms, modulo 2^32. */
export interface RtmpMessage {
  csid: number;
  type: number;
  timestamp: number;
  streamId: number;
  payload: Uint8Array;
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0);
  return b;
}

function control(type: MessageType, payload: Uint8Array): RtmpMessage {
  return { csid: ChunkStream.Control, type, timestamp: 0, streamId: 0, payload };
}

export function setChunkSizeMessage(size: number): RtmpMessage {
  // The top bit is reserved and must be zero (§5.4.1).
  return control(MessageType.SetChunkSize, u32(size & 0x7fffffff));
}

export function acknowledgementMessage(sequence: number): RtmpMessage {
  return control(MessageType.Acknowledgement, u32(sequence));
}

export function windowAckSizeMessage(size: number): RtmpMessage {
  return control(MessageType.WindowAckSize, u32(size));
}

export function setPeerBandwidthMessage(size: number, limit: PeerBandwidthLimit): RtmpMessage {
  const b = new Uint8Array(5);
  new DataView(b.buffer).setUint32(0, size >>> 0);
  b[4] = limit;
  return control(MessageType.SetPeerBandwidth, b);
}

/** A User Control message: event type then its 4-byte (or, for SetBufferLength, 8-byte) data. */
export function userControlMessage(event: UserControlEvent, value: number, value2?: number): RtmpMessage {
  const b = new Uint8Array(value2 === undefined ? 6 : 10);
  const v = new DataView(b.buffer);
  v.setUint16(0, event);
  v.setUint32(2, value >>> 0);
  if (value2 !== undefined) v.setUint32(6, value2 >>> 0);
  return control(MessageType.UserControl, b);
}

export type ProtocolControl =
  | { type: MessageType.SetChunkSize; size: number }
  | { type: MessageType.Abort; csid: number }
  | { type: MessageType.Acknowledgement; sequence: number }
  | { type: MessageType.WindowAckSize; size: number }
  | { type: MessageType.SetPeerBandwidth; size: number; limit: number }
  | { type: MessageType.UserControl; event: number; value: number; value2: number | undefined; data: Uint8Array };

function short(type: number, need: number, have: number): OnairError {
  return new OnairError('RTMP_PROTOCOL', `protocol control message type ${type} of ${have} bytes, need ${need}`);
}

/** Decodes a protocol control or user control message, or returns undefined for other types. */
export function decodeProtocolControl(msg: RtmpMessage): ProtocolControl | undefined {
  const p = msg.payload;
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  switch (msg.type) {
    case MessageType.SetChunkSize:
      if (p.length < 4) throw short(msg.type, 4, p.length);
      return { type: msg.type, size: v.getUint32(0) & 0x7fffffff };
    case MessageType.Abort:
      if (p.length < 4) throw short(msg.type, 4, p.length);
      return { type: msg.type, csid: v.getUint32(0) };
    case MessageType.Acknowledgement:
      if (p.length < 4) throw short(msg.type, 4, p.length);
      return { type: msg.type, sequence: v.getUint32(0) };
    case MessageType.WindowAckSize:
      if (p.length < 4) throw short(msg.type, 4, p.length);
      return { type: msg.type, size: v.getUint32(0) };
    case MessageType.SetPeerBandwidth:
      if (p.length < 5) throw short(msg.type, 5, p.length);
      return { type: msg.type, size: v.getUint32(0), limit: p[4]! };
    case MessageType.UserControl:
      if (p.length < 2) throw short(msg.type, 2, p.length);
      return {
        type: msg.type,
        event: v.getUint16(0),
        value: p.length >= 6 ? v.getUint32(2) : 0,
        value2: p.length >= 10 ? v.getUint32(6) : undefined,
        data: p.subarray(2),
      };
    default:
      return undefined;
  }
}

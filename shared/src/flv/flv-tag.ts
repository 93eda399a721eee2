/** FLV TagType values (FLV spec v10.1 §E.4.1); they equal the RTMP message type ids. */
export const enum FlvTagType {
  Audio = 8, // AUDIODATA
  Video = 9, // VIDEODATA
  Script = 18, // SCRIPTDATA
}

/**
 * One FLV tag. `data` is the tag body, byte for byte the payload of the RTMP message of the
 * same type. `timestamp` is in milliseconds, all 32 bits (Timestamp + TimestampExtended).
 */
export interface FlvTag {
  type: number;
  timestamp: number;
  data: Uint8Array;
}

/** Signature, version, flags and DataOffset (FLV spec §E.2). */
export const FLV_HEADER_SIZE = 9;
/** TagType .. StreamID (FLV spec §E.4.1). */
export const FLV_TAG_HEADER_SIZE = 11;
/** The u32 PreviousTagSize after every tag. */
export const FLV_PREVIOUS_TAG_SIZE = 4;
/** DataSize is a u24. */
export const FLV_MAX_BODY_SIZE = 0xffffff;

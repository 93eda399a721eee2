import { BitWriter } from '../bytes/bitstream.js';
import { AacObjectType, buildAudioSpecificConfig } from '../codec/aac.js';
import { buildAvcC } from '../codec/avc.js';

/**
 * Stand-ins for a track the stream announced but has not configured yet. MSE plays only the
 * time every SourceBuffer holds, so a video track waiting for its first keyframe would hold the
 * sound back too (nginx-rtmp sends a new player audio at once and video from the next keyframe,
 * up to a whole GOP later). A black picture or silence fills the track until its real media
 * starts, and the real configuration then replaces the stand-in's like any mid-stream change.
 */

function hex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/**
 * A black 128×72 picture, Constrained Baseline level 1.0: made by x264 from ffmpeg's
 * `color=black:size=128x72` (`-profile:v baseline -x264-params keyint=1:ref=1`, its SEI removed).
 * Two IDR slices that differ only in idr_pic_id: consecutive IDR pictures must not share one
 * (H.264 7.4.3), so fill frames alternate between them and each stands alone.
 */
const BLACK_SPS = hex('6742c00adc20bf970110000003001000000303c0f12278');
const BLACK_PPS = hex('68ce0f2c80');
const BLACK_IDR = [
  hex('65888404bc98a00038a3272727272727275d75d75d75d75d75d75d75d75d75d75d75d75d75d75d75d780'),
  hex('658882013f2628000eefc9c9c9c9c9c9c9d75d75d75d75d75d75d75d75d75d75d75d75d75d75d75d75e0'),
] as const;

export const BLACK_FRAME_WIDTH = 128;
export const BLACK_FRAME_HEIGHT = 72;

/** The avcC of the black picture. */
export function blackFrameAvcC(): Uint8Array {
  return buildAvcC({ sps: [BLACK_SPS], pps: [BLACK_PPS] });
}

/** Fill frame `n` as one AVCC sample (4-byte length prefix): an IDR picture, black. */
export function blackFrame(n: number): Uint8Array {
  const nal = BLACK_IDR[n & 1]!;
  const out = new Uint8Array(4 + nal.length);
  new DataView(out.buffer).setUint32(0, nal.length);
  out.set(nal, 4);
  return out;
}

const enum AacElement {
  Sce = 0, // ID_SCE, ISO/IEC 14496-3 table 4.85
  Cpe = 1, // ID_CPE
  End = 7, // ID_END
}

/**
 * One silent AAC-LC raw_data_block (ISO/IEC 14496-3 4.4.2.1) for 1 or 2 channels: every channel
 * with max_sfb 0, so no band carries a coefficient. Nothing in it depends on the sample rate.
 */
export function silentAacFrame(channels: 1 | 2): Uint8Array {
  const w = new BitWriter(8);
  // ics_info(): ics_reserved_bit, window_sequence ONLY_LONG, window_shape, max_sfb 0,
  // predictor_data_present 0.
  const icsInfo = (): void => {
    w.bits(1, 0).bits(2, 0).bits(1, 0).bits(6, 0).bits(1, 0);
  };
  // The rest of individual_channel_stream() with no bands: pulse, TNS and gain control absent.
  const noTools = (): void => {
    w.bits(1, 0).bits(1, 0).bits(1, 0);
  };
  if (channels === 1) {
    w.bits(3, AacElement.Sce).bits(4, 0); // element_instance_tag
    w.bits(8, 0); // global_gain
    icsInfo();
    noTools();
  } else {
    w.bits(3, AacElement.Cpe).bits(4, 0).bits(1, 1); // common_window
    icsInfo();
    w.bits(2, 0); // ms_mask_present
    for (let ch = 0; ch < 2; ch++) {
      w.bits(8, 0);
      noTools();
    }
  }
  w.bits(3, AacElement.End);
  return w.finish();
}

/** The AudioSpecificConfig of the silence: AAC-LC at `sampleRate`, 1 or 2 channels. */
export function silenceConfig(sampleRate: number, channels: 1 | 2): Uint8Array {
  return buildAudioSpecificConfig({ objectType: AacObjectType.Lc, sampleRate, channels });
}

/** What the studio page reads from the bridge at load (`GET /api/config`). */
export const CONFIG_PATH = '/api/config';

export interface StudioConfig {
  /** The embedded RTMP server, offered as the default destination; null when it is off. */
  localRtmp: { url: string; key: string } | null;
}

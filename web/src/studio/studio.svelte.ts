import { CONFIG_PATH, MAX_DESTINATIONS, STUDIO_WS_PATH, type DestinationStatus, type StudioConfig } from '@onair/shared';
import { detectEncoders, detectPage, reportCapabilities, type Capabilities } from './capabilities.js';
import { createFeed, type Feed } from './capture.js';
import { Destinations } from './destinations.svelte.js';
import { Mixer, type AudioOutput } from './mixer/mixer.svelte.js';
import type { MicProcessing } from './mixer/mixer-store.js';
import { AUDIO, DEFAULT_PRESET_ID, H264_PROFILES, KEYFRAME_INTERVAL_S, codecsFor, presetById, type H264Profile, type OutputQuality } from './presets.js';
import { recordingName } from './recorder/opfs.js';
import type { RecorderStatus } from './recorder/recorder.js';
import { Recordings } from './recorder/recordings.svelte.js';
import { ProgramMonitor } from './compositor/program-monitor.js';
import { Scenes } from './scenes.svelte.js';
import { Shortcuts } from './shortcuts.svelte.js';
import type { BridgeLinkState, EncodeSettings, EncodeStats, FromWorker, LiveTarget, RecordingState, ToWorker } from './worker-protocol.js';
import EncodeWorker from './encode.worker.ts?worker';

export type Phase = 'idle' | 'starting' | 'live' | 'stopping';
export type RecordPhase = 'off' | 'starting' | 'on' | 'stopping';
export type VideoSource = 'camera' | 'screen';

/** One second of the stats graphs. */
export interface StatsSample {
  bitrate: number;
  fps: number;
  /** Frames dropped during that second, for any reason. */
  dropped: number;
}

/** How much the stats graphs show: the worker posts stats once a second. */
export const HISTORY_SECONDS = 60;

const PRESET_STORAGE_KEY = 'onair.preset.v1';
/** Shown on every destination while the page's WebSocket to the bridge is down. */
export const RECONNECTING_REASON = 'reconnecting to the bridge';

/** Everything the studio page shows and does: devices, preview, settings, going live. */
export class Studio {
  cameras = $state.raw<MediaDeviceInfo[]>([]);
  microphones = $state.raw<MediaDeviceInfo[]>([]);
  cameraId = $state('');
  microphoneId = $state('');
  source = $state<VideoSource>('camera');
  cameraOn = $state(true);
  presetId = $state(DEFAULT_PRESET_ID);
  profile = $state<H264Profile>('auto');
  /** Custom video bitrate in kbps, or null for the preset's. */
  customKbps = $state<number | null>(null);
  /** "Adapt to the network": the video bitrate follows the uplink to the bridge, up to the choice. */
  adaptBitrate = $state(true);
  phase = $state<Phase>('idle');
  error = $state<string | null>(null);
  stats = $state.raw<EncodeStats | null>(null);
  statuses = $state.raw<Record<string, DestinationStatus>>({});
  received = $state.raw<{ bytes: number; tags: number } | null>(null);
  /** The encode worker's WebSocket to the bridge. */
  link = $state.raw<BridgeLinkState>({ state: 'connecting' });
  localRtmp = $state.raw<StudioConfig['localRtmp']>(null);
  /**
   * "Measure latency": the encode worker draws the latency clock into the video. Not remembered,
   * so a reload never puts the code on a broadcast unasked.
   */
  measureLatency = $state(false);
  /** What this browser can do, once known: a reason it cannot go live at all, and notes. */
  blocking = $state<string | undefined>(undefined);
  notes = $state.raw<string[]>([]);
  /** The shared screen came without sound. */
  screenSilent = $state(false);
  /** The page is hidden (another tab in front, a minimised window). */
  hidden = $state(false);
  backgroundCapture = $state(true);
  readonly destinations = new Destinations();
  /** The audio: every source through its gain, mute and meter into the one track the encoder gets. */
  readonly mixer = new Mixer();
  readonly shortcuts = new Shortcuts();
  /** The last HISTORY_SECONDS of stats, oldest first, for the graphs. */
  history = $state.raw<StatsSample[]>([]);
  /** When the stream went live (Date.now()), null off air. */
  liveSince = $state<number | null>(null);
  /** When the destinations' statuses arrived, to count their retry down. */
  statusesAt = $state(0);
  /** Date.now(), ticking while the page is open: elapsed time and countdowns follow it. */
  now = $state(Date.now());
  statsOpen = $state(true);
  /** The recording, independent of the stream. */
  recording = $state<RecordPhase>('off');
  recordStatus = $state.raw<RecorderStatus | null>(null);
  recordError = $state<string | null>(null);
  /** Recordings kept in OPFS: the last ones, and any a closed tab or a crash left unfinished. */
  readonly recordings = new Recordings();
  /** The encode pipeline runs (live, recording, or both): what it was opened with cannot change. */
  encoding = $state(false);
  readonly scenes = new Scenes((msg, transfer) => this.#post(msg, transfer));
  /** The program composed on the page for the preview and the scene thumbnails. */
  readonly monitor = new ProgramMonitor(this.scenes.program);

  preset = $derived(presetById(this.presetId));
  videoBitrate = $derived(this.customKbps !== null && this.customKbps > 0 ? this.customKbps * 1000 : this.preset.bitrate);
  live = $derived(this.phase === 'live' || this.phase === 'starting');
  /** What goes out, as platform limits see it. */
  quality: OutputQuality = $derived({
    width: this.preset.width,
    height: this.preset.height,
    fps: this.preset.fps,
    videoBitrate: this.videoBitrate,
    keyframeIntervalS: KEYFRAME_INTERVAL_S,
    sampleRate: AUDIO.sampleRate,
  });

  #camera: MediaStream | null = null;
  #mic: MediaStream | null = null;
  #screen: MediaStream | null = null;
  #worker: Worker | undefined;
  #feed: Feed | undefined;
  /** The video tracks the feed was made from: a new feed only when they change. */
  #fedVideo: { camera?: MediaStreamTrack; screen?: MediaStreamTrack } = {};
  #liveIds: string[] = [];
  #tick: ReturnType<typeof setInterval> | undefined;

  async init(): Promise<void> {
    const page = detectPage();
    // Until the encoders are asked (after the camera opens), assume they are there.
    this.#report({ ...page, h264: 'unknown', aac: 'wasm' });
    this.backgroundCapture = page.backgroundCapture;
    this.hidden = document.visibilityState === 'hidden';
    document.addEventListener('visibilitychange', this.#onVisibility);
    // The AudioContext may only start on a user gesture: any click or key on the page.
    document.addEventListener('pointerdown', this.#onGesture, true);
    document.addEventListener('keydown', this.#onGesture, true);
    this.#tick = setInterval(() => (this.now = Date.now()), 500);
    try {
      const saved = globalThis.localStorage?.getItem(PRESET_STORAGE_KEY);
      if (saved) {
        const { presetId, customKbps, profile, adaptBitrate } = JSON.parse(saved) as { presetId?: string; customKbps?: number | null; profile?: string; adaptBitrate?: boolean };
        if (typeof adaptBitrate === 'boolean') this.adaptBitrate = adaptBitrate;
        if (typeof presetId === 'string') this.presetId = presetById(presetId).id;
        const known = H264_PROFILES.find((x) => x.id === profile);
        if (known !== undefined) this.profile = known.id;
        if (typeof customKbps === 'number') this.customKbps = customKbps;
      }
    } catch {
      // Ignore a corrupt saved preset.
    }
    try {
      const res = await fetch(CONFIG_PATH);
      const config = (await res.json()) as StudioConfig;
      this.localRtmp = config.localRtmp;
    } catch {
      this.localRtmp = null;
    }
    this.destinations.load(this.localRtmp);
    void this.recordings.refresh();
    // Without a camera API there is nothing to open; the page says why instead.
    if (this.blocking !== undefined) return;
    // The mixer's meters run from the first gesture, before going live.
    await this.#audioOutput();
    await this.openCamera();
    await this.openMicrophone();
    await this.refreshDevices();
    const p = this.preset;
    this.#report({ ...page, ...(await detectEncoders({ width: p.width, height: p.height, fps: p.fps, bitrate: this.videoBitrate, codecs: p.codecs })) });
  }

  #report(caps: Capabilities): void {
    const report = reportCapabilities(caps, location);
    this.blocking = report.blocking;
    this.notes = report.notes;
  }

  saveSettings(): void {
    try {
      globalThis.localStorage?.setItem(PRESET_STORAGE_KEY, JSON.stringify({ presetId: this.presetId, customKbps: this.customKbps, profile: this.profile, adaptBitrate: this.adaptBitrate }));
    } catch {
      // Settings still apply to this page.
    }
  }

  async refreshDevices(): Promise<void> {
    const all = await navigator.mediaDevices.enumerateDevices();
    this.cameras = all.filter((d) => d.kind === 'videoinput');
    this.microphones = all.filter((d) => d.kind === 'audioinput');
  }

  async openCamera(): Promise<void> {
    const p = this.preset;
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        video: {
          ...(this.cameraId ? { deviceId: { exact: this.cameraId } } : {}),
          width: { ideal: p.width },
          height: { ideal: p.height },
          frameRate: { ideal: p.fps },
        },
      });
      this.#camera?.getTracks().forEach((t) => t.stop());
      this.#camera = stream;
      const track = stream.getVideoTracks()[0];
      if (track !== undefined) {
        track.enabled = this.cameraOn;
        this.cameraId = track.getSettings().deviceId ?? this.cameraId;
      }
    } catch (err) {
      this.error = `camera: ${(err as Error).message}`;
    }
    await this.#sourcesChanged();
  }

  /** The microphone with its processing switches as the mixer has them (`stopFirst`: let go of the old one before asking). */
  async openMicrophone(stopFirst = false): Promise<void> {
    if (stopFirst) {
      this.#mic?.getTracks().forEach((t) => t.stop());
      this.#mic = null;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: {
          ...(this.microphoneId ? { deviceId: { exact: this.microphoneId } } : {}),
          sampleRate: { ideal: AUDIO.sampleRate },
          channelCount: { ideal: 2 },
          ...this.mixer.settings.micProcessing,
        },
      });
      this.#mic?.getTracks().forEach((t) => t.stop());
      this.#mic = stream;
      const track = stream.getAudioTracks()[0];
      if (track !== undefined) this.microphoneId = track.getSettings().deviceId ?? this.microphoneId;
      this.mixer.reportMic(track);
    } catch (err) {
      // No microphone is fine: the stream carries silent AAC.
      this.#mic = null;
      this.mixer.reportMic(undefined);
      this.error ??= `microphone: ${(err as Error).message} (streaming silence)`;
    }
    await this.#sourcesChanged();
  }

  async shareScreen(): Promise<void> {
    this.mixer.resume();
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: this.preset.fps } }, audio: true });
      this.#screen?.getTracks().forEach((t) => t.stop());
      this.#screen = stream;
      this.source = 'screen';
      this.screenSilent = stream.getAudioTracks().length === 0;
      this.scenes.screenStarted();
      stream.getVideoTracks()[0]?.addEventListener('ended', () => void this.stopScreen());
    } catch (err) {
      if ((err as Error).name !== 'NotAllowedError') this.error = `screen share: ${(err as Error).message}`;
      return;
    }
    await this.#sourcesChanged();
  }

  async stopScreen(): Promise<void> {
    this.#screen?.getTracks().forEach((t) => t.stop());
    this.#screen = null;
    this.source = 'camera';
    this.screenSilent = false;
    await this.#sourcesChanged();
  }

  setCameraOn(on: boolean): void {
    this.cameraOn = on;
    for (const t of this.#camera?.getVideoTracks() ?? []) t.enabled = on;
  }

  /** The microphone's strip in the mixer is muted: its fader stays where it was. */
  get micMuted(): boolean {
    return this.mixer.settings.strips.mic.muted;
  }

  setMicMuted(muted: boolean): void {
    this.mixer.setMuted('mic', muted);
  }

  /**
   * A processing switch of the microphone: asked of the live track, else (the browser keeps its
   * settings, or refuses) by opening the microphone again with it; what the track then reports
   * is what the mixer shows.
   */
  async setMicProcessing(key: keyof MicProcessing, on: boolean): Promise<void> {
    const wanted = { ...this.mixer.settings.micProcessing, [key]: on };
    this.mixer.setMicProcessing(wanted);
    const track = this.#mic?.getAudioTracks()[0];
    if (track === undefined) return;
    try {
      await track.applyConstraints({ ...track.getConstraints(), ...wanted });
    } catch {
      // Refused while live: opening it again below.
    }
    this.mixer.reportMic(track);
    if (this.mixer.micReported?.[key] !== undefined && this.mixer.micReported[key] !== on) await this.openMicrophone(true);
  }

  setMeasureLatency(on: boolean): void {
    this.measureLatency = on;
    this.#post({ type: 'latencyClock', on });
  }

  /** Both video sources, for the worker's compositor. */
  #videoTracks(): { camera?: MediaStreamTrack; screen?: MediaStreamTrack } {
    const camera = this.#camera?.getVideoTracks()[0];
    const screen = this.#screen?.getVideoTracks()[0];
    return { ...(camera ? { camera } : {}), ...(screen ? { screen } : {}) };
  }

  /**
   * The microphone and the screen's audio go to the mixer, whose output track never changes;
   * the worker gets a new feed only when a video source changed.
   */
  async #sourcesChanged(): Promise<void> {
    await Promise.all([
      this.mixer.setSource('mic', this.#mic?.getAudioTracks()[0], 'Microphone'),
      this.mixer.setSource('screen', this.#screen?.getAudioTracks()[0], 'Screen audio'),
    ]).catch((err: unknown) => (this.mixer.note = `the audio mixer cannot take the source: ${(err as Error).message}`));
    const tracks = this.#videoTracks();
    this.monitor.setSources(tracks);
    if (this.#worker !== undefined && (tracks.camera !== this.#fedVideo.camera || tracks.screen !== this.#fedVideo.screen)) {
      const old = this.#feed;
      this.#fedVideo = tracks;
      this.#feed = await createFeed(tracks, await this.#audioOutput(), this.#worker);
      this.#post({ type: 'sources', sources: this.#feed.handles }, this.#feed.transfer);
      old?.stop();
    }
  }

  /** The mixer's output; none (the stream carries silence) if the mixer cannot run here. */
  async #audioOutput(): Promise<AudioOutput | undefined> {
    try {
      return await this.mixer.output();
    } catch (err) {
      this.mixer.note = `the audio mixer cannot start: ${(err as Error).message} (streaming silence)`;
      return undefined;
    }
  }

  #post(msg: ToWorker, transfer: Transferable[] = []): void {
    this.#worker?.postMessage(msg, transfer);
  }

  readonly #onVisibility = (): void => {
    this.hidden = document.visibilityState === 'hidden';
  };

  readonly #onGesture = (): void => this.mixer.resume();

  async goLive(): Promise<void> {
    if (this.phase !== 'idle' || this.blocking !== undefined) return;
    const destinations = this.destinations.forStart();
    if (destinations.length === 0) {
      this.error = 'add a destination with a server URL first';
      return;
    }
    if (destinations.length > MAX_DESTINATIONS) {
      this.error = `the bridge takes ${MAX_DESTINATIONS} destinations at once: turn ${destinations.length - MAX_DESTINATIONS} off`;
      return;
    }
    this.mixer.resume();
    this.destinations.save();
    this.saveSettings();
    this.error = null;
    this.statuses = {};
    this.stats = null;
    this.history = [];
    this.link = { state: 'connecting' };
    this.#liveIds = destinations.map((d) => d.id);
    this.phase = 'starting';
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const target: LiveTarget = { wsUrl: `${scheme}//${location.host}${STUDIO_WS_PATH}`, destinations };
    if (this.#worker !== undefined) this.#post({ type: 'live', target });
    else await this.#openPipeline({ live: target });
  }

  endStream(): void {
    if (this.phase !== 'live' && this.phase !== 'starting') return;
    this.phase = 'stopping';
    this.#post({ type: 'endStream' });
  }

  /** Records the program to OPFS; going live and ending the stream leave it running. */
  async startRecording(): Promise<void> {
    if (this.recording !== 'off' || this.blocking !== undefined || this.phase === 'stopping') return;
    this.mixer.resume();
    this.saveSettings();
    this.recordError = null;
    this.recordStatus = null;
    this.recording = 'starting';
    const name = recordingName(new Date());
    this.recordings.active = name;
    if (this.#worker !== undefined) this.#post({ type: 'record', name });
    else await this.#openPipeline({ record: name });
  }

  stopRecording(): void {
    if (this.recording !== 'on' && this.recording !== 'starting') return;
    this.recording = 'stopping';
    this.#post({ type: 'stopRecording' });
  }

  /** A custom video bitrate (kbps, null for the preset's); while encoding it applies from the next keyframe. */
  setVideoBitrate(kbps: number | null): void {
    this.customKbps = kbps !== null && Number.isFinite(kbps) && kbps > 0 ? kbps : null;
    this.saveSettings();
    if (this.#worker !== undefined) this.#post({ type: 'bitrate', bps: this.videoBitrate });
  }

  setAdaptBitrate(on: boolean): void {
    this.adaptBitrate = on;
    this.saveSettings();
    if (this.#worker !== undefined) this.#post({ type: 'adapt', on });
  }

  async #openPipeline(first: { live?: LiveTarget; record?: string }): Promise<void> {
    const p = this.preset;
    const settings: EncodeSettings = {
      width: p.width,
      height: p.height,
      fps: p.fps,
      videoBitrate: this.videoBitrate,
      codecs: codecsFor(p, this.profile),
      preferInOrder: this.profile === 'auto',
      keyframeIntervalS: KEYFRAME_INTERVAL_S,
      adaptBitrate: this.adaptBitrate,
      audioBitrate: AUDIO.bitrate,
      sampleRate: AUDIO.sampleRate,
      channels: AUDIO.channels,
    };
    const worker = new EncodeWorker();
    this.#worker = worker;
    this.encoding = true;
    worker.onmessage = (e: MessageEvent<FromWorker>) => this.#onWorker(worker, e.data);
    worker.onerror = (e) => {
      this.error = `encoder worker: ${e.message}`;
      this.#teardown(worker);
    };
    this.#fedVideo = this.#videoTracks();
    const feed = await createFeed(this.#fedVideo, await this.#audioOutput(), worker);
    this.#feed = feed;
    this.#post({ type: 'start', settings, sources: feed.handles, latencyClock: this.measureLatency, ...first }, feed.transfer);
    await this.scenes.sendAll();
  }

  #onWorker(worker: Worker, msg: FromWorker): void {
    if (worker !== this.#worker) {
      if (msg.type === 'preview') msg.frame.close();
      return;
    }
    switch (msg.type) {
      case 'state':
        if (msg.state === 'live') {
          this.phase = 'live';
          this.liveSince ??= Date.now();
        } else if (msg.state === 'starting') this.phase = 'starting';
        else if (msg.state === 'error') {
          this.error = msg.message ?? 'the stream stopped';
          this.#streamEnded();
        } else if (msg.state === 'stopped') this.#streamEnded();
        break;
      case 'recording':
        this.#onRecording(msg.recording);
        break;
      case 'closed':
        this.#teardown(worker);
        break;
      case 'stats':
        this.#sample(msg.stats);
        this.stats = msg.stats;
        break;
      case 'preview':
        this.monitor.showFrame(msg.frame);
        break;
      case 'program':
        this.scenes.applied(msg.scene, msg.frame);
        break;
      case 'link':
        this.link = msg.link;
        // While resuming, the bridge keeps every destination as it was; once the session is
        // gone they are being set up again.
        if (msg.link.state === 'reconnecting') this.#showReconnecting(msg.link.retryInMs);
        break;
      case 'server':
        if (msg.message.type === 'status') {
          this.statuses = Object.fromEntries(msg.message.destinations.map((d) => [d.id, d]));
          this.statusesAt = Date.now();
          this.received = msg.message.received;
        }
        break;
    }
  }

  #sample(stats: EncodeStats): void {
    const dropped = (s: EncodeStats | null): number => (s === null ? 0 : s.framesDropped + s.droppedByEncoder);
    const sample: StatsSample = { bitrate: stats.bitrate, fps: stats.fps, dropped: Math.max(0, dropped(stats) - dropped(this.stats)) };
    this.history = [...this.history.slice(1 - HISTORY_SECONDS), sample];
  }

  /** The bridge lost the session (it restarted, say): every destination is being set up again. */
  #showReconnecting(retryInMs: number): void {
    this.statuses = Object.fromEntries(
      this.#liveIds.map((id) => {
        const last = this.statuses[id];
        const status: DestinationStatus = {
          id,
          url: last?.url ?? '',
          state: 'retrying',
          reason: RECONNECTING_REASON,
          retryInMs,
          bytes: last?.bytes ?? 0,
          dropped: last?.dropped ?? 0,
          bufferedBytes: 0,
        };
        return [id, status];
      }),
    );
    this.statusesAt = Date.now();
  }

  #onRecording(r: RecordingState): void {
    if (r.status !== undefined) this.recordStatus = r.status;
    if (r.state === 'recording') {
      if (this.recording === 'starting') this.recording = 'on';
    } else if (r.state === 'starting') this.recording = 'starting';
    else {
      if (r.state === 'error') this.recordError = r.message;
      this.recording = 'off';
      this.recordings.active = undefined;
      void this.recordings.refresh();
    }
  }

  /** The stream ended; the pipeline may go on for a recording. */
  #streamEnded(): void {
    this.phase = 'idle';
    this.liveSince = null;
    if (this.link.state === 'reconnecting' || this.link.state === 'resuming') {
      this.statuses = Object.fromEntries(Object.entries(this.statuses).map(([id, st]) => [id, { id, url: st.url, state: 'stopped', bytes: st.bytes, dropped: st.dropped, bufferedBytes: 0 }]));
    }
  }

  #teardown(worker: Worker): void {
    if (worker !== this.#worker) return;
    this.#feed?.stop();
    this.#feed = undefined;
    this.#fedVideo = {};
    // Let the worker finish its goodbye (flush, stop message) before it goes.
    setTimeout(() => worker.terminate(), 5000);
    this.#worker = undefined;
    this.encoding = false;
    if (this.phase !== 'idle') this.#streamEnded();
    if (this.recording !== 'off') {
      this.recording = 'off';
      this.recordings.active = undefined;
      void this.recordings.refresh();
    }
  }

  watchPath(key: string): string {
    return `/watch/live/${encodeURIComponent(key)}`;
  }

  destroy(): void {
    document.removeEventListener('visibilitychange', this.#onVisibility);
    document.removeEventListener('pointerdown', this.#onGesture, true);
    document.removeEventListener('keydown', this.#onGesture, true);
    clearInterval(this.#tick);
    this.#post({ type: 'stop' });
    this.#feed?.stop();
    this.mixer.close();
    this.monitor.destroy();
    for (const s of [this.#camera, this.#mic, this.#screen]) s?.getTracks().forEach((t) => t.stop());
  }
}

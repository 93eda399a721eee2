import { CLIP_DB, CLIP_HOLD_MS, fromDb, SILENCE_DB, toDb, type MeterReading } from './meter.js';
import { clampGain, loadMixer, MIC_PROCESSING_KEYS, saveMixer, type MicProcessing, type MixerSettings, type SourceId, type StripSettings } from './mixer-store.js';
import workletUrl from './mixer.worklet.ts?worker&url';

/** The largest sound file taken, and the longest once decoded (decoded audio lives in memory: 48 kHz stereo float is 23 MB a minute). */
export const MAX_SOUND_FILE = 64 * 1024 * 1024;
export const MAX_SOUND_SECONDS = 15 * 60;

/** Where the encode worker gets the mix: the output track, or (without MediaStreamTrackProcessor) PCM straight from the graph. */
export interface AudioOutput {
  track: MediaStreamTrack;
  tapPcm(): Promise<{ port: MessagePort; stop(): void }>;
}

export type StripId = SourceId | 'master';

/** A meter's last reading in dBFS, updated ≥ 20 times a second while the context runs. */
export class Level {
  peakDb = $state(SILENCE_DB);
  rmsDb = $state(SILENCE_DB);

  set(r: MeterReading): void {
    const peak = Math.round(toDb(r.peak) * 10) / 10;
    const rms = Math.round(toDb(r.rms) * 10) / 10;
    if (peak !== this.peakDb) this.peakDb = peak;
    if (rms !== this.rmsDb) this.rmsDb = rms;
  }
}

/** What the microphone's track reports for each processing switch (undefined: it does not say). */
export type ReportedProcessing = Partial<MicProcessing>;

interface Strip {
  gain: GainNode;
  meter: AudioWorkletNode;
  /** What feeds the strip now, and how to let go of it. */
  input: { node: AudioNode; release(): void } | undefined;
}

interface Graph {
  ctx: AudioContext;
  strips: Record<SourceId, Strip>;
  master: GainNode;
  masterMeter: AudioWorkletNode;
  dest: MediaStreamAudioDestinationNode;
}

/**
 * The studio's audio: every source (microphone, the shared screen's audio, a sound file) through
 * its own gain and mute and a meter, into the master gain and its meter, into one
 * MediaStreamAudioDestinationNode whose track is what the encoder gets. The meters sit after the
 * gains, on the same graph as the output: what they show is what is encoded. Sources come and go
 * on the graph; the output track stays the same, so the encoder's feed is never restarted for them.
 */
export class Mixer {
  settings = $state.raw<MixerSettings>(loadMixer(globalThis.localStorage));
  readonly levels: Record<StripId, Level> = { mic: new Level(), screen: new Level(), file: new Level(), master: new Level() };
  /** Which sources feed the mixer now, by name shown on their strip. */
  present = $state.raw<Record<SourceId, string | null>>({ mic: null, screen: null, file: null });
  /** The master's peak reached CLIP_DB within the last CLIP_HOLD_MS. */
  clipping = $state(false);
  /** The AudioContext runs (it waits for a click or a key on the page before it may). */
  running = $state(false);
  filePlaying = $state(false);
  /** Why the sound file could not be taken, or something else the mixer could not do. */
  note = $state<string | null>(null);
  /** What the microphone's track reports about its processing, once it is open. */
  micReported = $state.raw<ReportedProcessing | null>(null);

  #graph: Promise<Graph> | undefined;
  #built: Graph | undefined;
  #tracks: Partial<Record<'mic' | 'screen', MediaStreamTrack>> = {};
  #buffer: AudioBuffer | undefined;
  #clipTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  /** The mix for the encoder; builds the graph the first time. */
  async output(): Promise<AudioOutput> {
    const g = await this.#ready();
    const track = g.dest.stream.getAudioTracks()[0];
    if (track === undefined) throw new Error('the mixer has no output track');
    return { track, tapPcm: () => this.#tap() };
  }

  /** Starts the AudioContext, from a user gesture (the page's clicks and keys call this). */
  resume(): void {
    const ctx = this.#built?.ctx;
    if (ctx !== undefined && ctx.state === 'suspended') ctx.resume().catch(() => undefined);
  }

  /** The microphone or the screen's audio: a track, or none (it went away). */
  async setSource(id: 'mic' | 'screen', track: MediaStreamTrack | undefined, name: string): Promise<void> {
    if (this.#tracks[id] === track) return;
    if (track === undefined) delete this.#tracks[id];
    else this.#tracks[id] = track;
    this.present = { ...this.present, [id]: track === undefined ? null : name };
    const g = await this.#ready();
    if (this.#tracks[id] !== track) return;
    this.#connect(g, id, track === undefined ? undefined : this.#trackInput(g, track));
  }

  setGain(id: StripId, db: number): void {
    this.#update(id, { gainDb: clampGain(db) });
  }

  setMuted(id: StripId, muted: boolean): void {
    this.#update(id, { muted });
  }

  setLoop(loop: boolean): void {
    this.#save({ ...this.settings, loop });
    const input = this.#built?.strips.file.input?.node;
    if (input instanceof AudioBufferSourceNode) input.loop = loop;
  }

  setMicProcessing(processing: MicProcessing): void {
    this.#save({ ...this.settings, micProcessing: processing });
  }

  /** Reads back what the microphone's track says it does. */
  reportMic(track: MediaStreamTrack | undefined): void {
    if (track === undefined) {
      this.micReported = null;
      return;
    }
    const s = track.getSettings() as Record<string, unknown>;
    const reported: ReportedProcessing = {};
    for (const key of MIC_PROCESSING_KEYS) {
      const v = s[key];
      if (typeof v === 'boolean') reported[key] = v;
    }
    this.micReported = reported;
  }

  /** Decodes a sound file for the file strip (it waits to be played). */
  async loadFile(file: File): Promise<void> {
    this.note = null;
    if (file.size > MAX_SOUND_FILE) {
      this.note = `${file.name} is over ${MAX_SOUND_FILE / 1024 / 1024} MB — choose a shorter sound file`;
      return;
    }
    const g = await this.#ready();
    let buffer: AudioBuffer;
    try {
      buffer = await g.ctx.decodeAudioData(await file.arrayBuffer());
    } catch {
      this.note = `${file.name} is not a sound this browser can play — try an MP3, M4A (AAC), Ogg or WAV file`;
      return;
    }
    if (buffer.duration > MAX_SOUND_SECONDS) {
      this.note = `${file.name} lasts over ${MAX_SOUND_SECONDS / 60} minutes — choose a shorter sound file`;
      return;
    }
    this.stopFile();
    this.#buffer = buffer;
    this.present = { ...this.present, file: file.name };
  }

  playFile(): void {
    const g = this.#built;
    if (g === undefined || this.#buffer === undefined) return;
    this.resume();
    const node = new AudioBufferSourceNode(g.ctx, { buffer: this.#buffer, loop: this.settings.loop });
    node.onended = () => {
      if (g.strips.file.input?.node === node) {
        this.#connect(g, 'file', undefined);
        this.filePlaying = false;
      }
    };
    this.#connect(g, 'file', {
      node,
      release: () => {
        node.onended = null;
        try {
          node.stop();
        } catch {
          // It had ended already.
        }
      },
    });
    node.start();
    this.filePlaying = true;
  }

  stopFile(): void {
    if (this.#built !== undefined) this.#connect(this.#built, 'file', undefined);
    this.filePlaying = false;
  }

  removeFile(): void {
    this.stopFile();
    this.#buffer = undefined;
    this.present = { ...this.present, file: null };
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#clipTimer);
    const g = this.#built;
    if (g !== undefined) {
      for (const strip of Object.values(g.strips)) strip.input?.release();
      g.dest.stream.getTracks().forEach((t) => t.stop());
      g.ctx.close().catch(() => undefined);
    }
  }

  #ready(): Promise<Graph> {
    this.#graph ??= this.#build();
    return this.#graph;
  }

  async #build(): Promise<Graph> {
    // 48 kHz is what the encoder sends: no resampling on the way.
    const ctx = new AudioContext({ sampleRate: 48_000, latencyHint: 'interactive' });
    ctx.onstatechange = () => (this.running = ctx.state === 'running');
    this.running = ctx.state === 'running';
    await ctx.audioWorklet.addModule(workletUrl);
    // Stereo from the master on: a mono source is copied to both sides (the speakers up-mix).
    const stereo = { channelCount: 2, channelCountMode: 'explicit', channelInterpretation: 'speakers' } as const;
    const master = new GainNode(ctx, stereo);
    const masterMeter = this.#meter(ctx, this.levels.master, true);
    const dest = new MediaStreamAudioDestinationNode(ctx, stereo);
    master.connect(masterMeter);
    master.connect(dest);
    const strip = (id: SourceId): Strip => {
      const gain = new GainNode(ctx);
      const meter = this.#meter(ctx, this.levels[id], false);
      gain.connect(meter);
      gain.connect(master);
      return { gain, meter, input: undefined };
    };
    const g: Graph = { ctx, strips: { mic: strip('mic'), screen: strip('screen'), file: strip('file') }, master, masterMeter, dest };
    this.#built = g;
    this.#applyGains(g, false);
    for (const id of ['mic', 'screen'] as const) {
      const track = this.#tracks[id];
      if (track !== undefined) this.#connect(g, id, this.#trackInput(g, track));
    }
    if (this.#closed) this.close();
    return g;
  }

  #meter(ctx: AudioContext, level: Level, master: boolean): AudioWorkletNode {
    const node = new AudioWorkletNode(ctx, 'onair-meter', { numberOfInputs: 1, numberOfOutputs: 0 });
    node.port.onmessage = (e: MessageEvent<MeterReading>) => {
      level.set(e.data);
      if (master && toDb(e.data.peak) >= CLIP_DB) this.#clipped();
    };
    return node;
  }

  #clipped(): void {
    this.clipping = true;
    clearTimeout(this.#clipTimer);
    this.#clipTimer = setTimeout(() => (this.clipping = false), CLIP_HOLD_MS);
  }

  #trackInput(g: Graph, track: MediaStreamTrack): { node: AudioNode; release(): void } {
    const node = new MediaStreamAudioSourceNode(g.ctx, { mediaStream: new MediaStream([track]) });
    return { node, release: () => node.disconnect() };
  }

  /** Puts `input` on strip `id` in place of what fed it. */
  #connect(g: Graph, id: SourceId, input: { node: AudioNode; release(): void } | undefined): void {
    const strip = g.strips[id];
    strip.input?.release();
    strip.input?.node.disconnect();
    strip.input = input;
    input?.node.connect(strip.gain);
  }

  async #tap(): Promise<{ port: MessagePort; stop(): void }> {
    const g = await this.#ready();
    const node = new AudioWorkletNode(g.ctx, 'onair-pcm-tap', { numberOfInputs: 1, numberOfOutputs: 0, channelCount: 2, channelCountMode: 'explicit' });
    g.master.connect(node);
    return {
      port: node.port,
      stop: () => {
        g.master.disconnect(node);
        node.parameters.get('active')?.setValueAtTime(0, g.ctx.currentTime);
      },
    };
  }

  #update(id: StripId, patch: Partial<StripSettings>): void {
    const s = this.settings;
    this.#save(id === 'master' ? { ...s, master: { ...s.master, ...patch } } : { ...s, strips: { ...s.strips, [id]: { ...s.strips[id], ...patch } } });
    if (this.#built !== undefined) this.#applyGains(this.#built);
  }

  #save(settings: MixerSettings): void {
    this.settings = settings;
    saveMixer(globalThis.localStorage, settings);
  }

  #applyGains(g: Graph, glide = true): void {
    const set = (node: GainNode, s: StripSettings): void => {
      const value = s.muted ? 0 : fromDb(s.gainDb);
      // A short glide while sound flows: a step in gain clicks.
      if (glide) node.gain.setTargetAtTime(value, g.ctx.currentTime, 0.01);
      else node.gain.value = value;
    };
    for (const id of ['mic', 'screen', 'file'] as const) set(g.strips[id].gain, this.settings.strips[id]);
    set(g.master, this.settings.master);
  }
}

/// <reference lib="webworker" />
import { EncodeSession } from './session/encode-session.js';
import type { FromWorker, ToWorker } from './worker-protocol.js';

declare const self: DedicatedWorkerGlobalScope;

function post(msg: FromWorker): void {
  self.postMessage(msg, msg.type === 'preview' ? [msg.frame] : []);
}

let session: EncodeSession | undefined;

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  switch (msg.type) {
    case 'start': {
      session?.stop().catch(() => undefined);
      const s = new EncodeSession(msg.settings, post);
      session = s;
      s.setLatencyClock(msg.latencyClock);
      s.start(msg.sources, msg.live, msg.record).catch((err: unknown) => s.fail(err instanceof Error ? err.message : String(err)));
      break;
    }
    case 'sources':
      session?.setSources(msg.sources);
      break;
    case 'latencyClock':
      session?.setLatencyClock(msg.on);
      break;
    case 'frame':
      if (session === undefined) msg.frame.close();
      else session.offerFrame(msg.frame, msg.source === 'screen' ? 'screen' : 'camera');
      break;
    case 'program':
      session?.setProgram(msg.program);
      break;
    case 'logo':
      if (session === undefined) msg.image?.close();
      else session.setLogo(msg.image instanceof ImageBitmap ? msg.image : null);
      break;
    case 'live':
      session?.goLive(msg.target).catch(() => undefined);
      break;
    case 'endStream':
      session?.endStream().catch(() => undefined);
      break;
    case 'record':
      session?.record(msg.name).catch(() => undefined);
      break;
    case 'stopRecording':
      session?.stopRecording().catch(() => undefined);
      break;
    case 'bitrate':
      session?.setBitrate(msg.bps);
      break;
    case 'adapt':
      session?.setAdaptive(msg.on);
      break;
    case 'stop':
      session?.stop().catch(() => undefined);
      break;
  }
};

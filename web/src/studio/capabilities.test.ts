import { describe, expect, it } from 'vitest';
import { reportCapabilities, type Capabilities } from './capabilities.js';

const all: Capabilities = { secure: true, camera: true, videoEncoder: true, h264: 'avc1.4D401F', aac: 'webcodecs', backgroundCapture: true, screen: true };
const here = { protocol: 'http:', host: '192.168.1.20:8080', port: '8080' };

describe('reportCapabilities', () => {
  it('says nothing when everything is there', () => {
    expect(reportCapabilities(all, here)).toEqual({ blocking: undefined, notes: [] });
  });

  it('an insecure page (http from another machine): says it needs https or localhost, and how', () => {
    const r = reportCapabilities({ ...all, secure: false, camera: false, h264: undefined }, here);
    expect(r.blocking).toMatch(/needs a secure page, and http:\/\/192\.168\.1\.20:8080 is not one/);
    expect(r.blocking).toMatch(/http:\/\/localhost:8080\//);
    expect(r.blocking).toMatch(/https/);
  });

  it('one sentence for what is missing, naming better browsers', () => {
    expect(reportCapabilities({ ...all, videoEncoder: false, h264: undefined }, here).blocking).toMatch(/no WebCodecs VideoEncoder.*current Chrome/);
    expect(reportCapabilities({ ...all, h264: undefined }, here).blocking).toMatch(/no H\.264.*current Chrome/);
    expect(reportCapabilities({ ...all, aac: 'none' }, here).blocking).toMatch(/no sound/);
  });

  it('notes what works differently: frames through the page, no screen sharing', () => {
    const r = reportCapabilities({ ...all, backgroundCapture: false, screen: false }, here);
    expect(r.blocking).toBeUndefined();
    expect(r.notes.join(' ')).toMatch(/Keep this tab visible/);
    expect(r.notes.join(' ')).toMatch(/Screen sharing is not available/);
  });
});

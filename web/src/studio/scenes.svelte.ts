import { cornerRect, DEFAULT_PROGRAM, moveRect, resizeRect, type Corner, type LogoOverlay, type LowerThird, type Program, type SceneId } from './compositor/program.js';
import { isStorableLogo, loadScenes, MAX_LOGO_DATA_URL, saveScenes } from './compositor/scene-store.js';
import type { ToWorker } from './worker-protocol.js';

/** The largest logo file taken at all; one over MAX_LOGO_DATA_URL is used but not remembered. */
const MAX_LOGO_FILE = 8 * 1024 * 1024;

/**
 * The page's side of the program: scene, layout and overlays, remembered in localStorage and sent
 * to the encode worker whenever they change (and in full when a stream starts).
 */
export class Scenes {
  program = $state.raw<Program>(DEFAULT_PROGRAM);
  /** The logo as a data URL (shown as a thumbnail, remembered when small enough). */
  logoUrl = $state<string | undefined>(undefined);
  /** Why the logo could not be taken or remembered. */
  logoNote = $state<string | null>(null);
  /** What the worker last confirmed: the scene on air and the output frame it starts on. */
  onAir = $state.raw<{ scene: SceneId; frame: number } | null>(null);

  readonly #post: (msg: ToWorker, transfer?: Transferable[]) => void;

  constructor(post: (msg: ToWorker, transfer?: Transferable[]) => void) {
    this.#post = post;
    const saved = loadScenes(globalThis.localStorage);
    this.program = saved.program;
    this.logoUrl = saved.logo;
  }

  setScene(scene: SceneId): void {
    this.#update({ scene });
  }

  update(patch: Partial<Omit<Program, 'logo' | 'lowerThird'>>): void {
    this.#update(patch);
  }

  pipCorner(corner: Corner): void {
    this.#update({ pip: cornerRect(corner, this.program.pip) });
  }

  /** Drag: by a share of the frame across and down. */
  movePip(dx: number, dy: number): void {
    this.#update({ pip: moveRect(this.program.pip, dx, dy) });
  }

  resizePip(dw: number): void {
    this.#update({ pip: resizeRect(this.program.pip, dw) });
  }

  setLogo(patch: Partial<LogoOverlay>): void {
    this.#update({ logo: { ...this.program.logo, ...patch } });
  }

  setLowerThird(patch: Partial<LowerThird>): void {
    this.#update({ lowerThird: { ...this.program.lowerThird, ...patch } });
  }

  toggleLowerThird(): void {
    this.setLowerThird({ visible: !this.program.lowerThird.visible });
  }

  /** Sharing a screen from the camera scene shows the screen, as the studio always did. */
  screenStarted(): void {
    if (this.program.scene === 'camera') this.setScene('screen');
  }

  async loadLogoFile(file: File): Promise<void> {
    this.logoNote = null;
    if (!file.type.startsWith('image/') || file.size > MAX_LOGO_FILE) {
      this.logoNote = `${file.name}: choose an image file of at most ${MAX_LOGO_FILE / 1024 / 1024} MB`;
      return;
    }
    const url = await new Promise<string>((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result));
      reader.onerror = () => reject(reader.error ?? new Error('unreadable'));
      reader.readAsDataURL(file);
    }).catch((err: unknown) => {
      this.logoNote = `${file.name}: ${err instanceof Error ? err.message : String(err)}`;
      return undefined;
    });
    if (url === undefined) return;
    this.logoUrl = url;
    if (!saveScenes(globalThis.localStorage, this.program, url)) {
      this.logoNote = isStorableLogo(url)
        ? 'The logo is used but could not be remembered (storage full)'
        : `The logo is used but too large to remember across reloads (over ${Math.round(MAX_LOGO_DATA_URL / 1024)} kB encoded)`;
    }
    await this.#sendLogo();
  }

  clearLogo(): void {
    this.logoUrl = undefined;
    this.logoNote = null;
    saveScenes(globalThis.localStorage, this.program, null);
    this.#post({ type: 'logo', image: null });
  }

  /** Everything to a worker that just started. */
  async sendAll(): Promise<void> {
    this.#post({ type: 'program', program: this.program });
    await this.#sendLogo();
  }

  /** The worker's confirmation of a program. */
  applied(scene: SceneId, frame: number): void {
    this.onAir = { scene, frame };
  }

  #update(patch: Partial<Program>): void {
    this.program = { ...this.program, ...patch };
    saveScenes(globalThis.localStorage, this.program);
    this.#post({ type: 'program', program: this.program });
  }

  async #sendLogo(): Promise<void> {
    const url = this.logoUrl;
    if (url === undefined) return;
    try {
      const image = await createImageBitmap(dataUrlBlob(url));
      if (url !== this.logoUrl) {
        image.close();
        return;
      }
      this.#post({ type: 'logo', image }, [image]);
    } catch (err) {
      this.logoNote = `The logo image cannot be read: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
}

/** A data URL's bytes, decoded here: the page's CSP lets fetch() reach only the bridge. */
function dataUrlBlob(url: string): Blob {
  const comma = url.indexOf(',');
  const type = /^data:([^;,]+)/.exec(url)?.[1] ?? 'application/octet-stream';
  const bin = atob(url.slice(comma + 1));
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Blob([bytes], { type });
}

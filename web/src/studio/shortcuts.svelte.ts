/**
 * The studio's keyboard shortcuts, in one registry: the help panel lists what is registered and
 * one keydown listener runs it. A panel adds its own with `add` (and removes them with the
 * function it returns), e.g. the scene strip: `shortcuts.add({ key: '1', label: 'Scene 1', run })`
 * for keys 1–9, which are kept for scenes.
 */
export interface Shortcut {
  /** `KeyboardEvent.key` as typed, without modifiers: 'l', 'm', '?', '1'. */
  key: string;
  /** What it does, for the help panel. */
  label: string;
  run: () => void;
}

/** Keys 1–9 are the scene strip's; nothing else may take them. */
export const SCENE_KEYS: readonly string[] = ['1', '2', '3', '4', '5', '6', '7', '8', '9'];

export class Shortcuts {
  list = $state.raw<Shortcut[]>([]);

  /** Registers `shortcut`; returns the function that removes it. */
  add(shortcut: Shortcut): () => void {
    if (this.list.some((s) => s.key === shortcut.key)) throw new Error(`shortcut ${shortcut.key} is already taken`);
    this.list = [...this.list, shortcut];
    return () => {
      this.list = this.list.filter((s) => s !== shortcut);
    };
  }

  /** Runs the shortcut for `e` unless the user is typing or a modifier is held; true when one ran. */
  handle(e: KeyboardEvent): boolean {
    if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented || e.repeat) return false;
    if (isTyping(e.target)) return false;
    const shortcut = this.list.find((s) => s.key === e.key || s.key === e.key.toLowerCase());
    if (shortcut === undefined) return false;
    e.preventDefault();
    shortcut.run();
    return true;
  }
}

/** Keys typed into a field, a select or an editable element are text, not shortcuts. */
function isTyping(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  if (target instanceof HTMLSelectElement || target instanceof HTMLTextAreaElement) return true;
  return target instanceof HTMLInputElement && !['checkbox', 'radio', 'button', 'submit', 'range'].includes(target.type);
}

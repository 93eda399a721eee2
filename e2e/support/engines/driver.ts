// One small way to drive a page, whatever the engine: Playwright for Chromium, WebDriver BiDi
// for Firefox, classic W3C WebDriver for WebKitGTK. The walk-throughs in e2e/engines.spec.ts are
// written once against this interface.

export type Engine = 'chromium' | 'firefox' | 'webkit';

export const ENGINES: readonly Engine[] = ['chromium', 'firefox', 'webkit'];

/** The ARIA roles the walk-throughs look for. */
export type Role = 'button' | 'link' | 'checkbox' | 'status' | 'alert';

/** An element found the way a person names it: a role and its name, or a form control's label. */
export type Target = { role: Role; name: string | RegExp; nth?: number } | { label: string; nth?: number };

/** Something the page said went wrong: a `console.error` or an exception nobody caught. */
export interface PageError {
  kind: 'console' | 'uncaught';
  text: string;
}

export interface PageDriver {
  readonly engine: Engine;
  /** The browser's own name and version, as its driver reports it. */
  readonly version: string;
  /** Loads `url` and resolves once its load event has fired. */
  goto(url: string): Promise<void>;
  /** A real (trusted) click in the middle of the element; waits for it to exist and be enabled. */
  click(target: Target): Promise<void>;
  /** Replaces the control's value by typing `text` into it; waits for it to exist and be enabled. */
  fill(target: Target, text: string): Promise<void>;
  /**
   * Runs `fn(arg)` in the page and resolves with its (awaited) result. `fn` is sent as source
   * text: it cannot close over anything. `arg` and the result travel as JSON.
   */
  evaluate<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R>;
  /**
   * Polls `fn(arg)` in the page until it returns a truthy value and resolves with it; throws
   * `timed out … waiting for <what>` after `timeoutMs`.
   */
  waitFor<R, A = undefined>(what: string, fn: (arg: A) => R | Promise<R>, arg?: A, timeoutMs?: number): Promise<NonNullable<R>>;
  /** Every console error and uncaught exception since the driver started, oldest first. */
  errors(): Promise<PageError[]>;
  /** Ends the browser and everything started for it. */
  close(): Promise<void>;
}

const POLL_MS = 100;

/** What the three drivers have in common: waiting is polling `evaluate`. */
export abstract class BaseDriver implements PageDriver {
  abstract readonly engine: Engine;
  abstract readonly version: string;
  abstract goto(url: string): Promise<void>;
  abstract click(target: Target): Promise<void>;
  abstract fill(target: Target, text: string): Promise<void>;
  abstract evaluate<R, A = undefined>(fn: (arg: A) => R | Promise<R>, arg?: A): Promise<R>;
  abstract errors(): Promise<PageError[]>;
  abstract close(): Promise<void>;

  async waitFor<R, A = undefined>(what: string, fn: (arg: A) => R | Promise<R>, arg?: A, timeoutMs = 15_000): Promise<NonNullable<R>> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const value = await this.evaluate(fn, arg);
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`${this.engine}: timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }
}

/** A Target as it travels to the page: a RegExp becomes its source and flags. */
export type WireTarget = { role: Role; name: string | { source: string; flags: string }; nth: number | null } | { label: string; nth: number | null };

export function toWire(target: Target): WireTarget {
  const nth = target.nth ?? null;
  if ('label' in target) return { label: target.label, nth };
  return { role: target.role, name: typeof target.name === 'string' ? target.name : { source: target.name.source, flags: target.name.flags }, nth };
}

export function describeTarget(target: Target): string {
  const which = target.nth === undefined ? '' : ` #${target.nth}`;
  return 'label' in target ? `the control labelled "${target.label}"${which}` : `the ${target.role} "${String(target.name)}"${which}`;
}

/**
 * Runs in the page (sent as source text, so self-contained): finds the element a WebDriver
 * driver acts on, scrolled to the middle of the view. Returns the element when it is there,
 * visible and enabled, else a sentence saying why not (the driver polls on it). Names follow
 * the accessible-name rules the studio and watch pages rely on: aria-label, the label
 * elements of a control, a button's or link's text. Without `nth`, two matches are an error,
 * as in Playwright's strict locators.
 */
export function findElement(target: WireTarget): Element | string {
  const norm = (s: string | null | undefined): string => (s ?? '').replace(/\s+/g, ' ').trim();
  const visible = (el: Element): boolean => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  // A label's own words, not the text of the select or textarea inside it.
  const labelText = (label: Element): string => {
    let text = '';
    const walker = document.createTreeWalker(label, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) {
      if (node.parentElement?.closest('select, textarea') === null) text += node.textContent ?? '';
    }
    return norm(text);
  };
  const byRole: Record<string, string> = {
    button: 'button, input[type=button], input[type=submit], input[type=reset], [role=button]',
    link: 'a[href], [role=link]',
    checkbox: 'input[type=checkbox], [role=checkbox]',
    status: '[role=status], output',
    alert: '[role=alert]',
  };
  let found: Element[];
  if ('label' in target) {
    found = [...document.querySelectorAll('input, select, textarea')].filter((el) => {
      const control = el as HTMLInputElement;
      if (norm(control.getAttribute('aria-label')) === target.label) return true;
      return [...(control.labels ?? [])].some((label) => labelText(label) === target.label);
    });
  } else {
    const name = target.name;
    const matches = typeof name === 'string' ? (text: string) => text === name : (text: string) => new RegExp(name.source, name.flags).test(text);
    found = [...document.querySelectorAll(byRole[target.role] ?? target.role)].filter((el) => {
      const accessible = norm(el.getAttribute('aria-label')) || norm((el as HTMLInputElement).value && el.tagName === 'INPUT' ? (el as HTMLInputElement).value : el.textContent);
      return matches(accessible);
    });
  }
  found = found.filter(visible);
  if (found.length === 0) return 'no such element is visible';
  if (target.nth === null && found.length > 1) return `${found.length} elements match`;
  const el = found[target.nth ?? 0];
  if (el === undefined) return `only ${found.length} elements match`;
  if ((el as HTMLButtonElement).disabled) return 'it is disabled';
  el.scrollIntoView({ block: 'center', inline: 'center' });
  return el;
}

/** How long click and fill wait for their element to be there, visible and enabled. */
export const ELEMENT_WAIT_MS = 15_000;

/**
 * The source of a function for a WebDriver driver to call in the page with one JSON string
 * argument (or none): it parses the argument, awaits `fn` and returns its result as JSON, so
 * no protocol's value serialisation is involved (undefined stays undefined).
 */
export function inPage(fn: (arg: never) => unknown): string {
  return `async (json) => { const value = await (${fn.toString()})(json === undefined || json === null ? undefined : JSON.parse(json)); return value === undefined ? undefined : JSON.stringify(value); }`;
}

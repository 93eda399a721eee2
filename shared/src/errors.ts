/**
 * An error with a stable `code`, for protocol and input faults. Callers branch on `code`;
 * the message names the bad value for the human reading it.
 */
export class OnairError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OnairError';
    this.code = code;
  }
}

/** Thrown when a reader needs more bytes than its input holds. */
export class ShortInputError extends OnairError {
  constructor(needed: number, left: number, what: string) {
    super('SHORT_INPUT', `${what}: need ${needed} bytes, ${left} left`);
    this.name = 'ShortInputError';
  }
}

/** Invariant check: a failure is a bug in onair, never bad input. */
export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new Error(message);
}

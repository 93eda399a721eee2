import { OnairError } from '../errors.js';

// Narrowing helpers for the JSON text frames of the WebSocket protocols: every failure is an
// OnairError BAD_MESSAGE naming the field, so a bad frame ends its session with a clear reason.

export function fail(message: string): never {
  throw new OnairError('BAD_MESSAGE', message);
}

/** A value as it appears in a refusal: JSON, cut to 64 characters (the refusal goes back in a reason). */
export function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length <= 64 ? text : `${text.slice(0, 63)}…`;
}

/** Parses a text frame of at most `maxChars` characters that must hold a JSON object. */
export function parseJsonObject(text: string, maxChars: number): Record<string, unknown> {
  if (text.length > maxChars) fail(`message of ${text.length} characters exceeds ${maxChars}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    fail('message is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('message is not a JSON object');
  return value as Record<string, unknown>;
}

export function record(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${what} must be an object`);
  return v as Record<string, unknown>;
}

export function str(obj: Record<string, unknown>, key: string, max: number): string {
  const v = obj[key];
  if (typeof v !== 'string') fail(`"${key}" must be a string`);
  if (v.length > max) fail(`"${key}" longer than ${max} characters`);
  return v;
}

export function nonNegative(obj: Record<string, unknown>, key: string): number {
  const v = obj[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(`"${key}" must be a non-negative number`);
  return v;
}

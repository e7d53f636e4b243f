/**
 * Canonical JSON: RFC 8785 (JCS) serialisation.
 *
 * `jcs(value)` is plain JCS: sorted keys (UTF-16 code units), no whitespace, ECMAScript
 * number-to-string, JSON.stringify string escaping. It is what the RFC 8785 vectors check.
 * `canonical(value)` is the profile used for everything signed or hashed: JCS on a stricter
 * subset that also refuses integers outside ±(2^53−1) (core digest §1), because two
 * implementations in different languages can disagree on such numbers.
 */
import { HnError } from './errors.js';

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function fail(path: string, why: string): never {
  throw new HnError('bad_request', `not canonicalisable at ${path || '$'}: ${why}`, { field: path || '$' });
}

/** Deepest nesting canonicalised; deeper input is `bad_request`, never a stack overflow. */
export const CANONICAL_MAX_DEPTH = 128;

function serialise(v: unknown, strict: boolean, path: string, out: string[], depth = 0): void {
  if (depth > CANONICAL_MAX_DEPTH) fail(path.slice(0, 200), `nested deeper than ${CANONICAL_MAX_DEPTH}`);
  if (v === null) {
    out.push('null');
    return;
  }
  switch (typeof v) {
    case 'boolean':
      out.push(v ? 'true' : 'false');
      return;
    case 'number':
      if (!Number.isFinite(v)) fail(path, 'non-finite number');
      if (strict && Number.isInteger(v) && !Number.isSafeInteger(v)) fail(path, 'unsafe integer');
      out.push(Object.is(v, -0) ? '0' : String(v));
      return;
    case 'string':
      if (LONE_SURROGATE.test(v)) fail(path, 'lone UTF-16 surrogate');
      out.push(JSON.stringify(v));
      return;
    case 'object': {
      if (Array.isArray(v)) {
        out.push('[');
        for (let i = 0; i < v.length; i++) {
          if (i > 0) out.push(',');
          if (!(i in v)) fail(`${path}[${i}]`, 'sparse array');
          serialise(v[i], strict, `${path}[${i}]`, out, depth + 1);
        }
        out.push(']');
        return;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) fail(path, 'not a plain object');
      const keys = Object.keys(v as object).sort();
      out.push('{');
      let first = true;
      for (const k of keys) {
        const child = (v as Record<string, unknown>)[k];
        if (child === undefined) fail(`${path}.${k}`, 'undefined');
        if (LONE_SURROGATE.test(k)) fail(`${path}.${k}`, 'lone UTF-16 surrogate in key');
        if (!first) out.push(',');
        first = false;
        out.push(JSON.stringify(k), ':');
        serialise(child, strict, path ? `${path}.${k}` : k, out, depth + 1);
      }
      out.push('}');
      return;
    }
    default:
      fail(path, typeof v);
  }
}

/** RFC 8785 JCS text of any JSON value (finite numbers of any magnitude). */
export function jcs(value: unknown): string {
  const out: string[] = [];
  serialise(value, false, '', out);
  return out.join('');
}

/** Canonical text used for signing and hashing (JCS + safe integers only). */
export function canonicalString(value: unknown): string {
  const out: string[] = [];
  serialise(value, true, '', out);
  return out.join('');
}

const encoder = new TextEncoder();

/** Canonical UTF-8 bytes: the only input to signing and hashing. */
export function canonical(value: unknown): Uint8Array {
  return encoder.encode(canonicalString(value));
}

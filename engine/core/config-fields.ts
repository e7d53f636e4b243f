/**
 * Declarative config field specs (seed §8): each field has a type, a default and limits. Module
 * definitions declare their config section with these helpers; `core/config.ts` assembles the
 * sections and validates. A leaf module: it imports nothing but errors, so any module may use it.
 */
import { HnError } from './errors.js';

export type Field =
  | { t: 'bool'; d: boolean }
  | { t: 'int'; d: number; min?: number | undefined; max?: number | undefined }
  | { t: 'num'; d: number; min?: number | undefined; max?: number | undefined; minOpen?: boolean }
  | { t: 'str'; d: string; max?: number; re?: RegExp }
  | { t: 'enum'; d: string; of: readonly string[] }
  | { t: 'nullable_str'; d: string | null; re?: RegExp }
  | { t: 'str_list'; d: string[]; re?: RegExp; max?: number }
  | { t: 'any_list'; d: unknown[]; item: (v: unknown, path: string) => void };

/** One config section: field name → spec. A module section must have `enabled`. */
export type ConfigSection = Record<string, Field>;

export const bool = (d: boolean) => ({ t: 'bool' as const, d });
export const int = (d: number, min?: number, max?: number) => ({ t: 'int' as const, d, min, max });
export const num = (d: number, min?: number, max?: number, minOpen = false) => ({
  t: 'num' as const,
  d,
  min,
  max,
  minOpen,
});
export const str = (d: string, max = 256) => ({ t: 'str' as const, d, max });
export const oneOf = (d: string, of: readonly string[]) => ({ t: 'enum' as const, d, of });
export const nullableStr = (re: RegExp) => ({ t: 'nullable_str' as const, d: null as string | null, re });
export const strList = (d: string[], re: RegExp) => ({ t: 'str_list' as const, d, re });
export const anyList = (item: (v: unknown, path: string) => void) => ({
  t: 'any_list' as const,
  d: [] as unknown[],
  item,
});

export const NODE_ID_RE = /^ed25519:[A-Za-z0-9_-]{43}$/;

/** The value type of one field spec. */
export type ValueOf<F> = F extends { t: 'bool' }
  ? boolean
  : F extends { t: 'int' | 'num' }
    ? number
    : F extends { t: 'nullable_str' }
      ? string | null
      : F extends { t: 'str_list' }
        ? string[]
        : F extends { t: 'any_list' }
          ? any[]
          : string;

/** The (read-only) value type of a whole section spec. */
export type SectionValue<S> = { readonly [K in keyof S]: ValueOf<S[K]> };

export function fieldError(path: string, why: string): HnError {
  return new HnError('invalid_field', `config field ${path} ${why}`, { field: path });
}

/** Defaults of one section. */
export function sectionDefaults(spec: ConfigSection): Record<string, unknown> {
  const sec: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(spec)) sec[k] = structuredClone(f.d);
  return sec;
}

/** Validate one value against its spec; returns the (copied) value or throws `invalid_field`. */
export function checkField(f: Field, v: unknown, path: string): unknown {
  switch (f.t) {
    case 'bool':
      if (typeof v !== 'boolean') throw fieldError(path, 'must be true or false');
      return v;
    case 'int':
    case 'num': {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw fieldError(path, 'must be a number');
      if (f.t === 'int' && !Number.isInteger(v)) throw fieldError(path, 'must be an integer');
      if (f.min !== undefined && (v < f.min || (f.t === 'num' && f.minOpen && v === f.min)))
        throw fieldError(path, `must be ${f.t === 'num' && f.minOpen ? '>' : '>='} ${f.min}`);
      if (f.max !== undefined && v > f.max) throw fieldError(path, `must be <= ${f.max}`);
      return v;
    }
    case 'str':
      if (typeof v !== 'string') throw fieldError(path, 'must be a string');
      if (f.max !== undefined && v.length > f.max)
        throw fieldError(path, `must be at most ${f.max} characters`);
      if (f.re && !f.re.test(v)) throw fieldError(path, 'has an invalid format');
      return v;
    case 'enum':
      if (typeof v !== 'string' || !f.of.includes(v))
        throw fieldError(path, `must be one of ${f.of.join(', ')}`);
      return v;
    case 'nullable_str':
      if (v === null) return null;
      if (typeof v !== 'string' || (f.re && !f.re.test(v))) throw fieldError(path, 'has an invalid format');
      return v;
    case 'str_list':
      if (!Array.isArray(v)) throw fieldError(path, 'must be a list');
      v.forEach((x, i) => {
        if (typeof x !== 'string' || (f.re && !f.re.test(x)))
          throw fieldError(`${path}[${i}]`, 'has an invalid format');
      });
      return [...v];
    case 'any_list':
      if (!Array.isArray(v)) throw fieldError(path, 'must be a list');
      v.forEach((x, i) => f.item(x, `${path}[${i}]`));
      return structuredClone(v);
  }
}

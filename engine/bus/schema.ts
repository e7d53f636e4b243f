/** JSON Schema validation for capability bodies (Ajv, draft 2020-12 subset), with errors that name the field. */
import AjvModule, { type ValidateFunction } from 'ajv';
import { HnError, type ErrorCode } from '../core/errors.js';

export type JsonSchema = Record<string, unknown>;

// ajv is CommonJS: under Node ESM the class is the default export, under bundlers it may sit on `.default`
const AjvClass = ((AjvModule as unknown as { default?: typeof AjvModule }).default ??
  AjvModule) as typeof AjvModule;
const ajv = new AjvClass({ allErrors: false, strict: false, validateFormats: false });
const cache = new WeakMap<JsonSchema, ValidateFunction>();

export function compileSchema(schema: JsonSchema): ValidateFunction {
  const hit = cache.get(schema);
  if (hit) return hit;
  let v: ValidateFunction;
  try {
    v = ajv.compile(schema);
  } catch (e) {
    throw new HnError('schema_invalid', `invalid JSON Schema: ${(e as Error).message.slice(0, 200)}`);
  }
  cache.set(schema, v);
  return v;
}

/** Throw `code` naming the first offending field when `value` does not match `schema`. */
export function assertSchema(
  schema: JsonSchema,
  value: unknown,
  code: ErrorCode,
  extra: Record<string, unknown> = {},
): void {
  const v = compileSchema(schema);
  if (v(value)) return;
  const e = v.errors?.[0];
  let field = (e?.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
  if (e?.keyword === 'required')
    field = [field, (e.params as { missingProperty: string }).missingProperty].filter(Boolean).join('.');
  if (e?.keyword === 'additionalProperties')
    field = [field, (e.params as { additionalProperty: string }).additionalProperty]
      .filter(Boolean)
      .join('.');
  field ||= '$';
  throw new HnError(code, `field ${field} ${e?.message ?? 'is invalid'}`.slice(0, 300), { field, ...extra });
}

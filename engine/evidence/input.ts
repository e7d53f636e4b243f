/** Small input checks shared by the evidence capabilities: every failure is `bad_request`. */
import { HnError } from '../core/errors.js';

export const isPlain = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
export const bad = (msg: string): never => {
  throw new HnError('bad_request', msg);
};
export function obj(input: unknown): Record<string, unknown> {
  if (!isPlain(input)) bad('input must be an object');
  return input as Record<string, unknown>;
}
export function optBool(v: unknown, field: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') bad(`${field} must be a boolean`);
  return v as boolean;
}
export function optInt(v: unknown, field: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    bad(`${field} must be an integer ${min}..${max}`);
  return v as number;
}

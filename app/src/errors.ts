/**
 * Errors as the UI shows them: every failure the engine reports is an HnError with a seed code
 * (and, for config, the field); anything else is shown as `internal_error` with its message.
 */
export interface DisplayError {
  code: string;
  message: string;
  field?: string;
}

export function toDisplayError(e: unknown): DisplayError {
  if (e && typeof e === 'object') {
    const o = e as { code?: unknown; message?: unknown; field?: unknown; name?: unknown };
    if (typeof o.code === 'string' && typeof o.message === 'string') {
      const out: DisplayError = { code: o.code, message: o.message };
      if (typeof o.field === 'string') out.field = o.field;
      return out;
    }
    if (typeof o.message === 'string')
      return {
        code: typeof o.name === 'string' && o.name !== 'Error' ? o.name : 'internal_error',
        message: o.message,
      };
  }
  return { code: 'internal_error', message: String(e) };
}

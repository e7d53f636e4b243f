/** File-system ModelSource for Node tools, tests and benches (the engine itself never imports node:*). */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, normalize, sep } from 'node:path';
import { HnError } from '../../engine/core/errors.js';
import type { ModelSource } from '../../engine/llm/local.js';

export function dirSource(dir: string): ModelSource {
  const safe = (p: string): string => {
    const n = normalize(p);
    if (n.startsWith('..') || n.startsWith(sep))
      throw new HnError('bad_request', `path escapes the model directory: ${p}`);
    return join(dir, n);
  };
  return {
    async read(path) {
      try {
        return new Uint8Array(await readFile(safe(path)));
      } catch (e) {
        if (e instanceof HnError) throw e;
        throw new HnError('not_found', `${path}: ${(e as Error).message}`);
      }
    },
    async exists(path) {
      return existsSync(safe(path));
    },
  };
}

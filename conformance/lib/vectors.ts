/** Reads a vector file of conformance/vectors/ (runner side only). */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const VECTORS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'vectors');

export function loadVectors(path: string): any {
  return JSON.parse(readFileSync(join(VECTORS_DIR, path), 'utf8'));
}

/** What one case ran of a vector family against the SUT (aggregated into report.wire_vectors). */
export interface VectorTally {
  run: number;
  passed: number;
  /** the independent source the expected values come from (the file's `source.kind`) */
  source: string;
  /** how they reached the implementation: `wire` (sim peer / X08 channel) or `vector` (harness op) */
  via: string;
}

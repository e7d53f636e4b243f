/**
 * The demo model for the TypeScript tests and benches: `scripts/ensure-demo-model.mjs` (builds `models/demo/` and its
 * split unless they are there and intact), typed.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface DemoModel {
  /** models/demo/ (the whole model) */
  dir: string;
  /** models/demo/split/ (manifest, head, shards, tail) */
  splitDir: string;
  built: boolean;
}

export async function ensureDemoModel(): Promise<DemoModel> {
  const m = (await import(pathToFileURL(join(ROOT, 'scripts/ensure-demo-model.mjs')).href)) as {
    ensureDemoModel(o: { root: string }): Promise<DemoModel>;
  };
  return m.ensureDemoModel({ root: ROOT });
}

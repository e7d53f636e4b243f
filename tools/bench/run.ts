/**
 * `npm run bench [-- prefix ...]`: runs every `tools/bench/*.bench.ts` module, each exporting
 * `figures(filter)` → `Record<string, number>`, and writes them into `bench-results.json` at the
 * repo root (a flat object of "name": number). With arguments, only figures whose names start with
 * one of the given prefixes are run; every existing figure under those prefixes is dropped first, so
 * a figure not measured in this run (e.g. WebGPU without an adapter) never survives from an older
 * run. Figures of other prefixes are kept as they were. Without arguments the file is rewritten
 * from this run alone.
 */
import { readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export type BenchFilter = (name: string) => boolean;
export interface BenchModule {
  /** Names this module can produce (used to skip modules that match no prefix). */
  names: string[];
  figures(want: BenchFilter): Promise<Record<string, number>>;
}

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
/** Seed ids whose figures carry the module's name (`npm run bench -- m27` runs the `moe.` figures). */
const ALIASES: Record<string, string> = { m27: 'moe.' };
const prefixes = process.argv
  .slice(2)
  .filter((a) => !a.startsWith('-'))
  .map((a) => ALIASES[a] ?? a);
const want: BenchFilter = (name) => prefixes.length === 0 || prefixes.some((p) => name.startsWith(p));

const out = join(root, 'bench-results.json');
const previous: Record<string, number> = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : {};
// keep only figures this run does not cover; everything it covers must be measured again or vanish
const results: Record<string, number> = Object.fromEntries(
  Object.entries(previous).filter(([k]) => prefixes.length > 0 && !want(k)),
);
const dropped = Object.keys(previous).filter((k) => !(k in results));
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .sort();
for (const f of files) {
  const mod = (await import(pathToFileURL(join(here, f)).href)) as BenchModule;
  if (!mod.names.some(want)) continue;
  process.stderr.write(`bench: ${f}\n`);
  const figs = await mod.figures(want);
  for (const [k, v] of Object.entries(figs)) {
    if (!want(k)) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`figure ${k} is not a finite number`);
    results[k] = v;
  }
}
const gone = dropped.filter((k) => !(k in results));
if (gone.length) process.stderr.write(`bench: not measured this run, dropped: ${gone.join(', ')}\n`);
const sorted = Object.fromEntries(Object.entries(results).sort(([a], [b]) => (a < b ? -1 : 1)));
writeFileSync(out, JSON.stringify(sorted, null, 2) + '\n');
process.stdout.write(JSON.stringify(sorted, null, 2) + '\n');

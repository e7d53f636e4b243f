/**
 * X09 mutation score: `npm run bench -- x09` runs the suite against every mutant of
 * conformance/mutants/catalogue.ts (deliberately broken engines) and reports caught ÷ mutants.
 * Survivors are listed on stderr and in conformance-report/mutants.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import type { BenchFilter } from './run.js';

export const names = [
  'x09.mutation_score',
  'x09.mutants_total',
  'x09.mutants_caught',
  'x09.mutants_survived',
  'x09.mutation_run_s',
];

export async function figures(want: BenchFilter): Promise<Record<string, number>> {
  if (!names.some(want)) return {};
  const { runMutants } = await import('../../conformance/mutants/run.js');
  const r = await runMutants({ log: (l) => process.stderr.write(`  ${l}\n`) });
  mkdirSync('conformance-report', { recursive: true });
  writeFileSync('conformance-report/mutants.json', JSON.stringify(r, null, 2) + '\n');
  process.stderr.write(
    `x09: ${r.caught}/${r.total} mutants caught; survivors: ${r.survivors.length ? r.survivors.join(', ') : 'none'}\n`,
  );
  return {
    'x09.mutation_score': r.score,
    'x09.mutants_total': r.total,
    'x09.mutants_caught': r.caught,
    'x09.mutants_survived': r.survivors.length,
    'x09.mutation_run_s': r.ms / 1000,
  };
}

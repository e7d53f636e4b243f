/**
 * Mutation run of X09 (`npm run conformance -- --mutants`): each mutant in `catalogue.ts` is a
 * deliberately broken engine, made by patching engine/ source text as a fresh child process loads it
 * (loader hook `hook.mjs`; the product code on disk is never changed and carries no fault switch).
 * The suite runs in-process against each; a mutant is caught when at least one case fails. The
 * unmutated engine runs first and must fail nothing, or the run is refused.
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MUTANTS, type Mutant } from './catalogue.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');

export interface MutantResult {
  id: string;
  section: string;
  title: string;
  caught: boolean;
  /** cases that failed against the mutant (the first one when stopping at the first failure) */
  caught_by: string[];
  /** the patch did not apply (engine source moved on): counted as not caught */
  stale?: string;
  error?: string;
  ms: number;
}

export interface MutationRun {
  baseline: { failed: string[]; passed: number };
  results: MutantResult[];
  total: number;
  caught: number;
  score: number;
  survivors: string[];
  ms: number;
}

function child(
  patches: Mutant['patches'],
  all = false,
  timeoutMs = 120_000,
): Promise<{ failed?: string[]; passed?: number; error?: string; log: string }> {
  return new Promise((resolve) => {
    const p = spawn(
      process.execPath,
      [
        '--import',
        join(HERE, 'register.mjs'),
        '--import',
        'tsx',
        join(HERE, 'child.ts'),
        ...(all ? ['--all'] : []),
      ],
      { cwd: ROOT, env: { ...process.env, HN_MUTANT_PATCHES: JSON.stringify(patches) } },
    );
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', () => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('@@MUTANT '));
      if (!line) return resolve({ error: `no result (child exited)`, log: out.slice(-2000) });
      resolve({ ...JSON.parse(line.slice(9)), log: out.slice(-2000) });
    });
  });
}

export async function runMutants(
  o: { only?: string[]; parallel?: number; log?: (l: string) => void; mutants?: Mutant[] } = {},
): Promise<MutationRun> {
  const log = o.log ?? (() => undefined);
  const t0 = Date.now();
  const base = await child([], true);
  if (base.error || base.failed?.length)
    throw new Error(
      `the unmutated engine does not pass the suite (${base.error ?? base.failed!.join(', ')}): mutants would prove nothing`,
    );
  const list = (o.mutants ?? MUTANTS).filter((m) => !o.only?.length || o.only.includes(m.id));
  const results: MutantResult[] = new Array(list.length);
  let next = 0;
  const par = Math.max(1, o.parallel ?? Math.min(4, Math.max(1, availableParallelism() - 1)));
  await Promise.all(
    Array.from({ length: par }, async () => {
      while (next < list.length) {
        const i = next++;
        const m = list[i]!;
        const s = Date.now();
        const r = await child(m.patches);
        const stale = /mutant patch not applicable: (.*)/.exec(`${r.error ?? ''}\n${r.log}`)?.[1];
        const res: MutantResult = {
          id: m.id,
          section: m.section,
          title: m.title,
          caught: !stale && !r.error && (r.failed?.length ?? 0) > 0,
          caught_by: r.failed ?? [],
          ...(stale ? { stale } : {}),
          ...(r.error && !stale ? { error: r.error } : {}),
          ms: Date.now() - s,
        };
        results[i] = res;
        log(
          `${res.caught ? 'caught  ' : stale ? 'STALE   ' : 'SURVIVED'} ${m.id.padEnd(28)} ${res.caught ? `by ${res.caught_by.join(',')}` : (stale ?? res.error ?? 'no case failed')} (${res.ms} ms)`,
        );
      }
    }),
  );
  const caught = results.filter((r) => r.caught).length;
  return {
    baseline: { failed: base.failed ?? [], passed: base.passed ?? 0 },
    results,
    total: results.length,
    caught,
    score: results.length ? caught / results.length : 0,
    survivors: results.filter((r) => !r.caught).map((r) => r.id),
    ms: Date.now() - t0,
  };
}

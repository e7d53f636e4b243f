/**
 * One mutant run (a fresh Node process): the loader hook (register.mjs) has patched the engine source
 * named by HN_MUTANT_PATCHES as it loaded; this runs the suite in-process against that broken engine
 * and prints one JSON line `{failed:[case ids], passed, skipped}`. `--all` runs every case instead of
 * stopping at the first failure.
 */
import { EngineTarget } from '../harness/targets/engine.js';
import { runSuite } from '../runner/execute.js';
import { CONFORMANCE_DEFAULT_SEED } from '../../engine/core/constants.js';

const all = process.argv.includes('--all');
const target = new EngineTarget({ peers: 2 });
try {
  const r = await runSuite(target, {
    seed: CONFORMANCE_DEFAULT_SEED,
    outDir: null,
    stopOnFail: !all,
    caseTimeoutMs: 8000,
  });
  const failed: string[] = Object.values(r.report.sections as Record<string, any>).flatMap((s) =>
    s.cases.filter((c: any) => c.status === 'fail').map((c: any) => c.id),
  );
  // the runner refusing the implementation at pre-flight (e.g. its descriptor does not verify) catches it too
  if (r.report.preflight?.ok === false) failed.push(`preflight:${r.report.preflight.reason}`);
  process.stdout.write(
    `\n@@MUTANT ${JSON.stringify({ failed, passed: r.report.totals.passed, skipped: r.report.totals.skipped, overall: r.report.overall })}\n`,
  );
} catch (e) {
  const msg = String((e as Error)?.message ?? e);
  // the runner refusing the SUT's signed report is a catch (`report_refused`), any other throw is an error
  if ((e as { code?: string }).code === 'report_refused')
    process.stdout.write(
      `\n@@MUTANT ${JSON.stringify({ failed: [`runner:report_refused`], passed: 0, skipped: 0 })}\n`,
    );
  else process.stdout.write(`\n@@MUTANT ${JSON.stringify({ error: msg })}\n`);
} finally {
  await target.close().catch(() => undefined);
  process.exit(0);
}

/**
 * X09 runner CLI: `npm run conformance -- --target <in-process | browsers:N | url> [--url <base>]
 *   [--out <dir>] [--seed <n|0x..>] [--suite <glob>]... [--skip-experimental] [--list]
 *   [--case-timeout-ms <n>] [--admin-token-file <path>] [--relay-url <ws://…>] [--app-url <http://…>]
 *   [--as-configured]` (default: a module section whose module is off is run with the module switched
 *   on through the `config` op; --as-configured leaves the SUT's flags alone and skips such sections)
 * Writes report.json (+ report.cid, reports/<cid>.json), report.html and run_manifest.json.
 * `--mutants [--mutant <id>]... [--parallel <n>]`: the mutation run (conformance/mutants/), writes mutants.json.
 * Several `--target`s: one run each into <out>/<target>/ and one matrix.json + matrix.html (targets ×
 * sections with handshake and RTT, cases × targets) over them; `--matrix <report.json | dir>…` builds the
 * matrix from earlier runs' signed reports (each must verify).
 * Exit: 0 pass/partial, 1 fail, 3 pre-flight or usage error, 4 internal error.
 */
import { CONFORMANCE_DEFAULT_OUTPUT_DIR, CONFORMANCE_DEFAULT_SEED } from '../engine/core/constants.js';
import { parseSeed } from './lib/drbg.js';
import { loadSections, runSuite } from './runner/execute.js';
import type { Target } from './harness/target.js';

function args(argv: string[]) {
  const out: Record<string, string[]> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) continue;
    const [k, inline] = a.slice(2).split('=', 2) as [string, string | undefined];
    const v = inline ?? (argv[i + 1] && !argv[i + 1]!.startsWith('--') ? argv[++i]! : 'true');
    (out[k] ??= []).push(v);
    // --matrix takes every following path
    if (k === 'matrix') while (argv[i + 1] && !argv[i + 1]!.startsWith('--')) out[k].push(argv[++i]!);
  }
  return out;
}

export async function makeTarget(
  spec: string,
  a: Record<string, string[]>,
): Promise<{ target: Target; browser?: { name: string; version: string }; urls?: string[] }> {
  if (spec === 'in-process' || spec === 'engine') {
    const { EngineTarget } = await import('./harness/targets/engine.js');
    return { target: new EngineTarget({ peers: Number(a.peers?.[0] ?? 2) }) };
  }
  const b = /^browsers?:(\d+)$/.exec(spec);
  if (b) {
    const { BrowserTarget } = await import('./harness/targets/browser.js');
    const target = new BrowserTarget({ peers: Number(b[1]), log: (l) => console.log(l) });
    // launches the browsers now: the report names their version
    const info = await target.info().catch(async (e: unknown) => {
      await target.close();
      throw Object.assign(e as Error, { exitCode: 3 });
    });
    return {
      target,
      ...(info.browser ? { browser: info.browser } : {}),
      ...(target.url ? { urls: [target.url] } : {}),
    };
  }
  if (spec === 'url') {
    const url = a.url?.[0];
    const tokenFile = a['admin-token-file']?.[0];
    if (!url || !tokenFile)
      throw Object.assign(new Error('--target url needs --url <base> and --admin-token-file <path>'), {
        exitCode: 3,
      });
    const { readFileSync } = await import('node:fs');
    const token = readFileSync(tokenFile, 'utf8').trim();
    const { UrlTarget } = await import('./harness/targets/url.js');
    const target = new UrlTarget({ url, token, ...(a['relay-url'] ? { relayUrl: a['relay-url'][0]! } : {}) });
    const info = await target.info().catch((e: unknown) => {
      throw Object.assign(e as Error, { exitCode: 3 });
    });
    return { target, urls: [url], ...(info.browser ? { browser: info.browser } : {}) };
  }
  throw Object.assign(new Error(`unknown target ${spec}`), { exitCode: 3 });
}

async function main() {
  const a = args(process.argv.slice(2));
  const spec = a.target?.[0] ?? 'in-process';
  const seed = a.seed ? parseSeed(a.seed[0]!) : CONFORMANCE_DEFAULT_SEED;
  if (a.mutants) {
    const { runMutants } = await import('./mutants/run.js');
    const { mkdirSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    if (spec !== 'in-process' && spec !== 'engine')
      throw Object.assign(new Error('--mutants runs against the in-process engine only'), { exitCode: 3 });
    const r = await runMutants({
      ...(a.mutant ? { only: a.mutant } : {}),
      ...(a.parallel ? { parallel: Number(a.parallel[0]) } : {}),
      log: (l) => console.log(l),
    });
    const dir = a.out?.[0] ?? CONFORMANCE_DEFAULT_OUTPUT_DIR;
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'mutants.json'), JSON.stringify(r, null, 2) + '\n');
    console.log(
      `\nmutants: ${r.caught}/${r.total} caught (score ${r.score.toFixed(3)}) in ${(r.ms / 1000).toFixed(1)} s${r.survivors.length ? `; survivors: ${r.survivors.join(', ')}` : ''}`,
    );
    console.log(`  ${join(dir, 'mutants.json')}`);
    return r.survivors.length ? 1 : 0;
  }
  if (a.list) {
    for (const s of await loadSections())
      for (const c of s.cases) console.log(`${s.name}\t${c.id}\t${c.title}`);
    return 0;
  }
  if (a.matrix) return writeMatrix(a.matrix, a.out?.[0] ?? CONFORMANCE_DEFAULT_OUTPUT_DIR);
  const specs = a.target ?? ['in-process'];
  const out = a.out?.[0] ?? a['output-dir']?.[0] ?? CONFORMANCE_DEFAULT_OUTPUT_DIR;
  if (specs.length === 1) return (await runOne(specs[0]!, a, seed, out)).exitCode;
  // several targets: one run each into <out>/<target>/, then one matrix over all of them
  const { join } = await import('node:path');
  const dirs: string[] = [];
  let exitCode = 0;
  for (const sp of specs) {
    const dir = join(out, sp.replace(/[^\w.-]+/g, '-'));
    console.log(`\n=== target ${sp} → ${dir}`);
    try {
      exitCode = Math.max(exitCode, (await runOne(sp, a, seed, dir)).exitCode);
      dirs.push(dir);
    } catch (e) {
      console.error(`conformance: target ${sp}: ${(e as Error).message}`);
      exitCode = Math.max(exitCode, (e as { exitCode?: number }).exitCode ?? 4);
    }
  }
  if (dirs.length) await writeMatrix(dirs, out);
  return exitCode;
}

async function runOne(spec: string, a: Record<string, string[]>, seed: number, outDir: string) {
  const { target, browser, urls } = await makeTarget(spec, a);
  try {
    const t0 = Date.now();
    const r = await runSuite(target, {
      seed,
      outDir,
      ...(a.suite ? { suites: a.suite } : {}),
      ...(a['case-timeout-ms'] ? { caseTimeoutMs: Number(a['case-timeout-ms'][0]) } : {}),
      skipExperimental: !!a['skip-experimental'],
      enableModules: !a['as-configured'],
      ...(browser ? { browser } : {}),
      ...(urls ? { urls } : {}),
      log: (l) => console.log(l),
    });
    const t = r.report.totals;
    console.log(
      `\n${r.report.overall.toUpperCase()} (level ${r.report.level}): ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped of ${t.total} in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    console.log(
      `report ${r.report_cid}${r.report.signature ? ' (signed by the implementation)' : ' (unsigned)'}`,
    );
    for (const f of r.files) console.log(`  ${f}`);
    return r;
  } finally {
    await target.close();
  }
}

/** matrix.json + matrix.html over the signed reports in `paths` (report.json files or run folders) */
async function writeMatrix(paths: string[], out: string): Promise<number> {
  const { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { buildMatrix, renderMatrixHtml } = await import('./report/matrix.js');
  const reports = paths.map((p) => {
    const f = existsSync(p) && statSync(p).isDirectory() ? join(p, 'report.json') : p;
    return JSON.parse(readFileSync(f, 'utf8'));
  });
  const m = buildMatrix(reports);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'matrix.json'), JSON.stringify(m, null, 2) + '\n');
  writeFileSync(join(out, 'matrix.html'), renderMatrixHtml(m));
  console.log(
    `\nmatrix: ${m.targets.map((t) => `${t.label} ${t.overall}`).join(' · ')} → ${join(out, 'matrix.html')}`,
  );
  return m.targets.some((t) => t.overall === 'fail') ? 1 : 0;
}

if (process.argv[1] && /conformance[\\/]runner(\.ts)?$/.test(process.argv[1])) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(`conformance: ${(e as Error).message}`);
      process.exit((e as { exitCode?: number }).exitCode ?? 4);
    },
  );
}

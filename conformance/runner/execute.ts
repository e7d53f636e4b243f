/**
 * Runs the suite against a target: pre-flight, selection, cases (sorted by id, one at a time, with
 * timeouts), aggregation, signing by the SUT (`protocol.conformance.report` submit) and output files.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { jcs, sha256Hex, utf8, verifyObj } from '../lib/crypto.js';
import type { VectorTally } from '../lib/vectors.js';
import { formatSeed } from '../lib/drbg.js';
import {
  buildReport,
  reportCid,
  SUITE_VERSION,
  type CaseResult,
  type Report,
  type SectionMeta,
} from '../report/build.js';
import { renderHtml } from '../report/html.js';
import type { Target } from '../harness/target.js';
import { makeCtx, type Outcome, type SectionDef } from './case.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const SUITE_PROTOCOL_VERSIONS = ['3.0.0'];

/** Every section file under suites/ (a file exports `section` or `sections`): adding a section = adding a file. */
export async function loadSections(): Promise<SectionDef[]> {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (/\.ts$/.test(e.name) && !e.name.endsWith('.test.ts')) files.push(join(d, e.name));
    }
  };
  walk(join(ROOT, 'suites'));
  const out: SectionDef[] = [];
  for (const f of files.sort()) {
    const m = await import(pathToFileURL(f).href);
    if (m.section) out.push(m.section);
    if (Array.isArray(m.sections)) out.push(...m.sections);
  }
  // a module's own section file replaces its placeholder (suites/experimental/modules.ts)
  const real = new Set(out.filter((s) => !s.placeholder).map((s) => s.name));
  const kept = out.filter((s) => !s.placeholder || !real.has(s.name));
  const names = new Set<string>();
  for (const s of kept) {
    if (names.has(s.name)) throw new Error(`duplicate section ${s.name}`);
    names.add(s.name);
  }
  return kept.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/**
 * The interop figures of the matrix (report.html): a sim-peer link handshake to SUT peer 0 (needs
 * raw_link) and the median of 5 harness call round trips (protocol.version.list). Measured, never set.
 */
async function measureInterop(target: Target, info: any, seed: number) {
  const rtts: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await target.call(0, 'protocol.version.list', {});
    rtts.push(performance.now() - t0);
  }
  rtts.sort((a, b) => a - b);
  let handshake_ms: number | null = null;
  if (target.rawLink) {
    const { SimPeer } = await import('../harness/simpeer/link.js');
    const { drbgIdentity } = await import('../lib/drbg.js');
    const t0 = performance.now();
    try {
      const port = await target.rawLink(0);
      const sim = new SimPeer(port, {
        key: drbgIdentity(seed, 'interop/handshake'),
        community: info.community_id,
        protocol_versions: SUITE_PROTOCOL_VERSIONS,
        to: info.peers[0] ?? null,
      });
      await sim.open();
      handshake_ms = Math.round((performance.now() - t0) * 10) / 10;
      sim.close();
    } catch {
      handshake_ms = null;
    }
  }
  return { handshake_ms, rtt_ms_p50: Math.round(rtts[2]! * 10) / 10 };
}

/** wptreport-compatible JSON (web-platform-tests' `wpt run --log-wptreport` shape): one entry per case. */
export function wptReport(report: Report, results: CaseResult[]) {
  const st = (s: string) => (s === 'pass' ? 'PASS' : s === 'fail' ? 'FAIL' : 'SKIP');
  return {
    run_info: {
      product: report.implementation?.name ?? 'unknown',
      browser_version: report.target.browser?.version ?? null,
      os: process.platform,
      revision: report.implementation?.version ?? null,
      suite_version: report.suite_version,
      target: report.target.kind,
    },
    time_start: Date.parse(report.ran_at),
    time_end: Date.parse(report.finished_at),
    results: results.map((c) => ({
      test: `/${c.section}/${c.id}`,
      status: st(c.status),
      message: c.failure
        ? `${c.failure.message}: expected ${c.failure.expected}, observed ${c.failure.observed}`
        : (c.reason ?? null),
      duration: Math.round(c.duration_ms),
      subtests: [{ name: c.title, status: st(c.status), message: c.reason ?? c.failure?.message ?? null }],
    })),
  };
}

export class ReportRefused extends Error {
  readonly code = 'report_refused';
  readonly exitCode = 4;
}

/** Fields the SUT adds when it signs; everything else must be byte-for-byte what the runner observed. */
const unsigned = (r: any) => {
  const { signature: _s, signed: _d, ...rest } = r ?? {};
  return rest;
};

/**
 * Refuse a signed report unless (1) it is exactly the report the runner computed (only `signature` and
 * `signed` added), (2) its signature verifies with the SUT's NodeID and (3) its CID recomputes.
 */
export function checkSignedReport(observed: unknown, signed: any, cid: unknown, nodeId: string): void {
  if (!signed || typeof signed !== 'object') throw new ReportRefused('SUT returned no signed report');
  if (jcs(unsigned(signed)) !== jcs(unsigned(observed)))
    throw new ReportRefused(
      'refused: the signed report differs from the results the runner observed (report_mismatch)',
    );
  if (signed.signed !== true || !verifyObj(signed, nodeId))
    throw new ReportRefused('refused: the report signature does not verify with the SUT NodeID');
  if (reportCid(signed) !== cid) throw new ReportRefused('refused: report_cid does not recompute');
}

/** Verify a stored report file (`--verify <report.json>`): signature by its node_id, and its CID file if given. */
export function verifyReportFile(report: any, cid?: string): { ok: boolean; reason?: string } {
  if (!report?.node_id || !report.signed || !verifyObj(report, report.node_id))
    return { ok: false, reason: 'signature does not verify (edited after signing, or unsigned)' };
  if (cid !== undefined && reportCid(report) !== cid) return { ok: false, reason: 'CID does not recompute' };
  return { ok: true };
}

/** report.wire_vectors: per family, what the cases of this run actually ran through the harness. */
function wireVectors(tallies: { case_id: string; family: string; tally: VectorTally }[], families: string[]) {
  const fam: Record<
    string,
    { run: number; passed: number; sources: string[]; via: string[]; cases: string[] }
  > = {};
  for (const t of tallies) {
    const f = (fam[t.family] ??= { run: 0, passed: 0, sources: [], via: [], cases: [] });
    f.run += t.tally.run;
    f.passed += t.tally.passed;
    if (!f.sources.includes(t.tally.source)) f.sources.push(t.tally.source);
    if (!f.via.includes(t.tally.via)) f.via.push(t.tally.via);
    f.cases.push(t.case_id);
  }
  return {
    families: fam,
    run: Object.values(fam).reduce((n, f) => n + f.run, 0),
    passed: Object.values(fam).reduce((n, f) => n + f.passed, 0),
    not_run: families.filter((f) => !fam[f]),
  };
}

/** Check every vector file listed in vectors/index.json against its sha256. */
export function verifyVectors(): {
  ok: boolean;
  index_sha256: string;
  problems: string[];
  families: string[];
} {
  const dir = join(ROOT, 'vectors');
  const text = readFileSync(join(dir, 'index.json'), 'utf8');
  const idx = JSON.parse(text) as { files: { path: string; sha256: string; family?: string }[] };
  const problems: string[] = [];
  for (const f of idx.files) {
    try {
      if (sha256Hex(readFileSync(join(dir, f.path))) !== f.sha256)
        problems.push(`${f.path}: sha256 mismatch`);
    } catch {
      problems.push(`${f.path}: missing`);
    }
  }
  const families = [...new Set(idx.files.map((f) => f.family ?? f.path.split('/')[0]!))];
  return { ok: problems.length === 0, index_sha256: sha256Hex(utf8(text)), problems, families };
}

/** switch a module on/off on every SUT peer; null when done, else why not */
async function switchModule(target: Target, peers: number, module: string, on: boolean) {
  try {
    for (let p = 0; p < peers; p++) await target.config!(p, { [module]: on });
    return null;
  } catch (e) {
    return String((e as Error)?.message ?? e).slice(0, 200);
  }
}

export interface RunOptions {
  seed: number;
  outDir?: string | null;
  suites?: string[];
  caseTimeoutMs?: number;
  skipExperimental?: boolean;
  browser?: { name: string; version: string };
  urls?: string[];
  log?: (line: string) => void;
  /**
   * experimental sections whose module is off on the SUT: switch it on for the section through the
   * `config` op (every SUT peer) and off again after it (default true; false = test the SUT as configured)
   */
  enableModules?: boolean;
  /** mutation runs: after the first failing case, every later case is skipped ('stopped') */
  stopOnFail?: boolean;
}

export interface RunResult {
  report: Report;
  report_cid: string;
  exitCode: number;
  files: string[];
}

const matches = (name: string, globs?: string[]) =>
  !globs?.length ||
  globs.some((g) =>
    new RegExp(`^${g.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(name),
  );

export async function runSuite(target: Target, o: RunOptions): Promise<RunResult> {
  const log = o.log ?? (() => undefined);
  const started = Date.now();
  const sections = await loadSections();
  const results: CaseResult[] = [];
  const metas: SectionMeta[] = [];
  const tallies: { case_id: string; family: string; tally: VectorTally }[] = [];
  const record = (case_id: string, family: string, tally: VectorTally) =>
    tallies.push({ case_id, family, tally });
  let info = await target.info();
  if (!info.test_mode) throw new Error('target is not in test mode: refusing to run');
  // ---- pre-flight
  let implementation: any = null;
  let protocolVersion: string | null = null;
  let preflight: { ok: boolean; reason?: string } = { ok: true };
  const d = await target.call(0, 'protocol.self.describe', {});
  const v = await target.call(0, 'protocol.version.list', {});
  if ('error' in d || 'error' in v) preflight = { ok: false, reason: 'protocol_capabilities_unavailable' };
  else {
    implementation = d.output;
    if (!verifyObj(implementation, implementation.node_id))
      preflight = { ok: false, reason: 'descriptor_signature_invalid' };
    const majors = new Set(SUITE_PROTOCOL_VERSIONS.map((x) => x.split('.')[0]));
    const shared = (v.output.protocol_versions as string[]).filter((x) => majors.has(x.split('.')[0]));
    if (!shared.length) preflight = { ok: false, reason: 'protocol_unsupported_capability' };
    protocolVersion = shared[0] ?? null;
  }
  const vec = verifyVectors();
  if (!vec.ok)
    throw Object.assign(new Error(`vector integrity: ${vec.problems.join('; ')}`), { exitCode: 4 });
  await target.reset();
  info = await target.info();
  const interop = await measureInterop(target, info, o.seed);
  const manifest = {
    suite_version: SUITE_VERSION,
    suite_commit: null,
    runner: { node: process.version },
    target: { kind: target.kind, peers: info.peers.length, ...(o.urls ? { urls: o.urls } : {}) },
    seed: formatSeed(o.seed),
    selection: { included: [] as string[], excluded: [] as { id: string; reason: string }[] },
    flags: {
      suites: o.suites ?? [],
      skip_experimental: !!o.skipExperimental,
      enable_modules: o.enableModules !== false,
      case_timeout_ms: o.caseTimeoutMs ?? 30_000,
    },
    vectors_index_sha256: vec.index_sha256,
    /** modules the runner switched on for their sections (config op; off again afterwards) */
    modules_enabled: [] as string[],
    started_at: new Date(started).toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
  // ---- sections and cases
  if (preflight.ok)
    for (const s of sections) {
      if (!matches(s.name, o.suites)) continue;
      const meta: SectionMeta = {
        name: s.name,
        required: s.required,
        experimental: s.name.startsWith('experimental/'),
      };
      metas.push(meta);
      let sectionSkip: string | null = null;
      /** the module this section switched on (through the `config` op) and must switch off again */
      let switchedOn: string | null = null;
      if (meta.experimental && o.skipExperimental) sectionSkip = 'skip_experimental';
      else if (s.module) {
        let desc = await target.call(0, 'protocol.self.describe', {});
        if (
          !('error' in desc) &&
          !desc.output.modules?.[s.module] &&
          o.enableModules !== false &&
          target.config &&
          info.ops.includes('config')
        ) {
          // the runner, as the SUT's operator, switches the module on for its section (every SUT peer)
          const why = await switchModule(target, info.peers.length, s.module, true);
          if (why) sectionSkip = `module_enable_failed: ${s.module}: ${why}`;
          else {
            switchedOn = s.module;
            manifest.modules_enabled.push(s.module);
          }
          desc = await target.call(0, 'protocol.self.describe', {});
        }
        if (sectionSkip) {
          /* reason set above */
        } else if ('error' in desc || !desc.output.modules?.[s.module])
          sectionSkip = `module_disabled: ${s.module}`;
        else if (s.probe) {
          const p = await target.call(0, s.probe.capability, s.probe.input);
          if ('error' in p && (p.error.code === 'not_implemented' || p.error.code === 'not_found'))
            sectionSkip = `module_absent: ${s.module}`;
        }
      }
      if (sectionSkip) meta.skipped_reason = sectionSkip;
      for (const c of [...s.cases].sort((a, b) => (a.id < b.id ? -1 : 1))) {
        const base = { id: c.id, section: s.name, spec_ref: c.spec_ref, title: c.title };
        const missingOp = (c.requires?.ops ?? []).find((op) => !info.ops.includes(op));
        const reason =
          (o.stopOnFail && results.some((x) => x.status === 'fail')
            ? 'stopped: an earlier case failed'
            : null) ??
          sectionSkip ??
          (missingOp
            ? `harness_op_unavailable: ${missingOp}`
            : (c.requires?.peers ?? 1) > info.peers.length
              ? `needs ${c.requires!.peers} SUT peers`
              : null);
        if (reason) {
          results.push({ ...base, status: 'skipped', reason, duration_ms: 0 });
          manifest.selection.excluded.push({ id: c.id, reason });
          continue;
        }
        manifest.selection.included.push(c.id);
        const t0 = performance.now();
        let out: Outcome;
        try {
          const limit = c.timeout_ms ?? o.caseTimeoutMs ?? 30_000;
          let timer: ReturnType<typeof setTimeout> | undefined;
          out = await Promise.race([
            c.run(makeCtx(target, info, o.seed, c.id, record)),
            new Promise<Outcome>((res) => {
              timer = setTimeout(
                () =>
                  res({
                    status: 'fail',
                    failure: {
                      expected: `done within ${limit} ms`,
                      observed: 'timeout',
                      message: 'case timed out',
                      repro: {},
                    },
                  }),
                limit,
              );
            }),
          ]).finally(() => clearTimeout(timer));
        } catch (e) {
          out = {
            status: 'fail',
            failure: {
              expected: 'case completes',
              observed: String((e as Error)?.message ?? e).slice(0, 500),
              message: 'case raised',
              repro: {},
            },
          };
        }
        const r: CaseResult = { ...base, status: out.status, duration_ms: performance.now() - t0 };
        if (out.status === 'skipped') r.reason = out.reason;
        if (out.status === 'fail') r.failure = out.failure;
        results.push(r);
        log(
          `${out.status.padEnd(7)} ${s.name} ${c.id} ${r.duration_ms.toFixed(0)} ms${out.status === 'fail' ? ` — ${out.failure.message}: expected ${out.failure.expected}, observed ${out.failure.observed.slice(0, 200)}` : out.status === 'skipped' ? ` (${out.reason})` : ''}`,
        );
      }
      if (switchedOn) {
        const why = await switchModule(target, info.peers.length, switchedOn, false);
        if (why) log(`warning: could not switch ${switchedOn} off again: ${why}`);
      }
    }
  // ---- report, signed by the SUT itself
  let report: Report = buildReport({
    implementation,
    protocol_version: protocolVersion,
    seed: o.seed,
    target: {
      kind: target.kind,
      peers: info.peers.length,
      ...(o.browser ? { browser: o.browser } : {}),
      ...(o.urls ? { urls: o.urls } : {}),
    },
    results,
    sections: metas,
    started,
    finished: Date.now(),
    preflight,
    wire_vectors: wireVectors(tallies, vec.families),
    interop,
  });
  let cid = reportCid(report);
  if (preflight.ok) {
    // the runner computed `report` from what it observed; the SUT only signs it. A signed report whose
    // content differs from the observed one (or whose signature / CID does not check) is refused.
    const s = await target.call(0, 'protocol.conformance.report', { action: 'submit', report });
    if ('output' in s) {
      checkSignedReport(report, s.output.report, s.output.report_cid, implementation.node_id);
      report = s.output.report;
      cid = s.output.report_cid;
    }
  }
  const files: string[] = [];
  if (o.outDir) {
    const dir = o.outDir;
    mkdirSync(join(dir, 'reports'), { recursive: true });
    const w = (p: string, text: string) => {
      writeFileSync(join(dir, p), text);
      files.push(relative(process.cwd(), join(dir, p)));
    };
    w('report.json', JSON.stringify(report, null, 2) + '\n');
    w('report.cid', cid + '\n');
    w(`reports/${cid.slice(7)}.json`, JSON.stringify(report, null, 2) + '\n');
    w('report.html', renderHtml(report, cid, results));
    w('run_manifest.json', JSON.stringify(manifest, null, 2) + '\n');
    w('wptreport.json', JSON.stringify(wptReport(report, results), null, 2) + '\n');
  }
  // a required section with nothing passed (skipped, not run) is not success, even when nothing failed
  const exitCode =
    report.overall === 'fail' ? 1 : report.overall === 'skipped' ? 3 : report.required_unmet.length ? 2 : 0;
  return { report, report_cid: cid, exitCode, files };
}

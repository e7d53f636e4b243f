/**
 * Report aggregation (X09 B7/B8): per-case results → sections → overall, level, totals.
 * Pure and deterministic; the CID is BLAKE3 of the JCS of the (signed) report.
 */
import { blake3Cid } from '../lib/crypto.js';
import { formatSeed } from '../lib/drbg.js';
import type { FailureDetail } from '../runner/case.js';

export const SUITE_VERSION = '1.0.0';

export interface CaseResult {
  id: string;
  section: string;
  spec_ref: string;
  title: string;
  status: 'pass' | 'fail' | 'skipped';
  reason?: string;
  failure?: FailureDetail;
  duration_ms: number;
}

export interface SectionMeta {
  name: string;
  required: boolean;
  experimental: boolean;
  /** whole-section skip reason (module off / absent) */
  skipped_reason?: string;
}

export interface BuildInput {
  implementation: any;
  protocol_version: string | null;
  seed: number;
  target: { kind: string; peers: number; browser?: { name: string; version: string }; urls?: string[] };
  results: CaseResult[];
  sections: SectionMeta[];
  started: number;
  finished: number;
  preflight?: { ok: boolean; reason?: string };
  suite_commit?: string | null;
  /** measured interop figures (runner/execute.ts measureInterop) */
  interop?: { handshake_ms: number | null; rtt_ms_p50: number };
  /** what the cases ran of each vector family (runner/execute.ts wireVectors) */
  wire_vectors?: {
    families: Record<
      string,
      { run: number; passed: number; sources: string[]; via: string[]; cases: string[] }
    >;
    run: number;
    passed: number;
    not_run: string[];
  };
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

export function buildReport(b: BuildInput) {
  const sections: Record<string, any> = {};
  for (const s of b.sections) {
    const cases = b.results.filter((r) => r.section === s.name);
    const passed = cases.filter((c) => c.status === 'pass').length;
    const failed = cases.filter((c) => c.status === 'fail').length;
    const skipped = cases.filter((c) => c.status === 'skipped').length;
    sections[s.name] = {
      name: s.name,
      required: s.required,
      total: cases.length,
      passed,
      failed,
      skipped,
      status: failed ? 'fail' : passed === 0 ? 'skipped' : skipped ? 'partial' : 'pass',
      failures: cases
        .filter((c) => c.failure)
        .map((c) => ({
          case_id: c.id,
          spec_ref: c.spec_ref,
          ...c.failure!,
          repro: redact(c.failure!.repro),
        })),
      cases: cases.map((c) => ({
        id: c.id,
        section: c.section,
        spec_ref: c.spec_ref,
        status: c.status,
        ...(c.reason ? { reason: c.reason } : {}),
        duration_ms: Math.round(c.duration_ms * 10) / 10,
      })),
      ...(s.skipped_reason ? { skipped_reason: s.skipped_reason } : {}),
    };
  }
  const totals = {
    total: b.results.length,
    passed: b.results.filter((r) => r.status === 'pass').length,
    failed: b.results.filter((r) => r.status === 'fail').length,
    skipped: b.results.filter((r) => r.status === 'skipped').length,
  };
  const required = b.sections.filter((s) => s.required);
  const coreFailed = required.some((s) => sections[s.name].failed > 0);
  const requiredUnmet = required.filter((s) => sections[s.name].passed === 0).map((s) => s.name);
  const executed = totals.passed + totals.failed;
  const overall =
    !executed || b.preflight?.ok === false
      ? 'skipped'
      : coreFailed
        ? 'fail'
        : requiredUnmet.length
          ? 'partial'
          : 'pass';
  const experimental: Record<string, string> = {};
  for (const s of b.sections.filter((x) => x.experimental))
    experimental[s.name.replace(/^experimental\//, '')] = sections[s.name].status;
  return {
    report_schema: 'hearthnet.conformance.report/1' as const,
    implementation: b.implementation ?? null,
    node_id: b.implementation?.node_id ?? null,
    protocol_version: b.protocol_version,
    suite_version: SUITE_VERSION,
    suite_commit: b.suite_commit ?? null,
    seed: formatSeed(b.seed),
    target: b.target,
    ran_at: iso(b.started),
    finished_at: iso(b.finished),
    overall: overall as 'pass' | 'fail' | 'partial' | 'skipped',
    level: (coreFailed || !executed ? 'none' : overall === 'pass' ? 'compliant' : 'core') as
      'none' | 'core' | 'compliant',
    levels: { experimental },
    required_unmet: requiredUnmet,
    preflight: b.preflight ?? { ok: true },
    // true only when every vector family ran through the harness in this run and every vector passed
    wire_vectors_verified: !!(
      b.wire_vectors &&
      b.wire_vectors.run > 0 &&
      b.wire_vectors.not_run.length === 0 &&
      b.wire_vectors.passed === b.wire_vectors.run
    ),
    wire_vectors: b.wire_vectors ?? { families: {}, run: 0, passed: 0, not_run: [] as string[] },
    interop: b.interop ?? null,
    totals,
    sections,
    signature: null as string | null,
    signed: false,
  };
}

export type Report = ReturnType<typeof buildReport>;

/** Fields named like secrets never reach a report. */
function redact(v: any): any {
  if (Array.isArray(v)) return v.map(redact);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => [k, /token|secret|private/i.test(k) ? '[redacted]' : redact(x)]),
    );
  return v;
}

export const reportCid = (r: unknown): string => blake3Cid(r);

/**
 * Self-signed conformance reports (M32 A2.5): validate a finished report against
 * protocol/schemas/conformance-report.schema.json, sign it with the node key (Ed25519 over the
 * canonical JSON without `signature`), content-address it (`blake3:` of the JCS of the signed
 * report) and keep the newest ones.
 */
import { compileSchema } from '../bus/schema.js';
import { HnError } from '../core/errors.js';
import { blake3Cid } from '../core/hash.js';
import type { NodeID } from '../core/types.js';
import { REPORT_SCHEMA } from './catalog.js';
import { parseVersion } from './version.js';

export interface ConformanceReport {
  report_schema: 'hearthnet.conformance.report/1';
  node_id: NodeID | null;
  protocol_version: string | null;
  suite_version: string;
  overall: 'pass' | 'fail' | 'partial' | 'skipped';
  totals: { total: number; passed: number; failed: number; skipped: number };
  signature?: string | null;
  signed?: boolean;
  [k: string]: unknown;
}

export interface StoredReport {
  report: ConformanceReport;
  report_cid: string;
  stored_at: number;
}

/** The X09 runner, when one is installed in this build (Node test builds); the PWA has none. */
export type ConformanceRunner = (opts: {
  suite_version?: string;
  protocol_version?: string;
}) => Promise<ConformanceReport>;

export const REPORTS_KEPT = 16;

export const reportCid = (signed: Record<string, unknown>): string => blake3Cid(signed);

export function validateReport(r: unknown, self: NodeID): ConformanceReport {
  const v = compileSchema(REPORT_SCHEMA);
  if (!v(r)) {
    const e = v.errors?.[0];
    throw new HnError(
      'bad_request',
      `report ${e?.instancePath || '$'} ${e?.message ?? 'is invalid'}`.slice(0, 300),
      {
        field: `report${(e?.instancePath ?? '').replace(/\//g, '.')}`,
      },
    );
  }
  const rep = r as ConformanceReport;
  if (rep.node_id !== self)
    throw new HnError('bad_request', 'report.node_id is not this node', { field: 'report.node_id' });
  return rep;
}

export function assertSemver(v: unknown, field: string): string {
  if (typeof v !== 'string' || !parseVersion(v))
    throw new HnError('bad_request', `${field} must be a semver version like 1.0.0`, { field });
  return v;
}

export function summary(s: StoredReport) {
  return {
    report: s.report,
    report_cid: s.report_cid,
    overall: s.report.overall,
    passed: s.report.totals.passed,
    failed: s.report.totals.failed,
    skipped: s.report.totals.skipped,
  };
}

/**
 * The runner computes the report from what it observed; the SUT only signs it. A signed report whose
 * results differ from the observed ones, or one edited after signing, is refused.
 */
import { describe, expect, it } from 'vitest';
import { EngineTarget } from '../../conformance/harness/targets/engine.js';
import { checkSignedReport, runSuite, verifyReportFile } from '../../conformance/runner/execute.js';
import { blake3Cid } from '../../conformance/lib/crypto.js';
import { buildMatrix, renderMatrixHtml } from '../../conformance/report/matrix.js';

const SEED = 0xc0ffee;

describe('signed reports', () => {
  it('a SUT that signs different results (one failure turned into a pass) is refused by the runner', async () => {
    const target = new EngineTarget({ seed: SEED });
    const call = target.call.bind(target);
    // the "implementation" edits the report it is asked to sign: 0 failures, everything passed
    target.call = async (peer, cap, input: any) => {
      if (cap === 'protocol.conformance.report' && input?.action === 'submit') {
        const r = structuredClone(input.report);
        r.totals.passed += 1;
        return call(peer, cap, { ...input, report: r });
      }
      return call(peer, cap, input);
    };
    await expect(runSuite(target, { seed: SEED, suites: ['core/bus'] })).rejects.toMatchObject({
      code: 'report_refused',
      message: expect.stringContaining('report_mismatch'),
    });
    await target.close();
  }, 60_000);

  it('an honest SUT signs exactly the observed report; the stored report verifies, an edited copy does not', async () => {
    const target = new EngineTarget({ seed: SEED });
    const r = await runSuite(target, { seed: SEED, suites: ['core/bus'] });
    await target.close();
    expect(r.report.signed).toBe(true);
    expect(r.report.sections['core/bus'].passed).toBeGreaterThan(0);
    expect(verifyReportFile(r.report, r.report_cid)).toEqual({ ok: true });
    // edited after signing: one case's outcome changed
    const edited = structuredClone(r.report);
    edited.sections['core/bus'].cases[0].status = 'fail';
    expect(verifyReportFile(edited).ok).toBe(false);
    expect(verifyReportFile(edited, r.report_cid).ok).toBe(false);
    // the runner's own check refuses both: content differs / signature does not cover the edit
    const observed = { ...r.report, signature: null, signed: false };
    expect(() => checkSignedReport(observed, edited, blake3Cid(edited), r.report.node_id!)).toThrow(
      /report_mismatch/,
    );
    const forged = { ...structuredClone(r.report), overall: 'pass', level: 'compliant' };
    forged.totals.failed = 0;
    forged.sections['core/bus'].cases[0].duration_ms += 1;
    expect(() =>
      checkSignedReport(
        { ...forged, signature: null, signed: false },
        forged,
        blake3Cid(forged),
        r.report.node_id!,
      ),
    ).toThrow(/signature does not verify/);
    // and the untouched one passes the same check
    expect(() => checkSignedReport(observed, r.report, r.report_cid, r.report.node_id!)).not.toThrow();

    // the matrix over several runs takes only reports whose signature verifies
    expect(() => buildMatrix([r.report, edited])).toThrow(/refused/);
    const m = buildMatrix([r.report, r.report]);
    expect(m.targets.map((t) => t.label)).toEqual(['in-process', 'in-process #2']);
    expect(m.targets[0]).toMatchObject({ report_cid: r.report_cid, signed: true });
    expect(m.targets[0]!.rtt_ms_p50).toEqual(r.report.interop!.rtt_ms_p50);
    expect(m.sections).toEqual(['core/bus']);
    // one row per case with its outcome on each target (cases × targets)
    expect(m.cases).toHaveLength(r.report.sections['core/bus'].total);
    for (const c of m.cases) expect(Object.keys(c.results)).toEqual(['in-process', 'in-process #2']);
    // a browser column next to the in-process one (unsigned copy, so only with requireSigned off)
    const other = structuredClone(r.report);
    other.target = { kind: 'browsers', peers: 3, browser: { name: 'chromium', version: '156.0.1' } };
    other.sections['core/bus'].cases[1].status = 'skipped';
    const m2 = buildMatrix([r.report, other], { requireSigned: false });
    expect(m2.targets.map((t) => t.label)).toEqual(['in-process', 'browsers:3 chromium 156']);
    const c1 = m2.cases.find((c) => c.id === other.sections['core/bus'].cases[1].id)!;
    expect(c1.results).toMatchObject({
      'in-process': { status: 'pass' },
      'browsers:3 chromium 156': { status: 'skipped' },
    });
    const html = renderMatrixHtml(m2);
    expect(html).toContain('<th>browsers:3 chromium 156</th>');
    expect(html).toMatch(/<tr><th>handshake<\/th><td>[\d.]+ ms<\/td>/);
  }, 60_000);
});

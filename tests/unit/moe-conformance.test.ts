/** X09 experimental/moe section against the in-process engine with moe switched on: no case fails. */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { EngineTarget } from '../../conformance/harness/targets/engine.js';
import { runSuite } from '../../conformance/runner/execute.js';

describe('X09 experimental/moe', () => {
  it('passes every case with the module on', async () => {
    // the runner resets the target to baseline (flags off) first; switch moe on after each reset
    class MoeOn extends EngineTarget {
      override async reset() {
        await super.reset();
        await this.config(0, { moe: true });
      }
    }
    const t = new MoeOn({ peers: 1 });
    const r = await runSuite(t, { seed: 0xc0ffee, outDir: null, suites: ['experimental/moe'] });
    const s = r.report.sections['experimental/moe'];
    const bad = s.cases.filter((c: { status: string }) => c.status !== 'pass');
    expect(bad, JSON.stringify(bad.map((c: { failure?: unknown }) => c.failure))).toEqual([]);
    expect(s.passed).toBeGreaterThanOrEqual(12);
  }, 120_000);
});

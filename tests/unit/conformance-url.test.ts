/**
 * The `url` target against harness protocol v1 served around the in-process target
 * (conformance/harness/serve-engine.ts): the same cases pass over HTTP + WebSockets as in process,
 * the admin token is required, X08-22 runs through `x08/token`, the module sections run, and ops the
 * SUT does not list become skips naming the op.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveHarness, type HarnessServer } from '../../conformance/harness/serve-engine.js';
import { EngineTarget } from '../../conformance/harness/targets/engine.js';
import { UrlTarget } from '../../conformance/harness/targets/url.js';
import type { Target } from '../../conformance/harness/target.js';
import { runSuite } from '../../conformance/runner/execute.js';
import { CONFORMANCE_DEFAULT_SEED } from '../../engine/core/constants.js';

describe('X09 url target (harness protocol v1)', () => {
  let sut: EngineTarget;
  let server: HarnessServer;
  beforeAll(async () => {
    sut = new EngineTarget({ peers: 2 });
    server = await serveHarness(sut);
  });
  afterAll(async () => {
    await server.close();
    await sut.close();
  });

  it('runs the suite over HTTP with failed = 0 and the same passes as in process', async () => {
    const target = new UrlTarget({ url: server.url, token: server.token });
    try {
      const r = await runSuite(target, { seed: CONFORMANCE_DEFAULT_SEED, outDir: null });
      const failures = Object.values(r.report.sections as Record<string, any>).flatMap((s) => s.failures);
      expect(r.report.totals.failed, JSON.stringify(failures).slice(0, 2000)).toBe(0);
      expect(r.report.overall).toBe('pass');
      expect(r.report.target.kind).toBe('url');
      // raw_link and x08_accept go over WebSockets: those sections run, not skip
      expect(r.report.sections['core/protocol'].skipped).toBe(0);
      // X08: every case runs; only the [clk] cases (no clock op) and X08-12 (the SUT ACKs before an
      // overrun can be produced) may skip, each with a reason — none fails
      const x08 = r.report.sections['experimental/tensor_transport'];
      expect(x08.failed).toBe(0);
      expect(x08.passed).toBeGreaterThanOrEqual(18);
      for (const c of x08.cases.filter((c: any) => c.status === 'skipped'))
        expect(['X08-12', 'X08-16', 'X08-21'], c.reason).toContain(c.id);
      // X08-22 runs over HTTP: the SUT mints its session token (POST x08/token) and checks it itself
      expect(x08.cases.find((c: any) => c.id === 'X08-22').status).toBe('pass');
      // the module sections run with their module switched on through POST config
      for (const name of ['experimental/evidence', 'experimental/civdef', 'experimental/moe']) {
        expect(r.report.sections[name].failed, name).toBe(0);
        expect(r.report.sections[name].passed, name).toBeGreaterThan(0);
      }
      expect(r.report.totals.passed).toBeGreaterThanOrEqual(100);
      // every vector family ran through the HTTP harness (op `vector`) or the wire
      expect(r.report.wire_vectors.not_run).toEqual([]);
      expect(r.report.wire_vectors.families.signatures!.via).toEqual(['vector']);
      expect(r.report.wire_vectors_verified).toBe(true);
    } finally {
      await target.close();
    }
  }, 300_000);

  it('refuses a wrong admin token', async () => {
    const bad = new UrlTarget({ url: server.url, token: 'nope' });
    await expect(bad.info()).rejects.toThrow(/401/);
  });

  it('skips the cases whose op the SUT does not list, naming the op', async () => {
    // a SUT that offers only the required ops
    const bare: Target = {
      kind: 'in-process',
      info: async () => ({ ...(await sut.info()), ops: ['call', 'events', 'reset'] }),
      reset: () => sut.reset(),
      call: (p, c, i) => sut.call(p, c, i),
      events: (p, c) => sut.events(p, c),
      close: async () => undefined,
    };
    const s2 = await serveHarness(bare);
    const target = new UrlTarget({ url: s2.url, token: s2.token });
    try {
      const r = await runSuite(target, { seed: CONFORMANCE_DEFAULT_SEED, outDir: null, suites: ['core/*'] });
      const failures = Object.values(r.report.sections as Record<string, any>).flatMap((s) => s.failures);
      expect(r.report.totals.failed, JSON.stringify(failures)).toBe(0);
      const cases = Object.values(r.report.sections as Record<string, any>).flatMap((s) => s.cases);
      const pr11 = cases.find((c) => c.id === 'PR-11');
      expect(pr11.status).toBe('skipped');
      expect(pr11.reason).toBe('harness_op_unavailable: raw_link');
      expect(cases.find((c) => c.id === 'TR-01').reason).toBe('harness_op_unavailable: link');
    } finally {
      await target.close();
      await s2.close();
    }
  });
});

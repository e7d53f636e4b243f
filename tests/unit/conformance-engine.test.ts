import { createHash } from 'node:crypto';
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import AjvModule from 'ajv';
import { describe, expect, it } from 'vitest';
import { EngineTarget } from '../../conformance/harness/targets/engine.js';
import { blake3Cid, verifyObj } from '../../conformance/lib/crypto.js';
import { drbg } from '../../conformance/lib/drbg.js';
import { loadSections, runSuite, verifyVectors } from '../../conformance/runner/execute.js';
import { CONFORMANCE_DEFAULT_SEED } from '../../engine/core/constants.js';
import reportSchema from '../../protocol/schemas/conformance-report.schema.json' with { type: 'json' };
import manifestSchema from '../../protocol/schemas/run-manifest.schema.json' with { type: 'json' };

const Ajv = ((AjvModule as any).default ?? AjvModule) as typeof AjvModule;
const strip = ({ $schema: _s, $id: _i, ...r }: any) => r;

describe('X09 conformance suite, in-process target', () => {
  it('runs every section with failed = 0, signs the report, writes report.json/html/cid/manifest', async () => {
    const out = mkdtempSync(join(tmpdir(), 'conf-'));
    const r = await runSuite(new EngineTarget({ peers: 2 }), { seed: CONFORMANCE_DEFAULT_SEED, outDir: out });
    const failures = Object.values(r.report.sections as Record<string, any>).flatMap((s) => s.failures);
    expect(r.report.totals.failed, JSON.stringify(failures).slice(0, 2000)).toBe(0);
    expect(r.report.totals.passed).toBeGreaterThanOrEqual(100);
    expect(r.report.overall).toBe('pass');
    expect(r.report.seed).toBe('0xC0FFEE');
    for (const s of ['core/identity', 'core/events', 'core/bus', 'core/transport', 'core/protocol'])
      expect(r.report.sections[s].status, s).toBe('pass');
    // X08: every case runs; only the [clk] cases (no clock op) and X08-12 (the SUT ACKs before an
    // overrun can be produced) may skip, each with a reason — none fails
    const x08 = r.report.sections['experimental/tensor_transport'];
    expect(x08.failed).toBe(0);
    expect(x08.passed).toBeGreaterThanOrEqual(18);
    for (const c of x08.cases.filter((c: any) => c.status === 'skipped'))
      expect(['X08-12', 'X08-16', 'X08-21'], c.reason).toContain(c.id);
    // every module section runs: the runner switches its module on (config op) and off again after it
    for (const m of ['moe', 'fedlearn', 'lora', 'evidence', 'civdef', 'distributed_inference']) {
      const s = r.report.sections[`experimental/${m}`];
      expect(s.failed, m).toBe(0);
      expect(s.passed, m).toBeGreaterThan(0);
    }
    const manifest = JSON.parse(readFileSync(join(out, 'run_manifest.json'), 'utf8'));
    expect(manifest.modules_enabled).toEqual(
      expect.arrayContaining(['moe', 'fedlearn', 'lora', 'evidence', 'civdef', 'distributed_llm']),
    );
    // every vector family of index.json ran (x08 frames and tokens included)
    expect(r.report.wire_vectors.not_run).toEqual([]);
    expect(r.report.wire_vectors.families.x08!.run).toBeGreaterThanOrEqual(40);
    expect(r.report.wire_vectors.families.tokens!.run).toBeGreaterThanOrEqual(20);
    // module vector families run against the engine's own functions too (VEC-07..VEC-15): lora frames,
    // airtime, duty cycle and Meshtastic; moe normalisation and scorer; fedlearn aggregation (also from the
    // fedlearn section), manifest, init and delta validation
    for (const [fam, min, cases] of [
      ['lora', 35, ['VEC-07', 'VEC-13']],
      ['civdef', 80, ['VEC-08']],
      ['moe', 15, ['VEC-09', 'VEC-14']],
      ['evidence', 15, ['VEC-10']],
      ['distributed_inference', 9, ['VEC-11']],
      ['fedlearn', 17, ['VEC-12', 'VEC-15', 'fedlearn.vector.aggregation']],
    ] as const) {
      expect(r.report.wire_vectors.families[fam]?.run, fam).toBeGreaterThanOrEqual(min);
      expect(r.report.wire_vectors.families[fam]?.passed, fam).toBe(r.report.wire_vectors.families[fam]?.run);
      expect(r.report.wire_vectors.families[fam]?.via, fam).toEqual(['vector']);
      expect(r.report.wire_vectors.families[fam]?.cases, fam).toEqual(expect.arrayContaining([...cases]));
    }
    expect(r.report.wire_vectors_verified).toBe(true);
    // signed by the SUT; CID recomputes; schema-valid
    expect(verifyObj(r.report, r.report.node_id!)).toBe(true);
    expect(blake3Cid(r.report)).toBe(r.report_cid);
    const ajv = new Ajv({ strict: false });
    const json = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(ajv.validate(strip(reportSchema), json), JSON.stringify(ajv.errors)).toBe(true);
    expect(
      ajv.validate(strip(manifestSchema), JSON.parse(readFileSync(join(out, 'run_manifest.json'), 'utf8'))),
    ).toBe(true);
    expect(readFileSync(join(out, 'report.cid'), 'utf8').trim()).toBe(r.report_cid);
    expect(readFileSync(join(out, 'reports', `${r.report_cid.slice(7)}.json`), 'utf8')).toBe(
      readFileSync(join(out, 'report.json'), 'utf8'),
    );
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toContain(r.report_cid);
    expect(html).not.toMatch(/(src|href)=["']https?:/);
    // every case carries its section, duration and outcome
    for (const s of Object.values(r.report.sections) as any[])
      for (const c of s.cases) {
        expect(c.section).toBe(s.name);
        expect(typeof c.duration_ms).toBe('number');
        expect(['pass', 'fail', 'skipped']).toContain(c.status);
      }
  }, 240_000);

  it('--as-configured: a module that is off on the SUT leaves its section skipped, never passed', async () => {
    const target = new EngineTarget({ peers: 1 });
    const r = await runSuite(target, {
      seed: CONFORMANCE_DEFAULT_SEED,
      outDir: null,
      suites: ['experimental/evidence', 'core/bus'],
      enableModules: false,
    });
    await target.close();
    const s = r.report.sections['experimental/evidence'];
    expect(s.passed).toBe(0);
    expect(s.status).toBe('skipped');
    expect(s.cases.every((c: any) => /module_disabled/.test(c.reason))).toBe(true);
  }, 60_000);

  it('catalogue: case ids unique, every case has a spec_ref; vectors match index.json', async () => {
    const sections = await loadSections();
    const ids = sections.flatMap((s) => s.cases.map((c) => c.id));
    expect(new Set(ids).size).toBe(ids.length);
    for (const s of sections) for (const c of s.cases) expect(c.spec_ref, c.id).toMatch(/\S/);
    expect(verifyVectors()).toMatchObject({ ok: true });
  });

  it('DRBG is the language-neutral construction of X09 B5 (known answer)', () => {
    // SHA-256("HNCONF/1" ‖ u64be(0xC0FFEE) ‖ u16be(4) ‖ "test" ‖ u32be(0)), computed independently
    const msg = Buffer.concat([
      Buffer.from('HNCONF/1'),
      Buffer.from('0000000000c0ffee', 'hex'),
      Buffer.from('0004', 'hex'),
      Buffer.from('test'),
      Buffer.from('00000000', 'hex'),
    ]);
    const want = createHash('sha256').update(msg).digest('hex');
    expect(Buffer.from(drbg(0xc0ffee, 'test', 32)).toString('hex')).toBe(want);
    expect(drbg(0xc0ffee, 'test', 40).subarray(0, 32)).toEqual(drbg(0xc0ffee, 'test', 32));
  });
});

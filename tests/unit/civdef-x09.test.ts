/** The X09 civdef section run in-process against a real node with M31 on (each case must pass), and the
 * Python-derived vectors checked against the engine's own Merkle and cert_id code. */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { createNode } from '../../engine/index.js';
import { HnError } from '../../engine/core/errors.js';
import { fromHex, toHex } from '../../engine/core/encoding.js';
import { section } from '../../conformance/suites/experimental/civdef.js';
import type { CaseCtx } from '../../conformance/runner/case.js';
import { drbgIdentity } from '../../conformance/lib/drbg.js';
import merkle from '../../conformance/vectors/civdef/merkle.json' with { type: 'json' };
import certIds from '../../conformance/vectors/civdef/cert_ids.json' with { type: 'json' };
import {
  consistencyProof,
  inclusionPath,
  leafHash,
  rootOf,
  verifyConsistency,
  verifyInclusion,
} from '../../engine/civdef/merkle.js';
import { certIdOf } from '../../engine/civdef/role.js';
import { seedOf } from './helpers.js';

describe('X09 experimental/civdef, in-process', () => {
  it('every case passes on this engine', async () => {
    const node = await createNode({ seed: seedOf(120), config: { civdef: { enabled: true } } });
    const call = async (cap: string, input: unknown) => {
      try {
        return { output: structuredClone(await node.call(cap, input)) };
      } catch (e) {
        const h = e instanceof HnError ? e : new HnError('internal_error', String(e));
        return { error: { code: h.code, message: h.message } };
      }
    };
    const target = {
      config: async (_p: number, m: Record<string, boolean>) =>
        m.civdef ? node.enable('civdef') : node.disable('civdef'),
    };
    for (const c of section.cases) {
      const ctx = {
        caseId: c.id,
        call,
        target,
        identity: (n: string) => drbgIdentity(7, `${c.id}/${n}`),
      } as unknown as CaseCtx;
      expect(await c.run(ctx), c.id).toEqual({ status: 'pass' });
    }
    await node.close();
  });

  it('the independent vectors agree with engine/civdef (merkle.ts, role.ts)', () => {
    expect(toHex(rootOf([]))).toBe(merkle.empty_root);
    for (const t of merkle.trees) {
      const L = t.leaves_utf8.map((s) => leafHash(new TextEncoder().encode(s)));
      expect(toHex(rootOf(L))).toBe(t.root);
      for (const inc of t.inclusion) {
        expect(inclusionPath(L, inc.index).map(toHex)).toEqual(inc.path);
        expect(
          verifyInclusion(L[inc.index]!, inc.index, t.size, inc.path.map(fromHex), fromHex(t.root)),
        ).toBe(true);
      }
      for (const c of t.consistency) {
        expect(consistencyProof(L, c.from_size).map(toHex)).toEqual(c.proof);
        expect(
          verifyConsistency(c.from_size, t.size, fromHex(c.from_root), fromHex(t.root), c.proof.map(fromHex)),
        ).toBe(true);
      }
    }
    for (const c of certIds.cases) expect(certIdOf(c.body)).toBe(c.cert_id);
  });
});

/** The X09 evidence section run in-process against a real node with M30 on (each case must pass). */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { createNode } from '../../engine/index.js';
import { HnError } from '../../engine/core/errors.js';
import { section } from '../../conformance/suites/experimental/evidence.js';
import type { CaseCtx } from '../../conformance/runner/case.js';
import { seedOf } from './helpers.js';

describe('X09 experimental/evidence, in-process', () => {
  it('every case passes on this engine, and the section uses ≥ 5 ok vectors', async () => {
    const node = await createNode({ seed: seedOf(91), config: { evidence: { enabled: true } } });
    const call = async (cap: string, input: unknown) => {
      try {
        return { output: structuredClone(await node.call(cap, input)) };
      } catch (e) {
        const h = e instanceof HnError ? e : new HnError('internal_error', String(e));
        return { error: { code: h.code, message: h.message } };
      }
    };
    expect(section.cases.filter((c) => c.id.startsWith('evidence.vector.')).length).toBeGreaterThanOrEqual(5);
    for (const c of section.cases) {
      const target = {
        config: async (_peer: number, mods: Record<string, boolean>) => {
          for (const [m, on] of Object.entries(mods))
            await (on ? node.enable(m as 'evidence') : node.disable(m as 'evidence'));
        },
      };
      const ctx = { caseId: c.id, call, target } as unknown as CaseCtx;
      const out = await c.run(ctx);
      expect(out, c.id).toEqual({ status: 'pass' });
    }
    await node.close();
  });
});

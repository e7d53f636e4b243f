/** The X09 experimental/lora section run against the in-process engine with the lora flag on. */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { EngineTarget } from '../../conformance/harness/targets/engine.js';
import { makeCtx } from '../../conformance/runner/case.js';
import { section } from '../../conformance/suites/experimental/lora.js';
import { CONFORMANCE_DEFAULT_SEED } from '../../engine/core/constants.js';

describe('X09 experimental/lora on the engine target', () => {
  it('every case passes with the module on and no stick attached', async () => {
    const t = new EngineTarget({ peers: 1 });
    const info = await t.info();
    await t.config!(0, { lora: true });
    const outcomes: Record<string, unknown> = {};
    for (const c of section.cases)
      outcomes[c.id] = await c.run(makeCtx(t, info, CONFORMANCE_DEFAULT_SEED, c.id));
    for (const [id, o] of Object.entries(outcomes)) expect(o, id).toEqual({ status: 'pass' });
    expect(section.cases).toHaveLength(8);
    await t.close();
  }, 60_000);
});

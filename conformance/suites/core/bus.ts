/** core/bus: capability lookup, schema validation, flag gating, trust — as seen from outside. */
import { all, expectError, fail, pass, type SectionDef } from '../../runner/case.js';
import { openSim } from '../../harness/simpeer/index.js';

export const section: SectionDef = {
  name: 'core/bus',
  required: true,
  cases: [
    {
      id: 'BUS-01',
      spec_ref: 'M03 §4 lookup',
      title: 'a capability that is not offered → not_found',
      async run(ctx) {
        const r = await ctx.call('protocol.nothing.here', {});
        return expectError(r, 'not_found', { capability: 'protocol.nothing.here', input: {} }) ?? pass();
      },
    },
    {
      id: 'BUS-02',
      spec_ref: 'M03 §4 request schema',
      title: 'a body violating the request schema → schema_mismatch',
      async run(ctx) {
        const input = { limit: 'many' };
        const r = await ctx.call('protocol.registry.list', input);
        return expectError(r, 'schema_mismatch', { capability: 'protocol.registry.list', input }) ?? pass();
      },
    },
    {
      id: 'BUS-03',
      spec_ref: 'seed §2, §6 experimental_disabled',
      title: 'every experimental module that is off answers experimental_disabled for its seed capabilities',
      async run(ctx) {
        const d = await ctx.describe();
        const probes: Record<string, string> = {
          distributed_llm: 'experimental.distributed_llm.shard.list',
          moe: 'experimental.moe.expert.list',
          fedlearn: 'experimental.fedlearn.round.list',
          lora: 'experimental.lora.status',
          evidence: 'experimental.evidence.claim.query',
          civdef: 'experimental.civdef.alert.list',
        };
        for (const [m, cap] of Object.entries(probes)) {
          if (d.modules[m]) continue;
          const r = await ctx.call(cap, {});
          const bad = expectError(r, 'experimental_disabled', { capability: cap, input: {} });
          if (bad) return bad;
        }
        return pass();
      },
    },
    {
      id: 'BUS-04',
      spec_ref: 'M32 A2.5 trust; PR-17',
      title: 'a self-only action called by a peer → unauthorized',
      requires: { ops: ['raw_link'] },
      async run(ctx) {
        const sim = await openSim(ctx, { name: 'bus04' });
        try {
          const r = await sim.call('protocol.conformance.report', { action: 'run' });
          return (
            expectError(r, 'unauthorized', {
              capability: 'protocol.conformance.report',
              input: { action: 'run' },
              caller: 'sim peer',
            }) ?? pass()
          );
        } finally {
          sim.close();
        }
      },
    },
    {
      id: 'BUS-05',
      spec_ref: 'M32 A2 (stable tier)',
      title: 'the five protocol.* capabilities answer with the module flags as they are',
      async run(ctx) {
        return all(
          async () =>
            'error' in (await ctx.call('protocol.version.list', {}))
              ? fail('ok', 'error', 'version.list', {})
              : null,
          async () =>
            'error' in (await ctx.call('protocol.self.describe', {}))
              ? fail('ok', 'error', 'self.describe', {})
              : null,
          async () =>
            'error' in (await ctx.call('protocol.registry.list', {}))
              ? fail('ok', 'error', 'registry.list', {})
              : null,
        );
      },
    },
  ],
};

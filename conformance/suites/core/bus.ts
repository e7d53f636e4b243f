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
        const d = await ctx.describe();
        const answers = async (cap: string, input: unknown, ok: (o: any) => boolean) => {
          const r = await ctx.call(cap, input);
          if ('error' in r)
            return fail(`${cap} answers`, `error ${r.error.code}`, `${cap} failed`, {
              capability: cap,
              input,
            });
          return ok(r.output)
            ? null
            : fail(`${cap} answer shape`, r.output, `${cap} answered wrongly`, { capability: cap });
        };
        return all(
          () => answers('protocol.version.list', {}, (o) => Array.isArray(o.protocol_versions)),
          () =>
            answers(
              'protocol.self.describe',
              {},
              (o) =>
                JSON.stringify(o.modules) === JSON.stringify(d.modules) && o.node_id === ctx.info.peers[0],
            ),
          () => answers('protocol.registry.list', {}, (o) => Array.isArray(o.entries)),
          async () => {
            // announce as the local operator: the own descriptor is maintained by the node (bad_request),
            // any other answer than not_found / internal_error shows the capability is there
            const r = await ctx.call('protocol.registry.announce', { descriptor: d });
            return 'error' in r && (r.error.code === 'not_found' || r.error.code === 'internal_error')
              ? fail('protocol.registry.announce answers', r.error.code, 'announce missing', {})
              : null;
          },
          async () => {
            // before any report exists, latest answers protocol_suite_not_installed (M32 A2.5)
            const r = await ctx.call('protocol.conformance.report', { action: 'latest' });
            return 'error' in r && r.error.code !== 'protocol_suite_not_installed'
              ? fail('protocol.conformance.report answers', r.error.code, 'conformance.report failed', {})
              : null;
          },
        );
      },
    },
  ],
};

/** core/transport: peer links between SUT peers (mesh) and the link handshake as a sim peer sees it. */
import { eventually, fail, pass, type SectionDef } from '../../runner/case.js';
import { openSim } from '../../harness/simpeer/index.js';

export const section: SectionDef = {
  name: 'core/transport',
  required: true,
  cases: [
    {
      id: 'TR-01',
      spec_ref: 'core/06 peer links',
      title: 'SUT peers link: each lists every other peer as open',
      requires: { ops: ['link'], peers: 2 },
      timeout_ms: 20_000,
      async run(ctx) {
        await ctx.target.linkAll!();
        const n = ctx.info.peers.length;
        for (let i = 0; i < n; i++) {
          const ok = await eventually(async () => {
            const rows = await ctx.target.links!(i);
            return ctx.info.peers.every(
              (p, j) => j === i || rows.some((r) => r.peer === p && r.state === 'open'),
            );
          }, 10_000);
          if (!ok)
            return fail(
              `peer ${i} linked to all ${n - 1} others`,
              await ctx.target.links!(i),
              'links missing',
              {},
            );
        }
        return pass();
      },
    },
    {
      id: 'TR-02',
      spec_ref: 'core/03 remote calls',
      title: "a capability called on a linked peer returns that peer's answer (its own descriptor)",
      requires: { ops: ['link'], peers: 2 },
      async run(ctx) {
        // peer 1's registry must hold peer 0's descriptor, learned through the link hello
        const want = ctx.info.peers[0]!;
        const hit = await eventually(async () => {
          const r = await ctx.call('protocol.registry.list', {}, 1);
          return 'output' in r && r.output.entries.some((e: any) => e.descriptor.node_id === want);
        });
        return hit
          ? pass()
          : fail(`registry of peer 1 lists ${want}`, 'absent', 'descriptor not exchanged over the link', {});
      },
    },
    {
      id: 'TR-03',
      spec_ref: 'X02 sync; core/04',
      title: 'an event authored on peer 0 reaches peer 1 over the link',
      requires: { ops: ['link'], peers: 2 },
      async run(ctx) {
        const own = (await ctx.target.events(0)).events.filter((e: any) => e.author === ctx.info.peers[0]);
        const last = own[own.length - 1];
        if (!last) return fail('an event on peer 0', 'none', 'nothing to gossip', {});
        const got = await eventually(
          async () => (await ctx.target.events(1)).events.find((e: any) => e.event_id === last.event_id),
          5000,
        );
        return got ? pass() : fail(`event ${last.event_id} on peer 1`, 'absent', 'event not propagated', {});
      },
    },
    {
      id: 'TR-04',
      spec_ref: 'core/06 link hello',
      title: 'a hello naming another community is refused',
      requires: { ops: ['raw_link'] },
      async run(ctx) {
        const other = ctx.identity('other-community').nodeId;
        try {
          const sim = await openSim(ctx, { name: 'tr04', community: other });
          sim.close();
          return fail('link refused', 'link open', 'the SUT linked with a peer of another community', {});
        } catch (e) {
          // only the SUT's refusal counts: a link.close from it, or the link closed by it. A handshake
          // timeout or a harness error is not a refusal.
          const msg = String((e as Error)?.message ?? e);
          return /^link (refused|closed):/.test(msg)
            ? pass()
            : fail('link refused by the SUT (link.close)', msg, 'no refusal observed', {});
        }
      },
    },
  ],
};

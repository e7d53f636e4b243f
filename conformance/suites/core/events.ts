/** core/events: the SUT's event envelopes — signatures over JCS, hash chains, sequence, gossip handling. */
import { blake3Cid, verifyObj } from '../../lib/crypto.js';
import {
  all,
  eventually,
  fail,
  pass,
  skip,
  type CaseCtx,
  type Outcome,
  type SectionDef,
} from '../../runner/case.js';
import { openSim, simEvent } from '../../harness/simpeer/index.js';

async function ownEvents(ctx: CaseCtx) {
  // make the SUT author something first: a descriptor announcement exists after start; add a registry event
  const { events } = await ctx.target.events(0);
  return events.filter((e: any) => e.author === ctx.info.peers[0]);
}

/** A ULID-shaped id from the case DRBG (ms part fixed, 80 random bits). */
function ulidFrom(bytes: Uint8Array, ms = Date.now()): string {
  const A = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  let t = ms;
  let s = '';
  for (let i = 0; i < 10; i++) {
    s = A[t % 32] + s;
    t = Math.floor(t / 32);
  }
  for (let i = 0; i < 16; i++) s += A[bytes[i]! % 32];
  return s;
}

export const section: SectionDef = {
  name: 'core/events',
  required: true,
  cases: [
    {
      id: 'EV-02',
      spec_ref: 'X02 §7.1 event envelope signature',
      title:
        'every event the SUT authors verifies: Ed25519 by author over JCS of the envelope without signature',
      async run(ctx) {
        const evs = await ownEvents(ctx);
        if (!evs.length) return fail('≥1 own event', 0, 'the SUT authored no events', {});
        for (const e of evs)
          if (!verifyObj(e, e.author))
            return fail(
              'valid signature',
              e.signature,
              `event ${e.event_type} seq ${e.seq} does not verify`,
              { event: e },
            );
        return pass();
      },
    },
    {
      id: 'EV-03',
      spec_ref: 'X02 §7.2 per-author hash chain',
      title: 'seq starts at 1 and grows by 1; prev = blake3 CID of the JCS of the previous envelope',
      async run(ctx) {
        const evs = (await ownEvents(ctx)).sort((a: any, b: any) => a.seq - b.seq);
        let prev: any = null;
        for (const e of evs) {
          const want = prev ? blake3Cid(prev) : null;
          if (e.seq !== (prev ? prev.seq + 1 : 1))
            return fail(`seq ${prev ? prev.seq + 1 : 1}`, e.seq, 'sequence gap', { event: e.event_id });
          if (e.prev !== want)
            return fail(String(want), e.prev, `prev of seq ${e.seq} does not hash the predecessor`, {
              event: e.event_id,
            });
          prev = e;
        }
        return pass();
      },
    },
    {
      id: 'EV-04',
      spec_ref: 'X02 §7.1; M32 A3.6',
      title: 'protocol.descriptor.announced carries the descriptor fields and its CID',
      async run(ctx) {
        const d = await ctx.describe();
        const announced = async () =>
          (await ownEvents(ctx)).filter((e: any) => e.event_type === 'protocol.descriptor.announced');
        let evs = await announced();
        // the announcement is appended when the first link negotiates (M32 A3.6): make one rather
        // than depend on an earlier case having linked
        if (!evs.length) {
          if (!ctx.info.ops.includes('raw_link'))
            return skip(
              'harness_op_unavailable: raw_link (no link yet, and the announcement comes with the first one)',
            );
          const sim = await openSim(ctx, { name: 'ev04' });
          evs =
            (await eventually(async () => {
              const e = await announced();
              return e.length ? e : null;
            })) ?? [];
          sim.port.close();
        }
        const last = evs[evs.length - 1];
        if (!last) return fail('one protocol.descriptor.announced', 'none', 'no announcement event', {});
        return all(
          () =>
            last.data.node_id === d.node_id && last.data.name === d.name
              ? null
              : fail(`${d.node_id}/${d.name}`, last.data, 'announcement names another descriptor', {}),
          () =>
            /^blake3:[0-9a-f]{64}$/.test(last.data.descriptor_cid)
              ? null
              : fail('blake3 CID', last.data.descriptor_cid, 'bad CID', {}),
          // the CID must hash the right bytes: BLAKE3 of the JCS of the signed descriptor it names
          () =>
            last.data.descriptor_cid === blake3Cid(d)
              ? null
              : fail(
                  blake3Cid(d),
                  last.data.descriptor_cid,
                  'descriptor_cid is not blake3(JCS(signed descriptor))',
                  { descriptor: d },
                ),
        );
      },
    },
    {
      id: 'EV-01',
      spec_ref: 'M32 A3.3 forward compatibility; X09 B12 Q9',
      title: 'a signed event of an unknown type, then a known one: link stays up, the known one is applied',
      requires: { ops: ['raw_link'] },
      async run(ctx): Promise<Outcome> {
        const key = ctx.identity('author');
        const sim = await openSim(ctx, { key });
        try {
          const e1 = simEvent(
            key,
            ctx.info.community_id,
            'x_future.thing.happened',
            { n: 1 },
            1,
            null,
            1,
            ulidFrom(ctx.bytes('e1', 16)),
          );
          const e2 = simEvent(
            key,
            ctx.info.community_id,
            'community.member.joined',
            { invite_event_id: 'open' },
            2,
            blake3Cid(e1),
            2,
            ulidFrom(ctx.bytes('e2', 16)),
          );
          await sim.push([e1]);
          await sim.push([e2]);
          const got = await eventually(async () => {
            const { events } = await ctx.target.events(0);
            return events.find((e: any) => e.event_id === e2.event_id);
          });
          if (!got)
            return fail(
              'known event stored',
              'absent',
              'the known event after an unknown one was not applied',
              { events: [e1.event_id, e2.event_id] },
            );
          if (!(await sim.alive()))
            return fail('link open', sim.state, 'the SUT tore the link down after an unknown event type', {});
          return pass();
        } finally {
          sim.close();
        }
      },
    },
    {
      id: 'EV-06',
      spec_ref: 'X02 §6.3 receive validation (community)',
      title: 'a validly signed gossiped event of another community is not stored; one of this community is',
      requires: { ops: ['raw_link'] },
      async run(ctx) {
        const key = ctx.identity('author');
        const sim = await openSim(ctx, { key });
        try {
          const other = ctx.identity('other-community').nodeId;
          const foreign = simEvent(
            key,
            other,
            'community.member.joined',
            { invite_event_id: 'f' },
            1,
            null,
            1,
            ulidFrom(ctx.bytes('foreign', 16)),
          );
          const good = simEvent(
            key,
            ctx.info.community_id,
            'community.member.joined',
            { invite_event_id: 'g' },
            1,
            null,
            1,
            ulidFrom(ctx.bytes('good', 16)),
          );
          await sim.push([foreign]);
          await sim.push([good]);
          const seen = await eventually(async () =>
            (await ctx.target.events(0)).events.find((e: any) => e.event_id === good.event_id),
          );
          if (!seen) return fail('own-community event stored', 'absent', 'control event not stored', {});
          const { events } = await ctx.target.events(0);
          return events.some((e: any) => e.event_id === foreign.event_id)
            ? fail('rejected', 'stored', 'the SUT stored an event of another community', { event: foreign })
            : pass();
        } finally {
          sim.close();
        }
      },
    },
    {
      id: 'EV-05',
      spec_ref: 'X02 §6.3 receive validation',
      title: 'a gossiped event whose signature does not verify is not stored',
      requires: { ops: ['raw_link'] },
      async run(ctx) {
        const key = ctx.identity('author');
        const sim = await openSim(ctx, { key });
        try {
          const good = simEvent(
            key,
            ctx.info.community_id,
            'community.member.joined',
            { invite_event_id: 'x' },
            1,
            null,
            1,
            ulidFrom(ctx.bytes('good', 16)),
          );
          const forged = {
            ...simEvent(
              key,
              ctx.info.community_id,
              'community.member.joined',
              { invite_event_id: 'y' },
              2,
              blake3Cid(good),
              2,
              ulidFrom(ctx.bytes('forged', 16)),
            ),
            data: { invite_event_id: 'z' },
          };
          await sim.push([good, forged]);
          const seen = await eventually(async () =>
            (await ctx.target.events(0)).events.find((e: any) => e.event_id === good.event_id),
          );
          if (!seen) return fail('valid event stored', 'absent', 'a valid gossiped event was not stored', {});
          const { events } = await ctx.target.events(0);
          if (events.some((e: any) => e.event_id === forged.event_id))
            return fail(
              'forged event rejected',
              'stored',
              'the SUT stored an event whose signature does not verify',
              { event: forged },
            );
          return pass();
        } finally {
          sim.close();
        }
      },
    },
  ],
};

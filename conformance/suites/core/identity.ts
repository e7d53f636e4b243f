/** core/identity: NodeIDs, canonical JSON and signatures as the SUT produces and checks them. */
import { fromB64u, jcs, NODE_ID_RE, verifyObj } from '../../lib/crypto.js';
import { all, expectError, fail, pass, type SectionDef } from '../../runner/case.js';
import { openSim } from '../../harness/simpeer/index.js';

export const section: SectionDef = {
  name: 'core/identity',
  required: true,
  cases: [
    {
      id: 'ID-01',
      spec_ref: 'M01 §2; X09 C0',
      title: 'NodeID is ed25519:+43 base64url chars of a 32-byte key and verifies the descriptor',
      async run(ctx) {
        const d = await ctx.describe();
        return all(
          () =>
            NODE_ID_RE.test(d.node_id)
              ? null
              : fail('^ed25519:[A-Za-z0-9_-]{43}$', d.node_id, 'malformed NodeID', {
                  capability: 'protocol.self.describe',
                  input: {},
                }),
          () =>
            fromB64u(d.node_id.slice(8)).length === 32
              ? null
              : fail('32 key bytes', d.node_id, 'key length', {}),
          () =>
            d.node_id === ctx.info.peers[0]
              ? null
              : fail(ctx.info.peers[0]!, d.node_id, 'descriptor node_id differs from the harness NodeID', {}),
          () =>
            verifyObj(d, d.node_id)
              ? null
              : fail(
                  'signature verifies',
                  d.signature,
                  'descriptor signature does not verify with its node_id',
                  {},
                ),
        );
      },
    },
    {
      id: 'CJ-02',
      spec_ref: 'Phase 1 §5 canonical JSON; M32 A3.2',
      title: 'SUT-signed artefacts verify after the suite re-canonicalises them (JCS)',
      async run(ctx) {
        const d = await ctx.describe();
        // re-serialise through a different key order: JCS must make it irrelevant
        const shuffled = JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(d).reverse())));
        if (jcs(shuffled) !== jcs(d))
          return fail('same JCS text', 'different', 'JCS not order independent', {});
        if (!verifyObj(shuffled, d.node_id))
          return fail('valid', 'invalid', 'descriptor does not verify over JCS', {});
        const r = await ctx.call('protocol.version.list', {});
        if ('error' in r) return fail('ok', r.error, 'version.list failed', {});
        return pass();
      },
    },
    {
      id: 'SIG-01',
      spec_ref: 'Phase 1 §5 request signing',
      title: 'a signed call with one body byte changed after signing → invalid_signature',
      requires: { ops: ['raw_link'] },
      async run(ctx) {
        const sim = await openSim(ctx, { name: 'sig01' });
        try {
          const ok = await sim.call('protocol.version.list', { probe: 'a' });
          if ('error' in ok) return fail('accepted', ok.error, 'untampered call failed', {});
          const r = await sim.call(
            'protocol.version.list',
            { probe: 'a' },
            { tamper: (m) => ({ ...m, body: { probe: 'b' } }) },
          );
          return (
            expectError(r, 'invalid_signature', {
              capability: 'protocol.version.list',
              input: { probe: 'b' },
              tamper: 'body changed after signing',
            }) ?? pass()
          );
        } finally {
          sim.close();
        }
      },
    },
    {
      id: 'CJ-01',
      spec_ref: 'Phase 1 §5; RFC 8785',
      title: 'a signed call whose body holds JCS edge values is accepted (SUT canonicalises identically)',
      requires: { ops: ['raw_link'] },
      async run(ctx) {
        const sim = await openSim(ctx, { name: 'cj01' });
        try {
          const body = {
            '\u20ac': 1,
            '\ud83d\ude00': 'non-BMP key',
            a: 1.5,
            small: 1e-7,
            big: 9007199254740991,
            neg: -0,
            z: [3, 'x\u2028'],
            aa: { b: true, a: null },
          };
          const r = await sim.call('protocol.version.list', body);
          if ('error' in r)
            return fail(
              'accepted',
              `error ${r.error.code}`,
              'JCS edge values were not canonicalised like RFC 8785',
              { capability: 'protocol.version.list', input: body },
            );
          return pass();
        } finally {
          sim.close();
        }
      },
    },
  ],
};

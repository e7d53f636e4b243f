/** core/protocol (M32): version list, descriptor, registry, negotiation, self-signed reports. */
import { blake3Cid, verifyObj } from '../../lib/crypto.js';
import {
  all,
  eventually,
  expectError,
  expectOk,
  fail,
  pass,
  type CaseCtx,
  type SectionDef,
} from '../../runner/case.js';
import { openSim, simDescriptor } from '../../harness/simpeer/index.js';
import { buildReport } from '../../report/build.js';

const PV =
  /^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})(-[0-9A-Za-z]+(\.[0-9A-Za-z-]+)*)?$/;
const cmp = (a: string, b: string) => {
  const x = a.split(/[.-]/).slice(0, 3).map(Number);
  const y = b.split(/[.-]/).slice(0, 3).map(Number);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
};

async function registry(ctx: CaseCtx, peer = 0): Promise<any[]> {
  const r = await ctx.call('protocol.registry.list', { limit: 1000 }, peer);
  return 'output' in r ? r.output.entries : [];
}
async function countEvents(ctx: CaseCtx, type: string, pred: (e: any) => boolean = () => true) {
  return (await ctx.target.events(0)).events.filter((e: any) => e.event_type === type && pred(e)).length;
}

export const section: SectionDef = {
  name: 'core/protocol',
  required: true,
  cases: [
    {
      id: 'PR-01',
      spec_ref: 'M32 A2.1',
      title: 'version.list: non-empty, all parse, current included, sorted descending',
      async run(ctx) {
        const r = expectOk(await ctx.call('protocol.version.list', {}), {
          capability: 'protocol.version.list',
          input: {},
        });
        if ('bad' in r) return r.bad;
        const v = r.out;
        return all(
          () =>
            Array.isArray(v.protocol_versions) && v.protocol_versions.length
              ? null
              : fail('non-empty list', v.protocol_versions, 'no versions', {}),
          () =>
            v.protocol_versions.every((x: string) => PV.test(x))
              ? null
              : fail('ProtocolVersion strings', v.protocol_versions, 'unparseable version', {}),
          () =>
            v.protocol_versions.includes(v.current)
              ? null
              : fail(`includes ${v.current}`, v.protocol_versions, 'current missing', {}),
          () =>
            v.protocol_versions.every(
              (x: string, i: number, a: string[]) => i === 0 || cmp(a[i - 1]!, x) >= 0,
            )
              ? null
              : fail('descending', v.protocol_versions, 'not sorted', {}),
          () =>
            v.implementation && typeof v.implementation.name === 'string'
              ? null
              : fail('implementation', v.implementation, 'missing implementation', {}),
        );
      },
    },
    {
      id: 'PR-02',
      spec_ref: 'M32 A3.2',
      title: 'self.describe: every descriptor field within bounds; signature verifies',
      async run(ctx) {
        const d = await ctx.describe();
        return all(
          () => (d.descriptor_schema === 1 ? null : fail('1', d.descriptor_schema, 'descriptor_schema', {})),
          () =>
            /^[a-z0-9][a-z0-9._-]{0,63}$/.test(d.name) ? null : fail('name pattern', d.name, 'name', {}),
          () =>
            typeof d.vendor === 'string' && d.vendor.length >= 1 && d.vendor.length <= 128
              ? null
              : fail('1..128', d.vendor, 'vendor', {}),
          () =>
            Array.isArray(d.protocol_versions) &&
            d.protocol_versions.length >= 1 &&
            d.protocol_versions.length <= 16
              ? null
              : fail('1..16 versions', d.protocol_versions, 'protocol_versions', {}),
          () =>
            /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(d.issued_at)
              ? null
              : fail('RFC 3339 UTC', d.issued_at, 'issued_at', {}),
          () =>
            Array.isArray(d.capabilities) && d.capabilities.length <= 512
              ? null
              : fail('≤512', d.capabilities?.length, 'capabilities', {}),
          () =>
            d.modules && typeof d.modules.protocol === 'boolean'
              ? null
              : fail('modules map', d.modules, 'modules', {}),
          () =>
            verifyObj(d, d.node_id) ? null : fail('valid signature', d.signature, 'descriptor signature', {}),
        );
      },
    },
    {
      id: 'PR-03',
      spec_ref: 'M32 A3.2 capabilities',
      title: 'descriptor capabilities are callable; protocol.* stable, experimental.* experimental',
      async run(ctx) {
        const d = await ctx.describe();
        for (const c of d.capabilities) {
          if (c.name.startsWith('protocol.') && c.tier !== 'stable')
            return fail('stable', c.tier, `${c.name} tier`, {});
          if (c.name.startsWith('experimental.') && c.tier !== 'experimental')
            return fail('experimental', c.tier, `${c.name} tier`, {});
          if (c.streaming) continue;
          const r = await ctx.call(c.name, {});
          if ('error' in r && r.error.code === 'not_found')
            return fail('callable', 'not_found', `${c.name} is listed but not offered`, {
              capability: c.name,
            });
        }
        for (const n of [
          'protocol.version.list',
          'protocol.self.describe',
          'protocol.conformance.report',
          'protocol.registry.list',
          'protocol.registry.announce',
        ])
          if (!d.capabilities.some((c: any) => c.name === n))
            return fail(`${n} listed`, 'absent', 'stable capability missing', {});
        return pass();
      },
    },
    {
      id: 'PR-04',
      spec_ref: 'M32 A7.12',
      title: 'all experimental modules off → no experimental.* in the descriptor',
      requires: { ops: ['config'] },
      async run(ctx) {
        const d = await ctx.describe();
        const on = Object.entries(d.modules)
          .filter(([m, v]) => v && m !== 'protocol')
          .map(([m]) => m);
        if (on.length)
          return fail('all experimental flags off (harness baseline)', on, 'baseline has modules on', {});
        const leaked = d.capabilities.filter((c: any) => c.name.startsWith('experimental.'));
        return leaked.length
          ? fail(
              'none',
              leaked.map((c: any) => c.name),
              'experimental capabilities advertised while off',
              {},
            )
          : pass();
      },
    },
    {
      id: 'PR-05',
      spec_ref: 'M32 A3.4',
      title: 'registry.list contains the own descriptor with origin self',
      async run(ctx) {
        const own = (await registry(ctx)).find((e) => e.descriptor.node_id === ctx.info.peers[0]);
        return own?.origin === 'self'
          ? pass()
          : fail('own entry, origin self', own ?? 'absent', 'own descriptor missing', {});
      },
    },
    {
      id: 'PR-06',
      spec_ref: 'M32 A2.4, A3.6',
      title: 'a peer announces its descriptor → added, source = peer, one protocol.registry.updated',
      requires: { ops: ['raw_link'] },
      async run(ctx) {
        const key = ctx.identity('impl');
        const desc = simDescriptor(key, { name: 'sim-pr06' });
        const sim = await openSim(ctx, { key });
        try {
          const r = expectOk(await sim.call('protocol.registry.announce', { descriptor: desc }), {
            capability: 'protocol.registry.announce',
            input: { descriptor: desc },
          });
          if ('bad' in r) return r.bad;
          if (r.out.change !== 'added' || r.out.accepted !== true)
            return fail('accepted, added', r.out, 'receipt', {});
          const e = (await registry(ctx)).find((x) => x.descriptor.node_id === key.nodeId);
          if (!e || e.source !== key.nodeId)
            return fail(`listed with source ${key.nodeId}`, e ?? 'absent', 'registry entry', {});
          const n = await eventually(async () =>
            countEvents(ctx, 'protocol.registry.updated', (ev) => ev.data.name === 'sim-pr06'),
          );
          return n === 1 ? pass() : fail('1 protocol.registry.updated', n ?? 0, 'event count', {});
        } finally {
          sim.close();
        }
      },
    },
    {
      id: 'PR-07',
      spec_ref: 'M32 A3.4 idempotent upsert',
      title: 'the same announce twice → one entry, change unchanged, no second registry.updated',
      requires: { ops: ['raw_link'] },
      async run(ctx) {
        const key = ctx.identity('impl');
        const desc = simDescriptor(key, { name: 'sim-pr07' });
        const sim = await openSim(ctx, { key });
        try {
          await sim.call('protocol.registry.announce', { descriptor: desc });
          const r = expectOk(await sim.call('protocol.registry.announce', { descriptor: desc }), {});
          if ('bad' in r) return r.bad;
          if (r.out.change !== 'unchanged') return fail('unchanged', r.out.change, 'second announce', {});
          const n = (await registry(ctx)).filter((x) => x.descriptor.node_id === key.nodeId).length;
          if (n !== 1) return fail('1 entry', n, 'duplicate entries', {});
          await new Promise((r) => setTimeout(r, 50));
          const ev = await countEvents(ctx, 'protocol.registry.updated', (e) => e.data.name === 'sim-pr07');
          return ev === 1 ? pass() : fail('1 event', ev, 'registry.updated repeated', {});
        } finally {
          sim.close();
        }
      },
    },
    {
      id: 'PR-08',
      spec_ref: 'M32 A5',
      title:
        'malformed descriptors → protocol_descriptor_invalid; another node_id → unauthorized; registry unchanged',
      requires: { ops: ['raw_link'] },
      async run(ctx) {
        const key = ctx.identity('impl');
        const other = ctx.identity('other');
        const sim = await openSim(ctx, { key });
        try {
          const before = (await registry(ctx)).length;
          const { name: _n, ...noName } = simDescriptor(key, {}, false) as Record<string, unknown>;
          const { signObj } = await import('../../lib/crypto.js');
          const bads: [string, unknown][] = [
            ['missing name', signObj(key, noName)],
            ['65-char name', simDescriptor(key, { name: 'a'.repeat(65) })],
            ['empty protocol_versions', simDescriptor(key, { protocol_versions: [] })],
            ['"3.0" only', simDescriptor(key, { protocol_versions: ['3.0'] })],
            [
              'bad signature',
              { ...simDescriptor(key, { name: 'sim-pr08' }), vendor: 'changed after signing' },
            ],
          ];
          for (const [what, d] of bads) {
            const bad = expectError(
              await sim.call('protocol.registry.announce', { descriptor: d }),
              'protocol_descriptor_invalid',
              { capability: 'protocol.registry.announce', violation: what },
            );
            if (bad) return bad;
          }
          const foreign = simDescriptor(other, { name: 'sim-pr08-other' });
          const bad = expectError(
            await sim.call('protocol.registry.announce', { descriptor: foreign }),
            'unauthorized',
            { violation: 'announces another node_id' },
          );
          if (bad) return bad;
          const after = (await registry(ctx)).length;
          return after === before
            ? pass()
            : fail(`${before} entries`, after, 'registry changed by rejected announces', {});
        } finally {
          sim.close();
        }
      },
    },
    {
      id: 'PR-09',
      spec_ref: 'M32 A3.4',
      title: 'same name from two vendors (two identities) → both listed',
      requires: { ops: ['raw_link'] },
      async run(ctx) {
        const keys = [ctx.identity('a'), ctx.identity('b')];
        for (const [i, key] of keys.entries()) {
          const sim = await openSim(ctx, { key });
          const r = await sim.call('protocol.registry.announce', {
            descriptor: simDescriptor(key, { name: 'sim-pr09', vendor: `vendor-${i}` }),
          });
          sim.close();
          if ('error' in r) return fail('accepted', r.error, 'announce failed', {});
        }
        const rows = (await registry(ctx)).filter((e) => e.descriptor.name === 'sim-pr09');
        return rows.length === 2 ? pass() : fail('2 entries', rows.length, 'same-name entries', {});
      },
    },
    {
      id: 'PR-10',
      spec_ref: 'M32 A2.4 unknown fields kept',
      title: 'descriptor with unknown field x_future → accepted, kept, signature still verifies',
      requires: { ops: ['raw_link'] },
      async run(ctx) {
        const key = ctx.identity('impl');
        const sim = await openSim(ctx, { key });
        try {
          const d = simDescriptor(key, { name: 'sim-pr10', x_future: { a: [1, 'ü'] } });
          const r = await sim.call('protocol.registry.announce', { descriptor: d });
          if ('error' in r) return fail('accepted', r.error, 'announce failed', {});
          const e = (await registry(ctx)).find((x) => x.descriptor.node_id === key.nodeId);
          if (!e?.descriptor.x_future)
            return fail('x_future kept', e?.descriptor ?? 'absent', 'unknown field dropped', {});
          return verifyObj(e.descriptor, key.nodeId)
            ? pass()
            : fail('verifies', 'invalid', 'stored descriptor no longer verifies', {});
        } finally {
          sim.close();
        }
      },
    },
    {
      id: 'PR-11',
      spec_ref: 'M32 A3.3 step 2',
      title:
        'a hello offering only 99.0.0 → refused with protocol_unsupported_capability; descriptor stored incompatible',
      requires: { ops: ['raw_link'] },
      async run(ctx) {
        const key = ctx.identity('impl');
        const desc = simDescriptor(key, { name: 'sim-pr11', protocol_versions: ['99.0.0'] });
        let refused = '';
        try {
          const sim = await openSim(ctx, { key, protocol_versions: ['99.0.0'], descriptor: desc });
          sim.close();
        } catch (e) {
          refused = String((e as Error).message);
        }
        if (!refused.includes('protocol_unsupported_capability'))
          return fail('refused: protocol_unsupported_capability', refused || 'link open', 'negotiation', {});
        const e = (await registry(ctx)).find((x) => x.descriptor.node_id === key.nodeId);
        return e && e.compatible === false
          ? pass()
          : fail('stored, compatible=false', e ?? 'absent', 'incompatible descriptor not kept', {});
      },
    },
    {
      id: 'PR-12',
      spec_ref: 'M32 A3.3 step 3',
      title: 'hello [3.0.0, 3.2.0] or [2.1.0, 3.1.0] to a 3.0.0 SUT → link up, agreed 3.0.0',
      requires: { ops: ['raw_link', 'link'] },
      async run(ctx) {
        const own = (await ctx.call('protocol.version.list', {})) as any;
        if (
          !own.output?.protocol_versions?.includes('3.0.0') ||
          own.output.protocol_versions.some((v: string) => v.startsWith('3.') && v !== '3.0.0')
        )
          return { status: 'skipped', reason: 'SUT is not on exactly 3.0.0 in major 3' };
        for (const offer of [
          ['3.0.0', '3.2.0'],
          ['2.1.0', '3.1.0'],
        ]) {
          const key = ctx.identity(offer.join('+'));
          const sim = await openSim(ctx, { key, protocol_versions: offer });
          const row = await eventually(async () =>
            (await ctx.target.links!(0)).find((l) => l.peer === key.nodeId),
          );
          sim.close();
          if (row?.agreed_version !== '3.0.0')
            return fail('agreed 3.0.0', row ?? 'no link', `offer ${offer.join(',')}`, {});
        }
        return pass();
      },
    },
    {
      id: 'PR-13',
      spec_ref: 'M32 A3.3, A3.6',
      title: 'two SUT peers link → each registry lists the other; one protocol.descriptor.announced per peer',
      requires: { ops: ['link'], peers: 2 },
      async run(ctx) {
        await ctx.target.linkAll!();
        for (const [i, j] of [
          [0, 1],
          [1, 0],
        ] as const) {
          const ok = await eventually(
            async () => (await registry(ctx, i)).some((e) => e.descriptor.node_id === ctx.info.peers[j]),
            5000,
          );
          if (!ok) return fail(`peer ${i} lists peer ${j}`, 'absent', 'descriptor not exchanged', {});
        }
        for (const i of [0, 1]) {
          const n = (await ctx.target.events(i)).events.filter(
            (e: any) => e.event_type === 'protocol.descriptor.announced' && e.author === ctx.info.peers[i],
          ).length;
          if (n < 1) return fail('≥1 announcement', n, `peer ${i} did not announce`, {});
        }
        return pass();
      },
    },
    {
      id: 'PR-14',
      spec_ref: 'M32 A2.5 submit',
      title:
        'submit → signed report; signature verifies; report_cid recomputes; protocol.conformance.ran carries it',
      async run(ctx) {
        const d = await ctx.describe();
        // a passing report (one required section, one passed case): suites_passed must list it
        const report = buildReport({
          implementation: d,
          protocol_version: '3.0.0',
          seed: ctx.seed,
          target: { kind: ctx.target.kind, peers: 1 },
          results: [
            {
              id: 'PR-14-probe',
              section: 'core/probe',
              spec_ref: 'M32 A2.5',
              title: 'probe',
              status: 'pass',
              duration_ms: 1,
            },
          ],
          sections: [{ name: 'core/probe', required: true, experimental: false }],
          started: 0,
          finished: 1,
        });
        if (report.overall !== 'pass') return fail('a passing probe report', report.overall, 'suite bug', {});
        const r = expectOk(await ctx.call('protocol.conformance.report', { action: 'submit', report }), {
          capability: 'protocol.conformance.report',
          input: { action: 'submit' },
        });
        if ('bad' in r) return r.bad;
        const o = r.out;
        return all(
          () =>
            verifyObj(o.report, d.node_id)
              ? null
              : fail('valid signature', o.report.signature, 'report signature', {}),
          () =>
            blake3Cid(o.report) === o.report_cid
              ? null
              : fail(blake3Cid(o.report), o.report_cid, 'report_cid does not recompute', {}),
          async () =>
            (await eventually(async () =>
              (await ctx.target.events(0)).events.some(
                (e: any) => e.event_type === 'protocol.conformance.ran' && e.data.report_cid === o.report_cid,
              ),
            ))
              ? null
              : fail('protocol.conformance.ran with the CID', 'absent', 'event missing', {}),
          async () => {
            const l = await ctx.call('protocol.conformance.report', { action: 'latest' });
            return 'output' in l && l.output.report_cid === o.report_cid
              ? null
              : fail(o.report_cid, l, 'latest differs (PR-15)', {});
          },
          async () => {
            const v = await ctx.call('protocol.version.list', {});
            return 'output' in v &&
              v.output.suites_passed.some((s: any) => s.report_cid === o.report_cid && s.overall === 'pass')
              ? null
              : fail('suites_passed lists the report', v, 'version.list', {});
          },
        );
      },
    },
    {
      id: 'PR-16',
      spec_ref: 'M32 A2.5 errors',
      title:
        'unknown protocol_version → protocol_version_unknown; suite_version "3.0" → bad_request; no such suite → protocol_suite_not_installed',
      async run(ctx) {
        return all(
          async () =>
            expectError(
              await ctx.call('protocol.conformance.report', { protocol_version: '9.9.9' }),
              'protocol_version_unknown',
              { input: { protocol_version: '9.9.9' } },
            ),
          async () =>
            expectError(
              await ctx.call('protocol.conformance.report', { suite_version: '3.0' }),
              'bad_request',
              { input: { suite_version: '3.0' } },
            ),
          async () =>
            expectError(
              await ctx.call('protocol.conformance.report', { action: 'latest', suite_version: '0.0.1' }),
              'protocol_suite_not_installed',
              { input: { suite_version: '0.0.1' } },
            ),
        );
      },
    },
    {
      id: 'PR-17',
      spec_ref: 'M32 A2.5, A5',
      title: 'submit from a peer → unauthorized; a report naming another node → bad_request',
      requires: { ops: ['raw_link'] },
      async run(ctx) {
        const d = await ctx.describe();
        const report = buildReport({
          implementation: d,
          protocol_version: '3.0.0',
          seed: ctx.seed,
          target: { kind: ctx.target.kind, peers: 1 },
          results: [],
          sections: [],
          started: 0,
          finished: 1,
        });
        const sim = await openSim(ctx, { name: 'pr17' });
        try {
          const bad1 = expectError(
            await sim.call('protocol.conformance.report', { action: 'submit', report }),
            'unauthorized',
            { caller: 'sim peer' },
          );
          if (bad1) return bad1;
        } finally {
          sim.close();
        }
        const foreign = { ...report, node_id: ctx.identity('someone').nodeId };
        return (
          expectError(
            await ctx.call('protocol.conformance.report', { action: 'submit', report: foreign }),
            'bad_request',
            { input: 'report.node_id of another node' },
          ) ?? pass()
        );
      },
    },
    {
      id: 'PR-18',
      spec_ref: 'M32 A5 rate limits',
      title:
        '11 announces in one minute from one caller → the first 10 are taken, the 11th is rate_limited (spread over 3 s, so the per-second bus limit cannot be what refuses it)',
      requires: { ops: ['raw_link'] },
      async run(ctx) {
        const key = ctx.identity('impl');
        const sim = await openSim(ctx, { key });
        try {
          const desc = simDescriptor(key, { name: 'sim-pr18' });
          // 5 + 5 + 1 in separate seconds: never more than RATE_LIMIT_SOFT_RPS_PER_CAP (10) in one second,
          // so only the M32 A5 per-minute budget (10 announces) can refuse the 11th
          let last: any = null;
          for (let i = 0; i < 11; i++) {
            if (i === 5 || i === 10) await new Promise((r) => setTimeout(r, 1100));
            last = await sim.call('protocol.registry.announce', { descriptor: desc });
            if (i < 10 && 'error' in last)
              return fail('accepted', last.error, `announce ${i + 1} of 10 within the budget refused`, {
                capability: 'protocol.registry.announce',
                call: i + 1,
              });
          }
          return (
            expectError(last, 'rate_limited', { capability: 'protocol.registry.announce', calls: 11 }) ??
            pass()
          );
        } finally {
          sim.close();
        }
      },
    },
  ],
};

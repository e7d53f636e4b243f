/**
 * experimental/civdef (M31), black-box over the capability bus. The suite signs its own role
 * certificates with a DRBG identity that is no trust root of the SUT, computing cert_id with its own
 * JCS/SHA-256/base32 (the method of vectors/civdef/cert_ids.json, derived independently in Python):
 * a SUT that agrees answers `civdef_cert_unrecognised` (a chain to no root), one that disagrees
 * answers `civdef_cert_invalid`. The RFC 9162 vectors (vectors/civdef/merkle.json) are checked
 * against the suite's own Merkle reference below, so another implementation can use them.
 * Self-contained: one file, one `section`.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { base32nopad } from '@scure/base';
import { jcs, sha256, signObj, toHex, utf8 } from '../../lib/crypto.js';
import {
  all,
  expectError,
  fail,
  pass,
  type CaseCtx,
  type CaseDef,
  type SectionDef,
  flagOffCase,
} from '../../runner/case.js';

const P = 'experimental.civdef.';
const CAPS = [
  'alert.publish',
  'alert.cancel',
  'alert.list',
  'alert.get',
  'alert.subscribe',
  'alert.ack',
  'alert.acks',
  'role.register',
  'role.list',
  'role.revoke',
  'audit.export',
].map((c) => P + c);
const VEC = resolve(dirname(fileURLToPath(import.meta.url)), '../../vectors/civdef');
const vec = (f: string) => JSON.parse(readFileSync(resolve(VEC, f), 'utf8'));
const REF = 'M31 digest';

// ---- the suite's own RFC 9162 reference
const cat = (...p: Uint8Array[]) => {
  const o = new Uint8Array(p.reduce((n, x) => n + x.length, 0));
  let i = 0;
  for (const x of p) {
    o.set(x, i);
    i += x.length;
  }
  return o;
};
const leafH = (d: Uint8Array) => sha256(cat(new Uint8Array([0]), d));
const nodeH = (l: Uint8Array, r: Uint8Array) => sha256(cat(new Uint8Array([1]), l, r));
const kOf = (n: number) => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};
const mth = (D: Uint8Array[]): Uint8Array =>
  D.length === 0
    ? sha256(new Uint8Array())
    : D.length === 1
      ? leafH(D[0]!)
      : nodeH(mth(D.slice(0, kOf(D.length))), mth(D.slice(kOf(D.length))));
const path = (m: number, D: Uint8Array[]): Uint8Array[] => {
  if (D.length <= 1) return [];
  const k = kOf(D.length);
  return m < k
    ? [...path(m, D.slice(0, k)), mth(D.slice(k))]
    : [...path(m - k, D.slice(k)), mth(D.slice(0, k))];
};
const sub = (m: number, D: Uint8Array[], b: boolean): Uint8Array[] => {
  if (m === D.length) return b ? [] : [mth(D)];
  const k = kOf(D.length);
  return m <= k
    ? [...sub(m, D.slice(0, k), b), mth(D.slice(k))]
    : [...sub(m - k, D.slice(k), false), mth(D.slice(0, k))];
};

const certIdOf = (body: Record<string, unknown>) => base32nopad.encode(sha256(utf8(jcs(body))));
const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

function suiteCert(
  ctx: CaseCtx,
  role = 'DE.NRW.Kleve.Issum.Feuerwehr.Wehrleiter',
  region = 'DE.NRW.Kleve.Issum',
) {
  const issuer = ctx.identity('issuer');
  const holder = ctx.identity('holder');
  const body = {
    schema_version: 1,
    holder: holder.nodeId,
    role,
    region,
    issuer: issuer.nodeId,
    issuer_chain: [issuer.nodeId],
    issued_at: iso(Date.now() - 3600_000),
    expires_at: iso(Date.now() + 30 * 86400_000),
    scopes: ['alert.ack', 'alert.publish'],
    revocation_url: null,
  };
  return signObj(issuer, { ...body, cert_id: certIdOf(body) });
}

const cases: CaseDef[] = [
  flagOffCase({
    id: 'civdef.flag',
    spec_ref: `${REF} §2 (gating); seed §8`,
    title: 'module off → all eleven experimental.civdef.* capabilities answer experimental_disabled',
    module: 'civdef',
    capabilities: CAPS,
  }),
  {
    id: 'civdef.get.unknown',
    spec_ref: `${REF} §2 alert.get`,
    title: 'alert.get of an unknown ULID → civdef_alert_not_found',
    async run(ctx) {
      return (
        expectError(
          await ctx.call(P + 'alert.get', { alert_id: '01ARZ3NDEKTSV4RRFFQ69G5FAV' }),
          'civdef_alert_not_found',
          {},
        ) ?? pass()
      );
    },
  },
  {
    id: 'civdef.list.bad_region',
    spec_ref: `${REF} §2 alert.list, §3.1`,
    title: 'alert.list with a malformed region → civdef_alert_target_invalid',
    async run(ctx) {
      return all(
        () => expectError_(ctx, 'alert.list', { region: 'DE..NRW' }, 'civdef_alert_target_invalid'),
        () => expectError_(ctx, 'alert.list', { region: 'DE.NRW.Kle ve' }, 'civdef_alert_target_invalid'),
      );
    },
  },
  {
    id: 'civdef.register.forged_chain',
    spec_ref: `${REF} §4.1 step 4, §5 (forged chain)`,
    title: 'a well-formed cert from a non-root issuer → civdef_cert_unrecognised (proves cert_id agreement)',
    async run(ctx) {
      return (
        expectError(
          await ctx.call(P + 'role.register', { cert: suiteCert(ctx) }),
          'civdef_cert_unrecognised',
          {},
        ) ?? pass()
      );
    },
  },
  {
    id: 'civdef.register.tampered',
    spec_ref: `${REF} §3 (cert_id), §4.1 step 1`,
    title: 'a cert with one changed field (stale cert_id and signature) → civdef_cert_invalid',
    async run(ctx) {
      const c = suiteCert(ctx);
      return all(
        () =>
          expectError_(
            ctx,
            'role.register',
            { cert: { ...c, role: 'DE.NRW.Kleve.KatS.Stabsleiter' } },
            'civdef_cert_invalid',
          ),
        () =>
          expectError_(
            ctx,
            'role.register',
            { cert: { ...c, expires_at: iso(Date.now() + 900 * 86400_000) } },
            'civdef_cert_invalid',
          ),
      );
    },
  },
  {
    id: 'civdef.publish.bad_input',
    spec_ref: `${REF} §4.2 steps 1 and 3, §7.4`,
    title:
      'publish: oversize title → bad_request; bad target → civdef_alert_target_invalid; unknown cert → civdef_cert_invalid',
    async run(ctx) {
      const d = {
        cert_id: 'A'.repeat(52),
        severity: 'warning',
        title: 'Test',
        body: 'Test',
        target: { region: 'DE.NRW.Kleve.Issum', bbox: null, roles: [], channels: ['local'] },
      };
      return all(
        () => expectError_(ctx, 'alert.publish', { ...d, title: 'x'.repeat(81) }, 'bad_request'),
        () => expectError_(ctx, 'alert.publish', { ...d, body: 'x'.repeat(1001) }, 'bad_request'),
        () =>
          expectError_(
            ctx,
            'alert.publish',
            { ...d, target: { ...d.target, channels: [] } },
            'civdef_alert_target_invalid',
          ),
        () => expectError_(ctx, 'alert.publish', d, 'civdef_cert_invalid'),
      );
    },
  },
  {
    id: 'civdef.vector.cert_ids',
    spec_ref: `${REF} §3 (cert_id like a ClaimID)`,
    title: 'vectors/civdef/cert_ids.json agrees with the suite’s JCS/SHA-256/base32',
    async run() {
      for (const c of vec('cert_ids.json').cases) {
        if (jcs(c.body) !== c.preimage_jcs) return fail(c.preimage_jcs, jcs(c.body), `${c.name} preimage`);
        if (certIdOf(c.body) !== c.cert_id) return fail(c.cert_id, certIdOf(c.body), `${c.name} cert_id`);
      }
      return pass();
    },
  },
  {
    id: 'civdef.vector.merkle',
    spec_ref: 'RFC 9162 §2.1 (audit checkpoints, digest §4.8 extension)',
    title:
      'vectors/civdef/merkle.json: roots, inclusion paths and consistency proofs agree with the reference',
    async run() {
      const v = vec('merkle.json');
      if (toHex(mth([])) !== v.empty_root) return fail(v.empty_root, toHex(mth([])), 'empty root');
      for (const t of v.trees) {
        const D = (t.leaves_utf8 as string[]).map(utf8);
        if (toHex(mth(D)) !== t.root) return fail(t.root, toHex(mth(D)), `root of ${t.size}`);
        for (const inc of t.inclusion) {
          const got = path(inc.index, D).map(toHex);
          if (JSON.stringify(got) !== JSON.stringify(inc.path))
            return fail(JSON.stringify(inc.path), got, `PATH(${inc.index}, ${t.size})`);
        }
        for (const c of t.consistency) {
          const got = sub(c.from_size, D, true).map(toHex);
          if (JSON.stringify(got) !== JSON.stringify(c.proof))
            return fail(JSON.stringify(c.proof), got, `PROOF(${c.from_size}, ${t.size})`);
        }
      }
      return pass();
    },
  },
];

async function expectError_(ctx: CaseCtx, cap: string, input: unknown, code: string) {
  return expectError(await ctx.call(P + cap, input), code, { capability: P + cap, input });
}

export const section: SectionDef = {
  name: 'experimental/civdef',
  required: false,
  module: 'civdef',
  probe: { capability: 'experimental.civdef.alert.list', input: {} },
  cases,
};

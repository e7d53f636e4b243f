/** M31 test world: real nodes linked in memory, real Ed25519 issuer keys, certs issued by a root. */
import 'fake-indexeddb/auto';
import { createNode, type HearthNode } from '../../engine/index.js';
import { keyPairFromSeed, signObject, type KeyPair } from '../../engine/identity/identity.js';
import { issueCert, iso, type RoleCertificate } from '../../engine/civdef/role.js';
import { CIVDEF_SERVICES } from '../../engine/civdef/index.js';
import type { CivDefService } from '../../engine/civdef/service.js';
import type { NodeID } from '../../engine/core/types.js';
import { link, seedOf } from './helpers.js';

export const ROOT: KeyPair = keyPairFromSeed(new Uint8Array(32).fill(201));
export const ROGUE: KeyPair = keyPairFromSeed(new Uint8Array(32).fill(202));
export const signer =
  (kp: KeyPair) =>
  <T extends Record<string, unknown>>(o: T) =>
    signObject(kp, o);

export function cert(
  by: KeyPair,
  holder: NodeID,
  role: string,
  region: string,
  scopes: string[],
  opts: { chain?: NodeID[]; issued?: number; expires?: number } = {},
): RoleCertificate {
  const now = Date.now();
  return issueCert(signer(by), {
    holder,
    role,
    region,
    issuer: by.nodeId,
    issuer_chain: opts.chain ?? [by.nodeId],
    issued_at: iso(opts.issued ?? now - 3600_000),
    expires_at: iso(opts.expires ?? now + 365 * 86400_000),
    scopes,
  });
}

export const PUB = ['alert.publish', 'alert.cancel', 'alert.ack', 'role.issue', 'role.revoke'];

export async function civNode(
  seed: number,
  extra: Record<string, unknown> = {},
  community?: NodeID,
): Promise<HearthNode> {
  return createNode({
    seed: seedOf(seed),
    config: {
      civdef: { enabled: true, trust_roots_extra: [ROOT.nodeId], ...extra },
      ...(community ? { community: { community_id: community } } : {}),
    } as never,
  });
}
export const svcOf = (n: HearthNode): CivDefService => CIVDEF_SERVICES.get(n.id)!;
export async function settle(...ns: HearthNode[]) {
  // live push carries the events; one anti-entropy round (sync is rate limited per peer) catches the rest
  for (const n of ns) await n.events.sync().catch(() => undefined);
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 30));
    for (const n of ns) await svcOf(n)?.idle();
  }
}
export { link };

export const draft = (cert_id: string, over: Record<string, unknown> = {}) => ({
  cert_id,
  severity: 'warning',
  title: 'Hochwasser Issum',
  body: 'Die Niers tritt über die Ufer.\nBitte meiden Sie die Uferwege.',
  target: { region: 'DE.NRW.Kleve.Issum', bbox: null, roles: [], channels: ['local', 'push'] },
  instructions: ['Keller räumen', 'Radio einschalten'],
  ...over,
});

/** every store of the node's civdef database, for before/after comparisons */
export async function dump(n: HearthNode): Promise<string> {
  const s = svcOf(n) as unknown as { d: { db: { getAll(s: string): Promise<unknown[]> } } };
  const out: Record<string, unknown> = {};
  for (const st of [
    'civdef_alerts',
    'civdef_acks',
    'civdef_certs',
    'civdef_revocations',
    'civdef_audit',
    'civdef_audit_meta',
    'civdef_audit_witness',
  ])
    out[st] = await s.d.db.getAll(st);
  return JSON.stringify(out);
}

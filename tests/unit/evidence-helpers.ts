import 'fake-indexeddb/auto';
import { createNode, type HearthNode } from '../../engine/index.js';
import type { TrustLevel, NodeID } from '../../engine/core/types.js';
import { keyPairFromSeed, signObject, type KeyPair } from '../../engine/identity/identity.js';
import { openIndexedDbStorage } from '../../engine/store/indexeddb.js';
import { EVIDENCE_SCHEMA } from '../../engine/evidence/store.js';
import { EvidenceService, type EvidenceDeps } from '../../engine/evidence/service.js';
import type { EvidenceSettings } from '../../engine/evidence/query.js';
import type { EventEnvelope } from '../../engine/events/log.js';

export const T0 = Date.parse('2026-03-01T12:00:00Z');

/** Shared, mutable facts of a test world: the clock and everyone's community level. */
export interface World {
  clock: { t: number };
  levels: Map<string, TrustLevel | 'revoked' | null>;
  settings: Partial<EvidenceSettings>;
}
export const newWorld = (): World => ({ clock: { t: T0 }, levels: new Map(), settings: {} });

export interface Actor {
  kp: KeyPair;
  id: NodeID;
  node: HearthNode;
  svc: EvidenceService;
  /** evidence events this actor appended, in order */
  events: () => Promise<EventEnvelope[]>;
}

let dbn = 0;
/** A real node (its EventLog), a real IndexedDB (fake-indexeddb) database and real Ed25519 keys. */
export async function actor(
  world: World,
  seedByte: number,
  extra: Partial<EvidenceDeps> = {},
): Promise<Actor> {
  const kp = keyPairFromSeed(new Uint8Array(32).fill(seedByte));
  const node = await createNode({ seed: kp.seed, config: { evidence: { enabled: true } } });
  const db = await openIndexedDbStorage(
    `evidence-test-${process.pid}-${++dbn}-${Math.random()}`,
    EVIDENCE_SCHEMA,
  );
  const svc = new EvidenceService({
    self: kp.nodeId,
    sign: (o) => signObject(kp, o),
    db,
    append: (t, d) => node.events.append(t, d),
    levelOf: (n) => (world.levels.has(n) ? world.levels.get(n)! : 'member'),
    now: () => world.clock.t,
    settings: () => world.settings,
    ...extra,
  });
  return {
    kp,
    id: kp.nodeId,
    node,
    svc,
    events: async () => (await node.events.list()).filter((e) => e.event_type.startsWith('evidence.')),
  };
}

/** Deliver every evidence event of `from` to `to` (what the log replication does between tabs). */
export async function deliver(from: Actor, to: Actor): Promise<string[]> {
  const out: string[] = [];
  for (const ev of await from.events()) out.push(await to.svc.ingest(ev));
  return out;
}

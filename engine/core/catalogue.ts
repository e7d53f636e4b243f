/**
 * The seed's Phase-3 names: capabilities per module (§2) and event types (§3).
 * Modules that have not been built yet register their seed capabilities with a handler that
 * answers `not_implemented` ("registered but backend missing"), so flags, manifests and the
 * conformance suite see the real surface and nobody mistakes it for a working module.
 */
import type { ModuleName } from './config.js';

export const SEED_CAPABILITIES: Record<ModuleName, readonly string[]> = {
  distributed_llm: [
    'experimental.distributed_llm.shard.list',
    'experimental.distributed_llm.shard.connect',
    'experimental.distributed_llm.shard.forward',
    'experimental.distributed_llm.pipeline.plan',
    'experimental.distributed_llm.pipeline.run',
    'experimental.distributed_llm.pipeline.status',
  ],
  moe: [
    'experimental.moe.expert.register',
    'experimental.moe.expert.list',
    'experimental.moe.expert.unregister',
    'experimental.moe.route.query',
    'experimental.moe.route.handoff',
    'experimental.moe.feedback.record',
  ],
  fedlearn: [
    'experimental.fedlearn.round.announce',
    'experimental.fedlearn.round.list',
    'experimental.fedlearn.round.join',
    'experimental.fedlearn.round.submit',
    'experimental.fedlearn.round.status',
    'experimental.fedlearn.round.finalize',
    'experimental.fedlearn.adapter.fetch',
    'experimental.fedlearn.adapter.apply',
  ],
  lora: [
    'experimental.lora.status',
    'experimental.lora.beacon.send',
    'experimental.lora.panic.send',
    'experimental.lora.peer.list',
    'experimental.lora.peer.verify',
    'experimental.lora.recent_beacons',
    'experimental.lora.duty_cycle',
  ],
  evidence: [
    'experimental.evidence.claim.assert',
    'experimental.evidence.claim.dispute',
    'experimental.evidence.claim.attest',
    'experimental.evidence.claim.get',
    'experimental.evidence.claim.query',
    'experimental.evidence.provenance.trace',
    'experimental.evidence.subject.summary',
    'experimental.evidence.ebkh.sync',
  ],
  civdef: [
    'experimental.civdef.alert.publish',
    'experimental.civdef.alert.cancel',
    'experimental.civdef.alert.list',
    'experimental.civdef.alert.get',
    'experimental.civdef.alert.subscribe',
    'experimental.civdef.alert.ack',
    'experimental.civdef.alert.acks',
    'experimental.civdef.role.register',
    'experimental.civdef.role.list',
    'experimental.civdef.role.revoke',
    'experimental.civdef.audit.export',
  ],
  tensor_transport: [],
  protocol: [
    'protocol.version.list',
    'protocol.self.describe',
    'protocol.conformance.report',
    'protocol.registry.list',
    'protocol.registry.announce',
  ],
};

export const SEED_EVENT_TYPES: Record<string, readonly string[]> = {
  distributed_llm: [
    'distributed_llm.shard.advertised',
    'distributed_llm.shard.withdrawn',
    'distributed_llm.pipeline.planned',
    'distributed_llm.pipeline.started',
    'distributed_llm.pipeline.shard_failed',
    'distributed_llm.pipeline.failover',
    'distributed_llm.pipeline.completed',
    'distributed_llm.pipeline.cancelled',
  ],
  moe: [
    'moe.expert.registered',
    'moe.expert.unregistered',
    'moe.route.computed',
    'moe.handoff.initiated',
    'moe.handoff.accepted',
    'moe.handoff.declined',
    'moe.handoff.timed_out',
    'moe.feedback.recorded',
  ],
  fedlearn: [
    'fedlearn.round.announced',
    'fedlearn.round.joined',
    'fedlearn.round.consent.granted',
    'fedlearn.round.submitted',
    'fedlearn.round.aggregated',
    'fedlearn.round.completed',
    'fedlearn.round.aborted',
    'fedlearn.round.takeover',
    'fedlearn.adapter.published',
    'fedlearn.adapter.applied',
  ],
  lora: [
    'lora.beacon.sent',
    'lora.beacon.received',
    'lora.panic.sent',
    'lora.panic.received',
    'lora.peer.unknown',
    'lora.peer.verified',
    'lora.peer.conflict',
    'lora.duty_cycle.exhausted',
    'lora.duty_cycle.overridden',
    'lora.rx.dropped',
  ],
  evidence: [
    'evidence.claim.asserted',
    'evidence.claim.attested',
    'evidence.dispute.opened',
    'evidence.dispute.retracted',
    'evidence.ebkh.synced',
    'evidence.ebkh.sync_partial',
  ],
  civdef: [
    'civdef.alert.published',
    'civdef.alert.forwarded',
    'civdef.alert.acked',
    'civdef.alert.cancelled',
    'civdef.alert.dropped.revoked',
    'civdef.alert.foreign_role',
    'civdef.role.registered',
    'civdef.role.revoked',
    'civdef.audit.checkpointed',
    'civdef.audit.broken',
  ],
  protocol: ['protocol.descriptor.announced', 'protocol.registry.updated', 'protocol.conformance.ran'],
};

/** Which module's flag gates a capability name; null = not gated by a Phase-3 flag. */
export function moduleOfCapability(name: string): ModuleName | null {
  if (name.startsWith('protocol.')) return 'protocol';
  const m = /^experimental\.([a-z_]+)\./.exec(name);
  if (!m) return null;
  const mod = m[1] as ModuleName;
  return mod in SEED_CAPABILITIES && mod !== 'tensor_transport' && mod !== 'protocol' ? mod : null;
}

/** Which module produces an event type (by its `<area>.` prefix); null for core event types. */
export function moduleOfEventType(type: string): string | null {
  const area = type.slice(0, type.indexOf('.'));
  return area in SEED_EVENT_TYPES ? area : null;
}

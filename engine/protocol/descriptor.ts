/** ImplementationDescriptor (M32 A3.2): build from the bus, sign, validate an untrusted one. */
import { compileSchema } from '../bus/schema.js';
import type { Bus } from '../bus/bus.js';
import { canonical } from '../core/canonical.js';
import { HnError } from '../core/errors.js';
import { blake3Cid } from '../core/hash.js';
import type { NodeID } from '../core/types.js';
import { isNodeId, verifyObject } from '../identity/identity.js';
import { DESCRIPTOR_SCHEMA, indexEntry } from './catalog.js';
import { parseVersion } from './version.js';

export const DESCRIPTOR_MAX_BYTES = 16 * 1024;

export interface ImplementationDescriptor {
  descriptor_schema: 1;
  name: string;
  vendor: string;
  version: string;
  protocol_versions: string[];
  homepage_url: string | null;
  contact: string | null;
  node_id: NodeID;
  issued_at: string;
  capabilities: { name: string; version: string; tier: string; streaming: boolean }[];
  modules: Record<string, boolean>;
  signature: string;
  [extra: string]: unknown;
}

export interface ImplementationInfo {
  name: string;
  vendor: string;
  version: string;
  homepage_url: string | null;
  contact: string | null;
  commit: string | null;
}

/** Tier as the protocol names it: `stable` for protocol.*, `experimental` for experimental.*. */
export function tierOf(stability: string): 'stable' | 'provisional' | 'experimental' {
  return stability === 'stable' ? 'stable' : stability === 'experimental' ? 'experimental' : 'provisional';
}

/** Unsigned descriptor content (everything but issued_at and signature) from the live bus and config. */
export function describeContent(
  bus: Pick<Bus, 'list'>,
  protocol: { supported_versions: readonly string[] },
  modules: Record<string, boolean>,
  self: NodeID,
  impl: ImplementationInfo,
) {
  return {
    descriptor_schema: 1 as const,
    name: impl.name,
    vendor: impl.vendor,
    version: impl.version,
    protocol_versions: [...protocol.supported_versions],
    homepage_url: impl.homepage_url,
    contact: impl.contact,
    node_id: self,
    capabilities: bus
      .list()
      .map((c) => ({ name: c.name, version: c.version, tier: tierOf(c.stability), streaming: c.stream }))
      .slice(0, 512),
    modules,
  };
}

export const descriptorCid = (d: Record<string, unknown>): string => blake3Cid(d);

/** Validate an untrusted descriptor (A5): schema, size, NodeID, signature, ≥1 parseable version. */
export function validateDescriptor(d: unknown): ImplementationDescriptor {
  const bad = (why: string): never => {
    throw new HnError('protocol_descriptor_invalid', `descriptor rejected: ${why}`);
  };
  if (!d || typeof d !== 'object' || Array.isArray(d)) bad('not an object');
  const v = compileSchema(DESCRIPTOR_SCHEMA);
  if (!v(d)) {
    const e = v.errors?.[0];
    bad(`${e?.instancePath || '$'} ${e?.message ?? 'invalid'}`.slice(0, 200));
  }
  const desc = d as ImplementationDescriptor;
  let bytes = 0;
  try {
    bytes = canonical(desc).length;
  } catch {
    bad('not canonicalisable');
  }
  if (bytes > DESCRIPTOR_MAX_BYTES) bad(`canonical size ${bytes} > ${DESCRIPTOR_MAX_BYTES}`);
  if (!isNodeId(desc.node_id)) bad('node_id');
  if (!desc.protocol_versions.some((x) => parseVersion(x) !== null)) bad('no parseable protocol version');
  if (!verifyObject(desc as Record<string, unknown>, desc.node_id)) bad('signature does not verify');
  return desc;
}

/** Tier check (A3.5 step 4): registered capabilities whose tier differs from the protocol index. */
export function tierMismatches(
  bus: Pick<Bus, 'list'>,
): { name: string; registered: string; protocol: string | null }[] {
  const out = [];
  for (const c of bus.list()) {
    const e = indexEntry(c.name);
    const reg = tierOf(c.stability);
    if (!e || e.tier !== reg) out.push({ name: c.name, registered: reg, protocol: e?.tier ?? null });
  }
  return out;
}

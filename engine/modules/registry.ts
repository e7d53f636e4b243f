/**
 * Helpers for module definitions: capability descriptors built from protocol/schemas (the single
 * source), and the `not_implemented` capabilities of a module that is not built yet ("registered but
 * backend missing"), so flags, manifests and conformance see the true surface.
 */
import type { Capability, CapabilityDescriptor } from '../bus/types.js';
import { HnError } from '../core/errors.js';
import { capabilitySchemas, indexEntry } from '../protocol/catalog.js';

/**
 * A capability descriptor whose schemas and tier come from protocol/schemas (the single source):
 * a seed capability gets the protocol's request/response/stream schema and tier unless `over` says otherwise.
 */
export function descriptor(
  name: string,
  module: CapabilityDescriptor['module'],
  over: Partial<CapabilityDescriptor> = {},
): CapabilityDescriptor {
  const proto = capabilitySchemas(name);
  const tier = indexEntry(name)?.tier;
  return {
    name,
    version: [1, 0],
    stability: tier ?? (module === 'protocol' ? 'provisional' : 'experimental'),
    module,
    request_schema: proto.request ?? { type: 'object' },
    response_schema: proto.response,
    stream_schema: indexEntry(name)?.streaming ? (proto.stream ?? { type: 'object' }) : null,
    max_concurrent: 16,
    trust_required: 'member',
    timeout_seconds: 30,
    idempotent: false,
    ...over,
  };
}

/** Seed capabilities answering `not_implemented` (for a module whose backend is not built yet). */
export function notImplementedCapabilities(module: string, names: readonly string[]): Capability[] {
  return names.map((cap) => {
    const d = descriptor(cap, module, { description: 'not implemented in this build' });
    const fail = () => {
      throw new HnError('not_implemented', `${cap} is not implemented in this build`);
    };
    return {
      descriptor: d,
      // streaming capabilities need a generator handler (the bus checks the shape)
      handler: d.stream_schema
        ? async function* () {
            yield* [];
            fail();
          }
        : async () => fail(),
    };
  });
}

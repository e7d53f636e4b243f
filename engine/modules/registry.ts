/**
 * Module hosting: each module contributes capabilities to the bus when its flag is on.
 * Modules that have not been built yet contribute the seed's capability names with a handler
 * that answers `not_implemented`, so the flag rule, manifests and conformance see the true surface.
 */
import type { Bus } from '../bus/bus.js';
import type { Capability, CapabilityDescriptor } from '../bus/types.js';
import { SEED_CAPABILITIES } from '../core/catalogue.js';
import type { HearthnetConfig, ModuleName } from '../core/config.js';
import { HnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import type { EventLog } from '../events/log.js';
import type { LinkProtocolHook } from '../net/session.js';
import { capabilitySchemas, indexEntry } from '../protocol/catalog.js';

export interface ModuleContext {
  self: NodeID;
  bus: Bus;
  events: EventLog;
  config: () => HearthnetConfig;
  /** sign an object with the node key (signature over canonical JSON without `signature`) */
  sign<T extends Record<string, unknown>>(obj: T): T & { signature: string };
  /** small per-module key/value persistence in the node database */
  kv: { get<T>(key: string): Promise<T | undefined>; put(key: string, value: unknown): Promise<void> };
  /** install (or clear) the M32 link-hello hook */
  setLinkHook(hook: LinkProtocolHook | null): void;
}

export interface ModuleDef {
  name: ModuleName;
  capabilities(ctx: ModuleContext): Capability[];
  start?(ctx: ModuleContext): Promise<void> | void;
  stop?(): Promise<void> | void;
}

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

/** The seed capabilities of a module that is not built yet: registered, answering `not_implemented`. */
export function unbuiltModule(name: ModuleName): ModuleDef {
  return {
    name,
    capabilities: () =>
      SEED_CAPABILITIES[name].map((cap) => {
        const d = descriptor(cap, name, { description: 'not implemented in this build' });
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
      }),
  };
}

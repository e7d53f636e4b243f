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

export interface ModuleContext {
  self: NodeID;
  bus: Bus;
  events: EventLog;
  config: () => HearthnetConfig;
}

export interface ModuleDef {
  name: ModuleName;
  capabilities(ctx: ModuleContext): Capability[];
  start?(ctx: ModuleContext): Promise<void> | void;
  stop?(): Promise<void> | void;
}

export function descriptor(
  name: string,
  module: CapabilityDescriptor['module'],
  over: Partial<CapabilityDescriptor> = {},
): CapabilityDescriptor {
  return {
    name,
    version: [1, 0],
    stability: module === 'protocol' ? 'provisional' : 'experimental',
    module,
    request_schema: { type: 'object' },
    response_schema: null,
    stream_schema: null,
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
      SEED_CAPABILITIES[name].map((cap) => ({
        descriptor: descriptor(cap, name, { description: 'not implemented in this build' }),
        handler: async () => {
          throw new HnError('not_implemented', `${cap} is not implemented in this build`);
        },
      })),
  };
}

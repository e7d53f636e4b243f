/** M32 protocol service (the part built so far): version list and the implementation descriptor. */
import { SEED_CAPABILITIES } from '../core/catalogue.js';
import { CONTRACT_VERSION } from '../core/constants.js';
import { HnError } from '../core/errors.js';
import { descriptor, type ModuleDef } from '../modules/registry.js';

export const IMPLEMENTATION = {
  name: 'hearthnet-web',
  vendor: 'HearthNet community',
  version: '0.1.0',
  language: 'TypeScript',
};

export const protocolModule: ModuleDef = {
  name: 'protocol',
  capabilities: (ctx) => {
    const built = new Set(['protocol.version.list', 'protocol.self.describe']);
    return [
      {
        descriptor: descriptor('protocol.version.list', 'protocol', {
          trust_required: 'unknown',
          idempotent: true,
          response_schema: {
            type: 'object',
            required: ['versions', 'default'],
            properties: {
              versions: { type: 'array', items: { type: 'string' } },
              default: { type: 'string' },
            },
          },
        }),
        handler: async () => {
          const c = ctx.config().protocol;
          return { versions: [...c.supported_versions], default: c.default_announce_version };
        },
      },
      {
        descriptor: descriptor('protocol.self.describe', 'protocol', {
          trust_required: 'unknown',
          idempotent: true,
        }),
        handler: async () => ({
          node_id: ctx.self,
          implementation: IMPLEMENTATION,
          contract_version: CONTRACT_VERSION,
          protocol_versions: [...ctx.config().protocol.supported_versions],
          capabilities: ctx.bus.list().map((c) => ({
            name: c.name,
            version: c.version,
            stability: c.stability,
            schema_hash: c.schema_hash,
          })),
        }),
      },
      ...SEED_CAPABILITIES.protocol
        .filter((n) => !built.has(n))
        .map((n) => ({
          descriptor: descriptor(n, 'protocol', {
            trust_required: n === 'protocol.conformance.report' ? 'self' : 'member',
          }),
          handler: async () => {
            throw new HnError('not_implemented', `${n} is not implemented in this build`);
          },
        })),
    ];
  },
};

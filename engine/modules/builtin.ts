/**
 * The built-in modules, in config/TOML order. This list is the one place a module is added: config
 * sections, the capability/event catalogue, the bus's registrable namespaces and the app's module
 * list are all derived from it. (Tests add or replace modules with `createNode({ modules })`.)
 */
import { civdef } from '../civdef/index.js';
import { distributedLlm } from '../distributed_llm/index.js';
import { evidence } from '../evidence/index.js';
import { fedlearn } from '../fedlearn/index.js';
import { lora } from '../lora/index.js';
import { moe } from '../moe/index.js';
import { protocol } from '../protocol/index.js';
import { tensorTransport } from '../transport/index.js';
import type { CapabilityNamespace as Namespace } from '../bus/types.js';
import { namespaceOf, type AnyModuleDefinition } from './module.js';

export const BUILTIN_MODULES = [
  distributedLlm,
  moe,
  fedlearn,
  lora,
  evidence,
  civdef,
  tensorTransport,
  protocol,
] as const;

export type BuiltinModule = (typeof BUILTIN_MODULES)[number];
/** The module sections a feature flag can switch. */
export type ModuleName = BuiltinModule['name'];
export const MODULE_SECTIONS: readonly ModuleName[] = BUILTIN_MODULES.map((m) => m.name);

/** Capability prefixes owned by modules (gated by their flag). */
export function namespacesOf(defs: readonly AnyModuleDefinition[]): Namespace[] {
  const out: Namespace[] = [];
  for (const d of defs) {
    const prefix = namespaceOf(d);
    if (prefix) out.push({ prefix, module: d.name });
  }
  return out;
}
export const BUILTIN_NAMESPACES: readonly Namespace[] = namespacesOf(BUILTIN_MODULES);

/**
 * The seed's Phase-3 names, derived from the built-in module definitions (each module's index.ts
 * holds its seed capability names and event types verbatim): capabilities per module (§2) and
 * event types (§3). tests/unit/protocol-schemas.test.ts checks them against protocol/schemas.
 */
import { BUILTIN_MODULES, BUILTIN_NAMESPACES, type ModuleName } from '../modules/builtin.js';

export const SEED_CAPABILITIES: Record<ModuleName, readonly string[]> = Object.fromEntries(
  BUILTIN_MODULES.map((m) => [m.name, m.capabilityNames]),
) as Record<ModuleName, readonly string[]>;

export const SEED_EVENT_TYPES: Record<string, readonly string[]> = Object.fromEntries(
  BUILTIN_MODULES.filter((m) => m.events?.length).map((m) => [m.name, m.events!.map((e) => e.type)]),
);

/** Which built-in module's flag gates a capability name; null = not gated by a module flag. */
export function moduleOfCapability(name: string): ModuleName | null {
  return (BUILTIN_NAMESPACES.find((n) => name.startsWith(n.prefix))?.module as ModuleName) ?? null;
}

/** Which built-in module produces an event type (by its `<area>.` prefix); null for core event types. */
export function moduleOfEventType(type: string): string | null {
  const area = type.slice(0, type.indexOf('.'));
  return area in SEED_EVENT_TYPES ? area : null;
}

/** Seed capability names per module (seed §2), read from the protocol's own index. */
import index from '../../../protocol/schemas/capabilities.index.json' with { type: 'json' };

export const SEED_MODULE_CAPABILITIES: Record<string, readonly string[]> = {};
for (const c of (index as { capabilities: { name: string; module: string }[] }).capabilities)
  (
    (SEED_MODULE_CAPABILITIES[c.module] as string[] | undefined) ??
    ((SEED_MODULE_CAPABILITIES[c.module] = [] as string[]) as string[])
  ).push(c.name);

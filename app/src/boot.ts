/**
 * Boot: claim a slot (Web Locks), open that slot's node (IndexedDB `hearthnet-<slot>`), ask for
 * persistent storage, expose the node as `window.hearthnet`. The engine is imported here,
 * dynamically, so the shell paints before the engine's code is parsed.
 */
import type { HearthNode } from '../../engine/index.js';
import { startMesh } from './mesh.js';
import { claimSlot, parseSlotParam, type SlotClaim } from './slots.js';

export type Engine = typeof import('../../engine/index.js');

export interface Booted {
  node: HearthNode;
  engine: Engine;
  slot: number;
  /** Web Locks guard the slot (false outside a secure context) */
  slotGuarded: boolean;
  /** navigator.storage.persist() answer; null where the API is missing or failed */
  persisted: boolean | null;
}

export async function boot(loc: Location = location): Promise<Booted> {
  const forced = parseSlotParam(loc.search);
  const claim: SlotClaim = await claimSlot(forced);
  try {
    const engine = await import('../../engine/index.js');
    // open the plain URL → join the relay's home community (a join link goes through the banner instead)
    const home = joinTarget(loc.hash) ? null : await homeCommunity(loc);
    const node = await engine.createNode({
      storage: 'indexeddb',
      name: `hearthnet-${claim.slot}`,
      defaultCommunity: home,
    });
    const persisted = await persistStorage();
    window.hearthnet = node;
    window.hearthnetReady = true;
    startMesh(node, loc);
    // M26: the split demo model as the Distributed LLM provider (nothing is fetched until its view asks)
    void import('./llm/distributed.js').then(
      (m) => m.provideDemoModels(node),
      (e: unknown) => console.warn('hearthnet: the distributed model provider did not load', e),
    );
    addEventListener('pagehide', (e) => {
      // a page kept in the back/forward cache keeps its node; a page that goes away frees the slot
      if (!e.persisted) void node.close().finally(() => claim.release());
    });
    return { node, engine, slot: claim.slot, slotGuarded: claim.guarded, persisted };
  } catch (e) {
    claim.release();
    throw e;
  }
}

/** The relay's home community from /config.json; null when there is none (or no relay answers). */
async function homeCommunity(loc: Location): Promise<string | null> {
  try {
    const r = await fetch(new URL('/config.json', loc.href), { cache: 'no-store' });
    if (!r.ok) return null;
    const c = (await r.json()) as { home_community?: unknown };
    return typeof c.home_community === 'string' && joinTarget(`#join=${c.home_community}`)
      ? c.home_community
      : null;
  } catch (e) {
    console.info('hearthnet: no home community from the relay', e);
    return null;
  }
}

async function persistStorage(): Promise<boolean | null> {
  try {
    if (!navigator.storage?.persist) return null;
    return (await navigator.storage.persisted()) || (await navigator.storage.persist());
  } catch {
    return null;
  }
}

/** `#join=<communityId>` in the address, if any (the join link other nodes share). */
export function joinTarget(hash: string): string | null {
  const m = /^#join=(ed25519:[A-Za-z0-9_-]{43})$/.exec(hash);
  return m ? m[1]! : null;
}

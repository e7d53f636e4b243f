/**
 * Boot: claim a slot (Web Locks), open that slot's node (IndexedDB `hearthnet-<slot>`), ask for
 * persistent storage, expose the node as `window.hearthnet`. The engine is imported here,
 * dynamically, so the shell paints before the engine's code is parsed.
 */
import type { HearthNode, RelayPass } from '../../engine/index.js';
import { toDisplayError } from './errors.js';
import { meshError, startMesh } from './mesh.js';
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
    startMesh(node, loc, linkPass(engine, node, loc));
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

/**
 * `#join=<communityId>` in the address, if any (the join link other nodes share); an invite
 * community's link adds `&pass=<room pass>` (engine/net/relay-pass-link.ts) for the invited node.
 */
export function joinTarget(hash: string): string | null {
  const m = /^#join=(ed25519:[A-Za-z0-9_-]{43})(?:&pass=[^&]*)?$/.exec(hash);
  return m ? m[1]! : null;
}

/** The room pass a join link carries, still encoded (decoded by the engine after boot). */
export function joinPass(hash: string): string | null {
  const m = /^#join=ed25519:[A-Za-z0-9_-]{43}&pass=([^&]*)$/.exec(hash);
  return m ? m[1]! : null;
}

/** sessionStorage: the pass of an accepted join link, kept across the reload into its community. */
const PENDING_PASS = 'hearthnet.join_pass';

/** Keep a join link's pass for the node that starts in `community` after the reload. */
export function keepJoinPass(community: string, pass: string): void {
  sessionStorage.setItem(PENDING_PASS, JSON.stringify({ community, pass }));
}

/**
 * The room pass to join with: one from the address when it names this node's community, or one kept
 * by the join banner before the reload. The node stores it (its own `meta` store), so later starts
 * need no link. A malformed or foreign pass is reported (mesh error), the node joins without it.
 */
function linkPass(engine: Engine, node: HearthNode, loc: Location): RelayPass | undefined {
  let found: { community: string; pass: string } | null = null;
  const inHash = joinPass(loc.hash);
  if (inHash !== null && joinTarget(loc.hash) === node.communityId)
    found = { community: node.communityId, pass: inHash };
  try {
    const kept = sessionStorage.getItem(PENDING_PASS);
    sessionStorage.removeItem(PENDING_PASS);
    const k = kept ? (JSON.parse(kept) as { community?: unknown; pass?: unknown }) : null;
    if (!found && k && k.community === node.communityId && typeof k.pass === 'string')
      found = { community: node.communityId, pass: k.pass };
  } catch (e) {
    console.warn('hearthnet: no pending join pass', e);
  }
  if (!found) return undefined;
  try {
    const fragment = { community: found.community as HearthNode['id'], pass: found.pass };
    return engine.passForCommunity(fragment) ?? undefined;
  } catch (e) {
    meshError.set(toDisplayError(e));
    return undefined;
  }
}

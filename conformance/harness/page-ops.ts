/**
 * In-page harness ops of the `browsers:N` target (bundled by esbuild into one script and evaluated in
 * the SUT page, harness/targets/browser.ts): the `vector` dispatcher, and the `x08_token` mint / check
 * pair. The page exposes no engine functions, so these run the engine source of this checkout on the
 * page's JS engine, with the page node's own key (read from its `keys` store inside the page; it never
 * leaves the page) — the same functions the in-process target calls (harness/targets/engine.ts).
 */
import { keyPairFromSeed } from '../../engine/identity/identity.js';
import type { NodeID } from '../../engine/core/types.js';
import {
  checkSessionHello,
  mintSessionToken,
  SessionTokenRegistry,
  type SessionHelloFields,
} from '../../engine/tokens/session.js';

export { runVector } from './vector-ops.js';

/** this page's single-use bookkeeping (a reset reloads the page, which starts a fresh one) */
const registry = new SessionTokenRegistry();

/** the suite identity `local` counts as a member of the SUT's community for its session tokens */
const membership = (self: string, local: string) => (id: string) =>
  id === local || id === self ? ('member' as const) : null;

export interface PageNode {
  self: string;
  community: string;
}

/** `x08_token`: the page node mints a single-use session token (core §7.5) with its own key. */
export function mintX08Token(
  seed: Uint8Array,
  n: PageNode,
  o: { local: string; purpose: string; session_id: string },
): { token: string } {
  const kp = keyPairFromSeed(seed);
  if (kp.nodeId !== n.self) throw new Error("the stored key is not this node's");
  const t = mintSessionToken(kp, {
    caller: o.local as NodeID,
    communityId: n.community as NodeID,
    membership: membership(n.self, o.local),
    sessionId: o.session_id,
    purpose: o.purpose,
    registry,
  });
  return { token: t.token };
}

/** `x08_accept` with an `hntoken://` token: the engine's own session-token check (single use). */
export function checkX08Token(
  token: string,
  hello: SessionHelloFields,
  n: PageNode,
  local: string,
): { expiresAt: number } {
  const acc = checkSessionHello(token, hello, {
    self: n.self as NodeID,
    linkPeer: local as NodeID,
    linkKind: 'memory',
    communityId: n.community as NodeID,
    membership: membership(n.self, local),
    registry,
  });
  return { expiresAt: acc.expiresAt };
}

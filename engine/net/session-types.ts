/** Shared types of a PeerSession and its handshake, RPC and sync parts. */
import type { Bus } from '../bus/bus.js';
import type { ErrorCode } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import type { EventLog } from '../events/log.js';
import type { CommunityView } from '../identity/community.js';
import type { KeyPair } from '../identity/identity.js';
import type { Metrics } from '../observability/metrics.js';
import type { PeerBudget, PeerBudgetOptions } from './budget.js';
import type { ControlMessage } from './control.js';
import type { Logger } from '../observability/logger.js';

export type Transport = 'direct' | 'relay' | 'memory';

export interface LinkInfo {
  transport: Transport;
  /** the NodeID we expect on the other side, when known (roster, test wiring) */
  expectedPeer?: NodeID;
  /** SHA-256 DTLS fingerprints from the local/remote SDP (direct links only) */
  dtlsLocal?: string | null;
  dtlsRemote?: string | null;
}

export interface SessionDeps {
  keys: KeyPair;
  communityId: NodeID;
  community: CommunityView;
  bus: Bus;
  events: EventLog;
  metrics: Metrics;
  appVersion?: string;
  /** heartbeat interval; a peer silent for `missedHeartbeats` intervals is marked gone */
  heartbeatMs?: number;
  missedHeartbeats?: number;
  now?: () => number;
  /** M32 negotiation hook (protocol module) */
  protocol?: () => LinkProtocolHook | null;
  /** per-peer budgets (defaults: RATE_LIMIT_SOFT_RPS_TOTAL calls/s, 8 MiB/s, 1 sync/s) */
  budget?: PeerBudgetOptions;
  /** the link's log (Diagnostics); never given content */
  log?: Logger;
  /** inbound module link message (`mod.msg`), routed by the module host */
  onModuleMessage?: (peer: NodeID, type: unknown, payload: unknown) => void;
}

export type SessionState = 'handshaking' | 'open' | 'gone' | 'closed';

/**
 * M32 version negotiation on the link hello (additive): what this side offers, and the verdict on
 * the peer's offer. Without a hook (protocol module off) the hello carries no protocol fields and
 * nothing is negotiated; a peer hello without them is accepted with no agreed version.
 */
export interface LinkProtocolHook {
  offer(): { protocol_versions: string[]; descriptor?: Record<string, unknown> };
  onPeerHello(
    peer: NodeID,
    hello: { protocol_versions?: unknown; descriptor?: unknown },
  ): { ok: true; agreed: string | null } | { ok: false; code: ErrorCode; reason: string };
}

/** What the RPC and sync parts see of their session. */
export interface SessionCore {
  readonly d: SessionDeps;
  readonly peer: NodeID;
  readonly state: SessionState;
  readonly budget: PeerBudget;
  now(): number;
  /** send, swallowing a closed link (the close path reports it) */
  send(m: ControlMessage): Promise<void>;
  /** send, rejecting with the mux's error */
  sendStrict(m: ControlMessage): Promise<void>;
  assertOpen(): void;
  /** called once when the link closes; returns an unsubscribe */
  addCloseListener(cb: (reason: string) => void): () => void;
}

export const nowSec = (now: () => number) => Math.floor(now() / 1000);

/**
 * The handshake part of a PeerSession (core digest §5.3): our unsigned `link.hello`, the checks of
 * the peer's hello, our signed `link.auth`, and the checks of the peer's auth (nonces, skew, DTLS
 * or E2E channel binding, signature, membership). Pure decisions: the session applies them.
 */
import { CALL_SKEW_PAST_SECONDS, CONTRACT_VERSION } from '../core/constants.js';
import { b64url, randomBytes } from '../core/encoding.js';
import type { ErrorCode } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import { isNodeId, signObject, verifyObject } from '../identity/identity.js';
import { LINK_HELLO_MAX_BYTES, type Incoming, type LinkAuth, type LinkHello } from './control.js';
import { nowSec, type LinkInfo, type SessionDeps } from './session-types.js';

export type Verdict = { ok: true } | { ok: false; reason: string; code?: ErrorCode };
const no = (reason: string, code?: ErrorCode): Verdict =>
  code ? { ok: false, reason, code } : { ok: false, reason };
const OK: Verdict = { ok: true };

export class HandshakePart {
  readonly myNonce = b64url(randomBytes(32));
  peerHello?: Incoming;
  sentAuth = false;
  agreedVersion: string | null = null;

  constructor(
    private readonly info: LinkInfo,
    private readonly d: SessionDeps,
    private readonly now: () => number,
  ) {}

  hello(): LinkHello {
    const d = this.d;
    return {
      type: 'link.hello',
      v: 1,
      from: d.keys.nodeId,
      to: this.info.expectedPeer ?? null,
      community_id: d.communityId,
      nonce: this.myNonce,
      transport: this.info.transport,
      app_version: d.appVersion ?? '0.1.0',
      contract_version: CONTRACT_VERSION,
      ...(d.protocol?.()?.offer() ?? {}),
    };
  }

  /** Check the peer's hello; on success returns our signed auth to send. */
  onHello(m: Incoming, bytes: number): Verdict & { auth?: LinkAuth } {
    const d = this.d;
    if (this.peerHello) return no('second hello');
    if (bytes > LINK_HELLO_MAX_BYTES) return no('oversized hello');
    if (m.v !== 1 || !isNodeId(m.from) || typeof m.nonce !== 'string' || m.nonce.length !== 43)
      return no('malformed hello');
    if (m.community_id !== d.communityId) return no('other community');
    if (m.to !== null && m.to !== d.keys.nodeId) return no('hello addressed to another node');
    if (this.info.expectedPeer && m.from !== this.info.expectedPeer) return no('unexpected peer');
    if (m.from === d.keys.nodeId) return no('link to self');
    const hook = d.protocol?.();
    if (hook) {
      const verdict = hook.onPeerHello(m.from, m as { protocol_versions?: unknown; descriptor?: unknown });
      if (!verdict.ok) return no(verdict.reason, verdict.code);
      this.agreedVersion = verdict.agreed;
    }
    this.peerHello = m;
    this.sentAuth = true;
    const auth = signObject(d.keys, {
      type: 'link.auth',
      from: d.keys.nodeId,
      to: m.from,
      community_id: d.communityId,
      my_nonce: this.myNonce,
      peer_nonce: m.nonce,
      dtls_local: this.info.dtlsLocal ?? null,
      dtls_remote: this.info.dtlsRemote ?? null,
      ts: nowSec(this.now),
    }) as unknown as LinkAuth;
    return { ok: true, auth };
  }

  /** Check the peer's auth; on success the peer is `m.from`. */
  onAuth(m: Incoming): Verdict {
    const d = this.d;
    const info = this.info;
    const h = this.peerHello;
    if (!h || !this.sentAuth) return no('auth before hello');
    if (m.from !== h.from || m.to !== d.keys.nodeId) return no('auth names the wrong nodes');
    if (m.community_id !== d.communityId) return no('other community');
    if (m.peer_nonce !== this.myNonce || m.my_nonce !== h.nonce) return no('nonce mismatch');
    if (typeof m.ts !== 'number' || Math.abs(m.ts - nowSec(this.now)) > CALL_SKEW_PAST_SECONDS)
      return no('stale auth');
    if (info.transport === 'direct') {
      if (!info.dtlsLocal || !info.dtlsRemote) return no('no DTLS fingerprints on a direct link');
      if (m.dtls_local !== info.dtlsRemote || m.dtls_remote !== info.dtlsLocal)
        return no('DTLS fingerprint mismatch');
    } else if (info.transport === 'relay' && (info.dtlsLocal || info.dtlsRemote)) {
      // a relayed link carries the E2E channel binding where DTLS fingerprints go (mesh.ts):
      // when we know it, the peer must have signed the same one
      if (m.dtls_local !== info.dtlsRemote || m.dtls_remote !== info.dtlsLocal)
        return no('channel binding mismatch');
    }
    if (!verifyObject(m, m.from as NodeID)) return no('bad auth signature');
    const lvl = d.community.levelOf(m.from as NodeID);
    if (lvl === null) return no('not a member');
    if (lvl === 'revoked') return no('revoked');
    return OK;
  }
}

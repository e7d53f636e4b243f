/**
 * TOFU peer map (digest §7), keyed by sender_hash, persisted in the module's local store only.
 *   (none) --first frame--> unknown --verify(matching id)--> verified --verify(other id)--> conflict
 *   unknown --block--> blocked --unblock--> unknown;  conflict --verify{id ∈ candidates, force}--> verified
 *   any --forget--> deleted;  never heard --verify--> lora_peer_unknown
 */
import { HnError } from '../core/errors.js';
import { fromHex, toHex } from '../core/encoding.js';
import { isNodeId } from '../identity/identity.js';
import { senderHashOf } from './frame.js';
import type { LoraKv } from './duty_cycle.js';

export type PeerState = 'unknown' | 'verified' | 'conflict' | 'blocked';
export const PEERS_KEY = 'lora_peers';
const RSSI_RECENT = 8;

export interface LoraPeer {
  sender_hash: string;
  state: PeerState;
  node_id?: string;
  candidates: string[];
  device_id?: string;
  first_seen: number;
  last_seen: number;
  rssi_recent: number[];
  verified_tofu: boolean;
  beacons_seen: number;
  /** v2 beacon key (hex), set by the operator with verify; never leaves this node */
  beacon_key?: string;
}

export type VerifyAction = 'verify' | 'block' | 'unblock' | 'forget';

export interface VerifyInput {
  sender_hash: string;
  node_id?: string;
  action?: VerifyAction;
  force?: boolean;
  beacon_key?: string;
}

export interface VerifyOutcome {
  result: { sender_hash: string; node_id?: string; state: PeerState | 'forgotten'; at: number };
  /** events the caller emits */
  verified?: { sender_hash: string; node_id: string; previous_state: PeerState };
  conflict?: { sender_hash: string; candidates: string[] };
}

export class PeerMap {
  private peers = new Map<string, LoraPeer>();
  private constructor(private readonly kv: LoraKv) {}

  static async open(kv: LoraKv): Promise<PeerMap> {
    const pm = new PeerMap(kv);
    const raw = await kv.get<unknown>(PEERS_KEY);
    if (Array.isArray(raw))
      for (const p of raw as LoraPeer[])
        if (p && typeof p.sender_hash === 'string') pm.peers.set(p.sender_hash, p);
    return pm;
  }

  private async save(): Promise<void> {
    await this.kv.put(PEERS_KEY, [...this.peers.values()]);
  }

  get(hash: string): LoraPeer | undefined {
    return this.peers.get(hash);
  }

  list(state?: PeerState, limit = 1000): LoraPeer[] {
    return [...this.peers.values()]
      .filter((p) => !state || p.state === state)
      .sort((a, b) => b.last_seen - a.last_seen)
      .slice(0, limit)
      .map(({ beacon_key: _k, ...p }) => ({
        ...p,
        candidates: [...p.candidates],
        rssi_recent: [...p.rssi_recent],
      }));
  }

  isBlocked(hash: string): boolean {
    return this.peers.get(hash)?.state === 'blocked';
  }

  beaconKey(hash: string): Uint8Array | undefined {
    const k = this.peers.get(hash)?.beacon_key;
    return k ? fromHex(k) : undefined;
  }

  /** Record a valid frame; returns whether the hash is new. */
  async observe(
    hash: string,
    at: number,
    rssi: number | null,
    device_id?: string,
  ): Promise<{ isNew: boolean; peer: LoraPeer }> {
    let p = this.peers.get(hash);
    const isNew = !p;
    if (!p) {
      p = {
        sender_hash: hash,
        state: 'unknown',
        candidates: [],
        first_seen: at,
        last_seen: at,
        rssi_recent: [],
        verified_tofu: false,
        beacons_seen: 0,
      };
      this.peers.set(hash, p);
    }
    p.last_seen = Math.max(p.last_seen, at);
    p.beacons_seen++;
    if (device_id) p.device_id = device_id;
    if (rssi !== null) {
      p.rssi_recent.push(rssi);
      if (p.rssi_recent.length > RSSI_RECENT) p.rssi_recent.splice(0, p.rssi_recent.length - RSSI_RECENT);
    }
    await this.save();
    return { isNew, peer: p };
  }

  /** Resolve "8 hex" or a LoraDeviceID (`!xxxxxxxx` or `hn:<hash>`) to a known hash. */
  resolve(ref: string): string | undefined {
    if (/^[0-9a-f]{8}$/.test(ref)) return ref;
    if (ref.startsWith('hn:') && /^[0-9a-f]{8}$/.test(ref.slice(3))) return ref.slice(3);
    for (const p of this.peers.values()) if (p.device_id === ref) return p.sender_hash;
    return undefined;
  }

  async verify(input: VerifyInput, now: number, opts: { tofu?: boolean } = {}): Promise<VerifyOutcome> {
    const action = input.action ?? 'verify';
    if (!['verify', 'block', 'unblock', 'forget'].includes(action))
      throw new HnError('bad_request', 'unknown action');
    if (typeof input.sender_hash !== 'string') throw new HnError('bad_request', 'sender_hash required');
    const hash = this.resolve(input.sender_hash);
    const p = hash ? this.peers.get(hash) : undefined;
    if (!hash || !p)
      throw new HnError('lora_peer_unknown', `no beacon from ${input.sender_hash} has been heard`);
    const done = (extra: Partial<VerifyOutcome> = {}): VerifyOutcome => ({
      result: { sender_hash: hash, ...(p.node_id ? { node_id: p.node_id } : {}), state: p.state, at: now },
      ...extra,
    });
    switch (action) {
      case 'forget':
        this.peers.delete(hash);
        await this.save();
        return { result: { sender_hash: hash, state: 'forgotten', at: now } };
      case 'block':
        p.state = 'blocked';
        await this.save();
        return done();
      case 'unblock':
        if (p.state === 'blocked') {
          p.state = 'unknown';
          delete p.node_id;
          p.verified_tofu = false;
        }
        await this.save();
        return done();
    }
    // verify
    const id = input.node_id;
    if (!isNodeId(id)) throw new HnError('bad_request', 'node_id must be the full "ed25519:<b64url>" form');
    if (senderHashOf(id) !== hash)
      throw new HnError('bad_request', 'the NodeID does not hash to this sender_hash');
    let key: string | undefined;
    if (input.beacon_key !== undefined) {
      if (typeof input.beacon_key !== 'string' || !/^[0-9a-f]{64}$/.test(input.beacon_key))
        throw new HnError('bad_request', 'beacon_key must be 64 lower-case hex chars');
      key = input.beacon_key;
    }
    const previous = p.state;
    if (p.state === 'blocked') throw new HnError('bad_request', 'unblock the peer before verifying it');
    if (p.state === 'verified' && p.node_id === id) {
      if (key) {
        p.beacon_key = key;
        await this.save();
      }
      return done(); // idempotent
    }
    if (p.state === 'verified' && p.node_id !== id) {
      p.candidates = [...new Set([p.node_id!, id])];
      p.state = 'conflict';
      await this.save();
      const conflict = { sender_hash: hash, candidates: [...p.candidates] };
      throw Object.assign(
        new HnError('lora_peer_conflict', 'a different NodeID is already bound to this sender hash', {
          details: conflict,
        }),
        {
          outcome: { conflict },
        },
      );
    }
    if (p.state === 'conflict') {
      if (!input.force || !p.candidates.includes(id)) {
        if (!p.candidates.includes(id)) p.candidates.push(id);
        await this.save();
        const conflict = { sender_hash: hash, candidates: [...p.candidates] };
        throw Object.assign(
          new HnError('lora_peer_conflict', 'the binding is in conflict; pass force with a candidate', {
            details: conflict,
          }),
          {
            outcome: { conflict },
          },
        );
      }
    }
    p.state = 'verified';
    p.node_id = id;
    p.candidates = [];
    p.verified_tofu = !!opts.tofu;
    if (key) p.beacon_key = key;
    await this.save();
    return done({ verified: { sender_hash: hash, node_id: id, previous_state: previous } });
  }

  /** A `lora.peer.verified` gossiped by another operator: a different NodeID makes a conflict. */
  async remoteVerified(
    hash: string,
    nodeId: string,
  ): Promise<{ sender_hash: string; candidates: string[] } | null> {
    const p = this.peers.get(hash);
    if (!p || p.state !== 'verified' || !p.node_id || p.node_id === nodeId) return null;
    if (senderHashOf(nodeId) !== hash) return null;
    p.candidates = [p.node_id, nodeId];
    p.state = 'conflict';
    await this.save();
    return { sender_hash: hash, candidates: [...p.candidates] };
  }
}

export const hexKey = (k: Uint8Array): string => toHex(k);

/**
 * Receive pipeline (digest §5): bounded queue (drop oldest, coalesced `lora.rx.dropped`), frame
 * validation, self/blocked drop, per-sender sliding-minute rate limit, 30 s dedupe, TOFU lookup and
 * prompts, panic notification once per (hash, seq), the recent-beacons ring.
 * The sender's clock is never used for ordering or windows: everything runs on the local clock.
 */
import { LORA_PEER_RX_MAX_PER_MINUTE, LORA_RX_QUEUE_MAX } from '../core/constants.js';
import { HnError } from '../core/errors.js';
import type { Clock } from './clock.js';
import { beaconIdOf, decodeFrame, FLAG_PANIC, verifyAuthFrame, type DecodedFrame } from './frame.js';
import type { PeerMap, PeerState } from './peer_map.js';

export const RECENT_RING_MAX = 1024;
export const DEDUPE_WINDOW_MS = 30_000;
export const RATE_WINDOW_MS = 60_000;
export const DROPPED_EVENT_INTERVAL_MS = 60_000;
export const DROPPED_COALESCE_MS = 1_000;
export const PROMPTS_PER_HOUR = 10;

export interface LoraBeacon {
  beacon_id: string;
  sender_hash: string;
  sequence: number;
  flags: number;
  rssi: number | null;
  snr: number | null;
  timestamp: number;
  sender_clock: number;
  device_id?: string;
  peer_state: PeerState;
  node_id?: string;
  frame_version: 1 | 2;
  /** v2 frame whose tag verified under the sender's beacon key */
  authenticated: boolean;
}

export interface RxItem {
  payload: Uint8Array;
  rssi: number | null;
  snr: number | null;
  device_id?: string;
  at: number;
}

export type DropReason = 'queue' | 'rate_limited' | 'malformed' | 'blocked' | 'self';

export interface LoraNotification {
  kind: 'panic' | 'tofu_prompt' | 'tofu_summary' | 'override';
  title: string;
  body: string;
  requireInteraction: boolean;
  tag: string;
  data?: Record<string, unknown>;
}

export interface RxDeps {
  clock: Clock;
  selfHash: string;
  peers: PeerMap;
  emit(type: string, data: Record<string, unknown>): void;
  notify(n: LoraNotification): void;
  acceptAuth: () => boolean;
  queueMax?: number;
  perMinute?: number;
  /** tofu_auto_accept: NodeIDs of community members */
  autoAccept?: (hash: string) => string | undefined;
  onAutoVerified?: (hash: string, nodeId: string) => Promise<void>;
}

export class RxPipeline {
  private queue: RxItem[] = [];
  private paused = false;
  private pumping: Promise<void> | null = null;
  readonly dropped: Record<DropReason, number> = {
    queue: 0,
    rate_limited: 0,
    malformed: 0,
    blocked: 0,
    self: 0,
  };
  readonly malformedByReason: Record<string, number> = {};
  duplicates = 0;
  rxCount = 0;
  lastRxAt: number | null = null;
  private recent: LoraBeacon[] = [];
  private rate = new Map<string, number[]>();
  private seen = new Map<string, number>();
  private panicsSeen = new Map<string, number>();
  private prompted = new Set<string>();
  private promptTimes: number[] = [];
  private summaryAt = -Infinity;
  private pendingDrops = new Map<DropReason, number>();
  private lastDropEvent = new Map<DropReason, number>();
  private dropTimers = new Map<DropReason, unknown>();

  constructor(private readonly d: RxDeps) {}

  get depth(): number {
    return this.queue.length;
  }

  pause() {
    this.paused = true;
  }
  resume() {
    this.paused = false;
    void this.pump();
  }

  /** Everything currently queued has been processed. */
  async idle(): Promise<void> {
    while (this.pumping) await this.pumping;
  }

  push(item: RxItem) {
    this.queue.push(item);
    const max = this.d.queueMax ?? LORA_RX_QUEUE_MAX;
    if (this.queue.length > max) {
      const n = this.queue.length - max;
      this.queue.splice(0, n);
      this.drop('queue', n);
    }
    void this.pump();
  }

  /** a bad frame from the de-framer (before the queue) */
  malformed(reason: string) {
    this.malformedByReason[reason] = (this.malformedByReason[reason] ?? 0) + 1;
    this.drop('malformed', 1);
  }

  private drop(reason: DropReason, n: number) {
    this.dropped[reason] += n;
    if (reason === 'rate_limited') return; // silently: only the counter (digest §5 step 5)
    if (reason === 'self' || reason === 'blocked') return;
    this.pendingDrops.set(reason, (this.pendingDrops.get(reason) ?? 0) + n);
    if (this.dropTimers.has(reason)) return;
    const now = this.d.clock.now();
    const last = this.lastDropEvent.get(reason) ?? -Infinity;
    const at = Math.max(now + DROPPED_COALESCE_MS, last + DROPPED_EVENT_INTERVAL_MS);
    this.dropTimers.set(
      reason,
      this.d.clock.setTimeout(() => {
        this.dropTimers.delete(reason);
        const count = this.pendingDrops.get(reason) ?? 0;
        this.pendingDrops.delete(reason);
        if (!count) return;
        this.lastDropEvent.set(reason, this.d.clock.now());
        this.d.emit('lora.rx.dropped', {
          count,
          reason,
          ...(reason === 'malformed' ? { error_code: 'lora_frame_malformed' } : {}),
        });
      }, at - now),
    );
  }

  private pump(): Promise<void> {
    if (this.pumping) return this.pumping;
    if (this.paused || !this.queue.length) return Promise.resolve();
    const p = (async () => {
      while (!this.paused && this.queue.length) {
        const item = this.queue.shift()!;
        try {
          await this.process(item);
        } catch (e) {
          if (e instanceof HnError && e.code === 'lora_frame_malformed')
            this.malformed(String(e.details?.reason ?? 'frame'));
          else this.malformed('internal');
        }
      }
    })();
    this.pumping = p;
    void p.then(() => {
      if (this.pumping !== p) return;
      this.pumping = null;
      if (!this.paused && this.queue.length) void this.pump(); // pushed while the loop was finishing
    });
    return p;
  }

  private prune(now: number) {
    for (const [k, t] of this.seen) if (now - t > DEDUPE_WINDOW_MS) this.seen.delete(k);
    for (const [k, t] of this.panicsSeen) if (now - t > 3_600_000) this.panicsSeen.delete(k);
    if (this.rate.size > 4096)
      for (const [k, ts] of this.rate) if (!ts.some((t) => now - t < RATE_WINDOW_MS)) this.rate.delete(k);
  }

  private async process(item: RxItem): Promise<void> {
    const now = this.d.clock.now();
    this.prune(now);
    const f: DecodedFrame = decodeFrame(item.payload, { acceptAuth: this.d.acceptAuth() });
    const hash = f.sender_hash;
    if (hash === this.d.selfHash) return this.drop('self', 1);
    if (this.d.peers.isBlocked(hash)) return this.drop('blocked', 1);
    // per-sender sliding minute, local clock
    const times = (this.rate.get(hash) ?? []).filter((t) => now - t < RATE_WINDOW_MS);
    if (times.length >= (this.d.perMinute ?? LORA_PEER_RX_MAX_PER_MINUTE)) {
      this.rate.set(hash, times);
      return this.drop('rate_limited', 1);
    }
    times.push(now);
    this.rate.set(hash, times);
    let authenticated = false;
    if (f.version === 2) {
      const key = this.d.peers.beaconKey(hash);
      if (key) {
        if (!verifyAuthFrame(f, key))
          throw new HnError('lora_frame_malformed', 'beacon tag does not verify', {
            details: { reason: 'auth' },
          });
        authenticated = true;
      }
    }
    const dkey = `${hash}:${f.sequence}:${f.unix_seconds}`;
    if (this.seen.has(dkey)) {
      this.duplicates++;
      return;
    }
    this.seen.set(dkey, now);
    this.rxCount++;
    this.lastRxAt = now;
    const { isNew } = await this.d.peers.observe(hash, now, item.rssi, item.device_id);
    if (isNew) {
      const auto = this.d.autoAccept?.(hash);
      if (auto && this.d.onAutoVerified) await this.d.onAutoVerified(hash, auto);
    }
    let peer = this.d.peers.get(hash)!;
    if (isNew && peer.state === 'unknown' && !this.prompted.has(hash)) {
      this.prompted.add(hash);
      this.d.emit('lora.peer.unknown', {
        sender_hash: hash,
        first_seen: now,
        ...(item.device_id ? { device_id: item.device_id } : {}),
      });
      this.promptTimes = this.promptTimes.filter((t) => now - t < 3_600_000);
      if (this.promptTimes.length < PROMPTS_PER_HOUR) {
        this.promptTimes.push(now);
        this.d.notify({
          kind: 'tofu_prompt',
          title: 'New LoRa sender',
          body: `A radio sender ${hash} was heard. Verify who it is, or block it.`,
          requireInteraction: false,
          tag: `lora-tofu-${hash}`,
          data: { sender_hash: hash },
        });
      } else if (now - this.summaryAt >= 3_600_000) {
        this.summaryAt = now;
        this.d.notify({
          kind: 'tofu_summary',
          title: 'Many new LoRa senders',
          body: 'More new radio senders were heard; see the Radio view.',
          requireInteraction: false,
          tag: 'lora-tofu-summary',
        });
      }
    }
    peer = this.d.peers.get(hash)!;
    const beacon: LoraBeacon = {
      beacon_id: beaconIdOf(f),
      sender_hash: hash,
      sequence: f.sequence,
      flags: f.flags,
      rssi: item.rssi,
      snr: item.snr,
      timestamp: now,
      sender_clock: f.unix_seconds,
      ...(item.device_id ? { device_id: item.device_id } : {}),
      peer_state: peer.state,
      ...(peer.node_id && peer.state === 'verified' ? { node_id: peer.node_id } : {}),
      frame_version: f.version,
      authenticated,
    };
    if (f.flags & FLAG_PANIC) {
      const pkey = `${hash}:${f.sequence}`;
      if (!this.panicsSeen.has(pkey)) {
        this.panicsSeen.set(pkey, now);
        const verified = peer.state === 'verified';
        this.d.emit('lora.panic.received', {
          beacon_id: beacon.beacon_id,
          sender_hash: hash,
          sequence: f.sequence,
          peer_state: peer.state,
          verified,
          authenticated,
          rssi: item.rssi,
          snr: item.snr,
          timestamp: now,
          ...(beacon.node_id ? { node_id: beacon.node_id } : {}),
        });
        this.d.notify({
          kind: 'panic',
          title: verified ? 'PANIC from a verified neighbour' : 'PANIC from an unverified radio sender',
          body: `${verified ? beacon.node_id : `unverified sender ${hash}`} sent a panic beacon${authenticated ? ' (authenticated)' : ''}.`,
          requireInteraction: true,
          tag: `lora-panic-${hash}-${f.sequence}`,
          data: { sender_hash: hash, beacon_id: beacon.beacon_id, verified, authenticated },
        });
      }
    }
    this.recent.unshift(beacon);
    if (this.recent.length > RECENT_RING_MAX) this.recent.length = RECENT_RING_MAX;
    this.d.emit('lora.beacon.received', { ...beacon });
  }

  recentBeacons(q: {
    since?: number;
    sender_hash?: string;
    flags_any?: number;
    limit?: number;
  }): LoraBeacon[] {
    const limit = q.limit ?? 100;
    return this.recent
      .filter(
        (b) =>
          (q.since === undefined || b.timestamp >= q.since) &&
          (q.sender_hash === undefined || b.sender_hash === q.sender_hash) &&
          (q.flags_any === undefined || (b.flags & q.flags_any) !== 0),
      )
      .slice(0, limit)
      .map((b) => ({ ...b }));
  }

  /** restore the ring from storage (newest first) */
  restore(list: LoraBeacon[]) {
    this.recent = list.slice(0, RECENT_RING_MAX);
  }
  snapshot(): LoraBeacon[] {
    return this.recent;
  }

  dispose() {
    for (const t of this.dropTimers.values()) this.d.clock.clearTimeout(t);
    this.dropTimers.clear();
  }
}

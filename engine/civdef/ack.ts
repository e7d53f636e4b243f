/**
 * M31 acks (digest §3.3, §4.5): the signature covers `note_sha` instead of the note, so a gossip copy
 * can drop the note and still verify; a sliding 60 s window per (alert_id, acker).
 */
import { CIVDEF_ACK_MAX_PER_MINUTE_PER_NODE } from '../core/constants.js';
import { sha256Hex } from '../core/hash.js';
import type { NodeID } from '../core/types.js';
import { verifyObject } from '../identity/identity.js';
import type { Signer } from './role.js';

export const ACK_STATUSES = ['received', 'acting', 'need_help', 'standing_down', 'mistaken'] as const;
export type AckStatus = (typeof ACK_STATUSES)[number];

export interface Ack {
  alert_id: string;
  acker: NodeID;
  acked_at: string;
  status: AckStatus;
  /** present locally and for the publisher / role holders; omitted in role-restricted gossip */
  note?: string;
  note_sha: string;
  signature: string;
}

export function signAck(
  sign: Signer,
  f: { alert_id: string; acker: NodeID; acked_at: string; status: AckStatus; note: string },
): Ack {
  const { note, ...rest } = f;
  const s = sign({ ...rest, note_sha: sha256Hex(note) });
  return { ...s, note } as Ack;
}

/** Verify over the record with `note_sha` (the note itself, when present, must hash to it). */
export function verifyAck(a: Ack): boolean {
  const { note, ...rest } = a;
  if (note !== undefined && sha256Hex(note) !== a.note_sha) return false;
  try {
    return verifyObject(rest as never, a.acker);
  } catch {
    return false;
  }
}

/** Sliding-window limiter: at most `max` per `windowMs` per key. */
export class SlidingLimiter {
  private hits = new Map<string, number[]>();
  constructor(
    private readonly max: number = CIVDEF_ACK_MAX_PER_MINUTE_PER_NODE,
    private readonly windowMs = 60_000,
  ) {}
  /** true = allowed (and counted) */
  take(key: string, now: number): boolean {
    const arr = (this.hits.get(key) ?? []).filter((t) => t > now - this.windowMs);
    if (arr.length >= this.max) {
      this.hits.set(key, arr);
      return false;
    }
    arr.push(now);
    this.hits.set(key, arr);
    if (this.hits.size > 10_000) this.hits.delete(this.hits.keys().next().value!);
    return true;
  }
}

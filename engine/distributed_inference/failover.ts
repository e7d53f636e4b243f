/**
 * M26 failure detection (digest B6): activation sanity on every returned tensor, the shard-failure type the run
 * loop reacts to, and the suspect list (a host whose activations failed the checks is avoided for 10 min).
 */
import type { Tensor } from '../core/types.js';
import type { CutStat } from '../llm/manifest.js';
import { toFloat32 } from '../transport/tensor/dtype.js';
import { SUSPECT_S } from './types.js';
import { nonFinite, rmsPerPosition } from './wire.js';

export type FailureReason =
  | 'closed'
  | 'nack'
  | 'timeout'
  | 'heartbeat'
  | 'connect_failed'
  | 'link_down'
  | 'sanity:nan'
  | 'sanity:inf'
  | 'sanity:norm'
  | 'sanity:shape';

/** A shard stopped serving this run: the loop fails over. */
export class ShardFailure extends Error {
  constructor(
    readonly index: number,
    readonly shard_id: string,
    readonly host: string,
    readonly reason: FailureReason,
  ) {
    super(`shard ${index} failed: ${reason}`);
  }
}

export interface SanityInput {
  sent: Tensor;
  sentValues: Float32Array;
  got: Tensor;
  hidden: number;
  /** cut boundary the output sits at (hi + 1). */
  boundary: number;
  cutStats: CutStat[];
}

/**
 * B6 activation sanity: dtype and shape exactly [1,S,E] as sent; all finite; per-position RMS in
 * [rms_p01/4, 4·rms_p99] of the manifest's cut stats (else (1e−6, 1e4]); output/input RMS ratio in [1/64, 64].
 * Returns the failure kind or null, plus the output as fp32 values when it passed.
 */
export function checkActivation(
  a: SanityInput,
): { ok: false; reason: 'nan' | 'inf' | 'norm' | 'shape' } | { ok: true; values: Float32Array } {
  const { sent, got, hidden: E } = a;
  const S = sent.shape[1]!;
  if (
    got.dtype !== sent.dtype ||
    got.shape.length !== 3 ||
    got.shape[0] !== 1 ||
    got.shape[1] !== S ||
    got.shape[2] !== E ||
    got.data.length !== S * E * (got.dtype === 'fp16' ? 2 : 4)
  )
    return { ok: false, reason: 'shape' };
  const nf = nonFinite(got);
  if (nf) return { ok: false, reason: nf };
  const values = toFloat32(got);
  const stat = a.cutStats.find((c) => c.boundary === a.boundary);
  const lo = stat?.rms_p01 !== undefined ? stat.rms_p01 / 4 : 1e-6;
  const hi = stat?.rms_p99 !== undefined ? stat.rms_p99 * 4 : 1e4;
  const rOut = rmsPerPosition(values, S, E);
  const rIn = rmsPerPosition(a.sentValues, S, E);
  for (let s = 0; s < S; s++) {
    const r = rOut[s]!;
    if (!(r > lo && r <= hi)) return { ok: false, reason: 'norm' };
    const ratio = rIn[s]! > 0 ? r / rIn[s]! : 1;
    if (!(ratio >= 1 / 64 && ratio <= 64)) return { ok: false, reason: 'norm' };
  }
  return { ok: true, values };
}

/** Hosts whose activations failed the checks on this node, with the time they stop being suspect. */
export class SuspectList {
  private readonly until = new Map<string, number>();
  constructor(private readonly now: () => number = Date.now) {}
  mark(host: string): void {
    this.until.set(host, this.now() + SUSPECT_S * 1000);
  }
  has(host: string): boolean {
    const t = this.until.get(host);
    if (t === undefined) return false;
    if (t <= this.now()) {
      this.until.delete(host);
      return false;
    }
    return true;
  }
}

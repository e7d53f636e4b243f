/**
 * M26 orchestrator data path (digest B5): the star pipeline over one X08 session per shard (embed → shard 0 →
 * shard 1 … → tail), with activation sanity checks on every returned tensor and a per-hop timeout; plus the
 * incremental detokeniser that streams text. Activations are never logged.
 */
import { HnError } from '../core/errors.js';
import type { Tensor } from '../core/types.js';
import type { TensorSession } from '../transport/tensor/session.js';
import { checkActivation, ShardFailure, type FailureReason } from './failover.js';
import type { OrchestratorModel, OrderedShard } from './types.js';
import { toFloat32 } from '../transport/tensor/dtype.js';
import { toWire, type WireDtype } from './wire.js';

export const p95 = (xs: number[]): number => {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor(s.length * 0.95))]! * 100) / 100;
};

export interface Backend {
  /** Appends ids (chunked); returns the logits of the last one. */
  feed(ids: number[], chunk: number): Promise<Float32Array>;
  close(reason: string): void;
}

/** The star pipeline over X08 sessions (one per shard). */
export class RemotePipeline implements Backend {
  private ids: number[];
  private aborted: string | null = null;
  /** B4/B6 health in a run: when each session last answered (tensor or PONG) */
  private lastActive: number[];
  private busy = false;
  private broken: ShardFailure | null = null;
  private stopBeat: (() => void) | null = null;
  private readonly hop: HopTimer;
  constructor(
    private readonly model: OrchestratorModel,
    readonly shards: OrderedShard[],
    readonly sessions: TensorSession[],
    private readonly wire: WireDtype,
    private readonly timeoutMs: number,
    private readonly onHop: (i: number, ms: number) => void,
    private readonly now: () => number,
  ) {
    this.ids = sessions.map(() => 0);
    this.lastActive = sessions.map(() => now());
    this.hop = new HopTimer();
  }

  /**
   * PING every session idle for `everyMs` (the consumer may pause the stream between tokens); no PONG within the
   * hop timeout marks that shard failed (`heartbeat`, or `closed` when the session is gone): `onBroken` reports
   * it at once and the next forward throws it, so the run fails over before sending anything.
   */
  startHeartbeat(everyMs: number, onBroken: (f: ShardFailure) => void): void {
    const t = setInterval(() => {
      const now = this.now();
      this.sessions.forEach((s, i) => {
        if (this.busy || this.broken || this.aborted || now - this.lastActive[i]! < everyMs) return;
        const shard = this.shards[i]!;
        withTimeout(s.ping(), this.timeoutMs).then(
          () => (this.lastActive[i] = this.now()),
          (e: unknown) => {
            if (this.broken || this.aborted || this.busy) return;
            this.broken = new ShardFailure(
              i,
              shard.shard_id,
              shard.host,
              e === TIMEOUT ? 'heartbeat' : 'closed',
            );
            onBroken(this.broken);
          },
        );
      });
    }, everyMs);
    this.stopBeat = () => clearInterval(t);
  }

  async feed(ids: number[], chunk: number): Promise<Float32Array> {
    if (this.broken) throw this.broken;
    this.busy = true;
    try {
      let logits: Float32Array | undefined;
      for (let i = 0; i < ids.length; i += chunk) logits = await this.forward(ids.slice(i, i + chunk));
      return logits!;
    } finally {
      this.busy = false;
    }
  }

  private async forward(ids: number[]): Promise<Float32Array> {
    const h = await this.model.embed(ids);
    let t: Tensor = toWire(h, this.wire);
    // what this hop sends, as values (for the RMS ratio check): the wire tensor decoded once here; every later hop
    // sends on exactly the tensor the previous one returned, whose values its own check already decoded
    let values: Float32Array = toFloat32(t);
    const hopMs: number[] = [];
    try {
      for (let i = 0; i < this.sessions.length; i++) {
        const shard = this.shards[i]!;
        const s = this.sessions[i]!;
        const fail = (r: FailureReason) => new ShardFailure(i, shard.shard_id, shard.host, r);
        const id = (this.ids[i] = (this.ids[i]! % 0xffff) + 1);
        const t0 = this.now();
        let got;
        try {
          await s.sendTensor(id, t);
          got = await this.hop.within(s.recvTensor(), this.timeoutMs);
        } catch (e) {
          if (this.aborted) throw new HnError('pipeline_cancelled', 'the run was cancelled');
          if (e === TIMEOUT) throw fail('timeout');
          throw fail(s.closeInfo?.by === 'remote' && s.closeInfo.reason === 'nack' ? 'nack' : 'closed');
        }
        if (got.tensorId !== id) throw fail('sanity:shape');
        const chk = checkActivation({
          sent: t,
          sentValues: values,
          got: got.tensor,
          hidden: this.model.hidden_size,
          boundary: shard.layer_range[1] + 1,
          cutStats: this.model.cut_stats,
        });
        if (!chk.ok) throw fail(`sanity:${chk.reason}`);
        const now = this.now();
        hopMs[i] = now - t0;
        this.lastActive[i] = now;
        t = got.tensor;
        values = chk.values;
      }
    } finally {
      // hop latencies are reported once the activation is past the last shard (or the run failed), not between hops
      for (let i = 0; i < hopMs.length; i++) this.onHop(i, hopMs[i]!);
    }
    const S = t.shape[1]!;
    return this.model.logits({ dtype: 'float32', dims: [1, S, this.model.hidden_size], data: values });
  }

  close(reason: string): void {
    this.stopBeat?.();
    this.stopBeat = null;
    this.hop.stop();
    if (reason === 'cancelled') this.aborted = reason;
    for (const s of this.sessions) s.close(reason);
  }
}

export const TIMEOUT = Symbol('timeout');

/**
 * The per-hop timeout without a timer per hop: one timer per pipeline, armed when a wait starts and none is armed;
 * when it fires it rejects the wait that is over its deadline, or re-arms for the one still running. A hop of a few
 * ms thus costs no setTimeout/clearTimeout pair (and no Promise.race) on the decode path.
 */
export class HopTimer {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private wait: { deadline: number; reject: (e: unknown) => void } | null = null;
  private readonly now = () => Date.now();

  within<T>(p: Promise<T>, ms: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const w = { deadline: this.now() + ms, reject };
      this.wait = w;
      const done = () => {
        if (this.wait === w) this.wait = null;
      };
      p.then(
        (v) => {
          done();
          resolve(v);
        },
        (e: unknown) => {
          done();
          reject(e);
        },
      );
      this.arm(ms);
    });
  }

  private arm(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const w = this.wait;
      if (!w) return;
      const left = w.deadline - this.now();
      if (left > 0) return this.arm(left);
      this.wait = null;
      w.reject(TIMEOUT);
    }, ms);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    p,
    new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(TIMEOUT), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Incremental detokenisation with UTF-8 hold-back and stop strings (same rule as engine/llm/generate). */
export class TextStream {
  private emitted = 0;
  constructor(
    private readonly decode: (ids: number[]) => string,
    private readonly stops: string[],
  ) {}
  push(ids: number[]): { text: string; hit: boolean } {
    const full = this.decode(ids);
    let safe = full.endsWith('\uFFFD') ? full.length - 1 : full.length;
    let hit = -1;
    for (const s of this.stops) {
      const at = full.indexOf(s, Math.max(0, this.emitted - s.length + 1));
      if (at >= 0 && (hit < 0 || at < hit)) hit = at;
    }
    if (hit >= 0) safe = hit;
    else
      for (const s of this.stops)
        for (let k = Math.min(s.length - 1, full.length); k > 0; k--)
          if (full.endsWith(s.slice(0, k))) {
            safe = Math.min(safe, full.length - k);
            break;
          }
    const text = safe > this.emitted ? full.slice(this.emitted, safe) : '';
    this.emitted = Math.max(this.emitted, safe);
    return { text, hit: hit >= 0 };
  }
}

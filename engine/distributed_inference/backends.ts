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
    let values: Float32Array = new Float32Array(0);
    for (let i = 0; i < this.sessions.length; i++) {
      const shard = this.shards[i]!;
      const s = this.sessions[i]!;
      const fail = (r: FailureReason) => new ShardFailure(i, shard.shard_id, shard.host, r);
      const id = (this.ids[i] = (this.ids[i]! % 0xffff) + 1);
      const t0 = this.now();
      const sentValues = new Float32Array(t.data.length ? toValues(t) : []);
      let got;
      try {
        await s.sendTensor(id, t);
        got = await withTimeout(s.recvTensor(), this.timeoutMs);
      } catch (e) {
        if (this.aborted) throw new HnError('pipeline_cancelled', 'the run was cancelled');
        if (e === TIMEOUT) throw fail('timeout');
        throw fail(s.closeInfo?.by === 'remote' && s.closeInfo.reason === 'nack' ? 'nack' : 'closed');
      }
      if (got.tensorId !== id) throw fail('sanity:shape');
      const chk = checkActivation({
        sent: t,
        sentValues,
        got: got.tensor,
        hidden: this.model.hidden_size,
        boundary: shard.layer_range[1] + 1,
        cutStats: this.model.cut_stats,
      });
      if (!chk.ok) throw fail(`sanity:${chk.reason}`);
      this.onHop(i, this.now() - t0);
      this.lastActive[i] = this.now();
      t = got.tensor;
      values = chk.values;
    }
    const S = t.shape[1]!;
    return this.model.logits({ dtype: 'float32', dims: [1, S, this.model.hidden_size], data: values });
  }

  close(reason: string): void {
    this.stopBeat?.();
    this.stopBeat = null;
    if (reason === 'cancelled') this.aborted = reason;
    for (const s of this.sessions) s.close(reason);
  }
}

function toValues(t: Tensor): Float32Array {
  // the orchestrator's own outgoing tensor: fp32 bytes or fp16 bits → values (for the RMS ratio check)
  if (t.dtype === 'fp32') return new Float32Array(t.data.slice().buffer);
  const out = new Float32Array(t.data.length / 2);
  for (let i = 0; i < out.length; i++) {
    const h = t.data[2 * i]! | (t.data[2 * i + 1]! << 8);
    const e = (h >> 10) & 0x1f;
    const f = h & 0x3ff;
    const v = e === 0 ? 2 ** -14 * (f / 1024) : 2 ** (e - 15) * (1 + f / 1024);
    out[i] = h & 0x8000 ? -v : v;
  }
  return out;
}

const TIMEOUT = Symbol('timeout');
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

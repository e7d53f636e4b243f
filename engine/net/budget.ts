/**
 * Per-peer budgets of a link (issue #18): calls, bytes and sync requests, each a token bucket,
 * checked before any expensive work (signature verification, storage reads) so a hostile peer
 * pays for its own flood. A refused unit gets `rate_limited` with `retry_after_ms`.
 */
import { RATE_LIMIT_HARD_RPS_TOTAL, RATE_LIMIT_SOFT_RPS_TOTAL } from '../core/constants.js';

export class TokenBucket {
  private tokens: number;
  private at: number;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    private readonly now: () => number,
  ) {
    this.tokens = burst;
    this.at = now();
  }

  private refill() {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.at) / 1000) * this.ratePerSecond);
    this.at = t;
  }

  /** Take `n` tokens: 0 when taken, else the ms until they would be there (nothing taken). */
  take(n = 1): number {
    this.refill();
    if (this.tokens >= n) {
      this.tokens -= n;
      return 0;
    }
    return Math.max(1, Math.ceil(((Math.min(n, this.burst) - this.tokens) / this.ratePerSecond) * 1000));
  }
}

export interface PeerBudgetOptions {
  /** signed calls per second from one peer, all capabilities together (soft: answered rate_limited) */
  callsPerSecond?: number;
  /** bytes of control messages per second from one peer (burst: two full 1 MiB messages) */
  bytesPerSecond?: number;
  /** sync.heads requests per second from one peer */
  syncPerSecond?: number;
}

export const PEER_BYTES_PER_SECOND = 8 * 1024 * 1024;
export const PEER_SYNC_PER_SECOND = 1;
/** Bytes of events one sync.heads request may cause us to send (the rest waits for the next round). */
export const SYNC_REPLY_MAX_BYTES = 4 * 1024 * 1024;
/** Tasks (sync requests, pushed batches) waiting for one link's ordered event queue. */
export const SESSION_QUEUE_MAX = 64;
/** Frames a stream's receiver holds before it must have consumed some (window plus slack). */
export const STREAM_RECEIVE_QUEUE_MAX = 64;

/** The budgets of one link's peer. */
export class PeerBudget {
  readonly calls: TokenBucket;
  /** beyond this rate even the rate_limited answers stop being individually computed */
  readonly callsHard: TokenBucket;
  readonly bytes: TokenBucket;
  readonly sync: TokenBucket;

  constructor(now: () => number, o: PeerBudgetOptions = {}) {
    const cps = o.callsPerSecond ?? RATE_LIMIT_SOFT_RPS_TOTAL;
    this.calls = new TokenBucket(cps, cps, now);
    this.callsHard = new TokenBucket(RATE_LIMIT_HARD_RPS_TOTAL, RATE_LIMIT_HARD_RPS_TOTAL, now);
    const bps = o.bytesPerSecond ?? PEER_BYTES_PER_SECOND;
    this.bytes = new TokenBucket(bps, Math.max(bps, 2 * 1024 * 1024), now);
    const sps = o.syncPerSecond ?? PEER_SYNC_PER_SECOND;
    this.sync = new TokenBucket(sps, Math.max(2, sps * 2), now);
  }
}

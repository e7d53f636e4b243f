/**
 * X08 credit-window flow control (digest A3 "Flow control").
 *
 * Sequence numbers here are *logical* (1, 2, 3, … without the u32 wrap); the session converts to and from
 * wire values. Only TENSOR_DATA and TENSOR_END count against the window; ACK consumes no sequence number
 * and carries the highest contiguous seq received (cumulative).
 *
 * Sender: in_flight = data frames with seq > last ACK; it may send while in_flight < W + credits, where
 * `credits_added` of a FLOWCTL are extra slots until the next ACK. No timer ever unblocks a sender.
 *
 * Receiver check (`RecvWindow`): the sender's state is always the state the receiver had after sending some
 * prefix of its own ACK/FLOWCTL frames (one ordered channel each way). The receiver keeps the limits of its
 * recent such states ("epochs") and accepts a data frame iff it is legal in at least one of them. That is the
 * digest's `max(old W, new W) + granted credits` rule made exact, without false `window_overrun` when ACKs and
 * FLOWCTLs are still in flight.
 */
import { HnError } from '../../core/errors.js';
import { MAX_FLOW_WINDOW, SEQ_MAX } from './frame.js';

/** Wire seq of a logical seq (u32, 1..2^32−1, wraps to 1). */
export const wireSeq = (logical: number): number => (logical <= 0 ? 0 : ((logical - 1) % SEQ_MAX) + 1);

/** Logical value of a wire seq that must lie in [base, max]: the smallest such logical ≥ base. */
export function logicalFromWire(wire: number, base: number, max: number): number | null {
  if (wire < 1 || wire > SEQ_MAX) return null;
  if (base < 1) base = 1;
  const diff = (wire - wireSeq(base) + SEQ_MAX) % SEQ_MAX;
  const l = base + diff;
  return l <= max ? l : null;
}

/** Sorted list of logical seqs with cheap "how many > x" and prefix dropping. */
class SeqList {
  private a: number[] = [];
  private head = 0;
  push(s: number): void {
    this.a.push(s);
  }
  get length(): number {
    return this.a.length - this.head;
  }
  /** Number of entries > x. */
  countAbove(x: number): number {
    let lo = this.head;
    let hi = this.a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.a[mid]! <= x) lo = mid + 1;
      else hi = mid;
    }
    return this.a.length - lo;
  }
  /** Drop entries ≤ x. */
  dropUpTo(x: number): void {
    while (this.head < this.a.length && this.a[this.head]! <= x) this.head++;
    if (this.head > 1024 && this.head * 2 > this.a.length) {
      this.a = this.a.slice(this.head);
      this.head = 0;
    }
  }
  clear(): void {
    this.a = [];
    this.head = 0;
  }
}

const checkWindow = (w: number): number => {
  if (!Number.isInteger(w) || w < 1 || w > MAX_FLOW_WINDOW)
    throw new HnError('bad_request', 'window must be 1..64');
  return w;
};

export class SendWindow {
  private w: number;
  private creditsLeft = 0;
  private ackedLogical = 0;
  private readonly inflight = new SeqList();
  private waiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private drainWaiters: { upTo: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private failure: unknown = null;
  private lastDataLogical = 0;

  constructor(window: number) {
    this.w = checkWindow(window);
  }

  get window(): number {
    return this.w;
  }
  get credits(): number {
    return this.creditsLeft;
  }
  get acked(): number {
    return this.ackedLogical;
  }
  get inFlight(): number {
    return this.inflight.length;
  }
  canSend(): boolean {
    return this.failure === null && this.inflight.length < this.w + this.creditsLeft;
  }

  /** Resolves when one more data frame may be sent; rejects once the window failed (session closed). */
  waitForSlot(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.canSend()) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Resolves when every data frame sent so far is acknowledged. */
  waitAllAcked(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.ackedLogical >= this.lastDataLogical) return Promise.resolve();
    return new Promise((resolve, reject) =>
      this.drainWaiters.push({ upTo: this.lastDataLogical, resolve, reject }),
    );
  }

  onDataSent(logical: number): void {
    this.inflight.push(logical);
    this.lastDataLogical = logical;
  }

  /** Cumulative ACK up to `logical` (already validated ≥ previous and ≤ last sent). */
  onAck(logical: number): void {
    if (logical > this.ackedLogical) this.ackedLogical = logical;
    this.inflight.dropUpTo(logical);
    this.creditsLeft = 0; // credits last "until the next ACK"
    this.wake();
  }

  onFlowCtl(window: number, creditsAdded: number): void {
    this.w = checkWindow(window);
    this.creditsLeft += creditsAdded;
    this.wake();
  }

  fail(err: unknown): void {
    if (this.failure !== null) return;
    this.failure = err;
    for (const w of this.waiters.splice(0)) w.reject(err);
    for (const w of this.drainWaiters.splice(0)) w.reject(err);
  }

  private wake(): void {
    while (this.waiters.length && this.canSend()) this.waiters.shift()!.resolve();
    const still: typeof this.drainWaiters = [];
    for (const d of this.drainWaiters) {
      if (this.ackedLogical >= d.upTo) d.resolve();
      else still.push(d);
    }
    this.drainWaiters = still;
  }
}

interface Epoch {
  ack: number;
  limit: number;
}

/** How many past receiver states are kept exactly; older ones fold into one conservative floor. */
const EPOCHS_KEPT = 16;

export class RecvWindow {
  private w: number;
  private creditsSinceAck = 0;
  private lastAck = 0;
  private epochs: Epoch[];
  private floorLimit = 0;
  private readonly data = new SeqList();

  constructor(window: number) {
    this.w = checkWindow(window);
    this.epochs = [{ ack: 0, limit: this.w }];
  }

  get window(): number {
    return this.w;
  }
  get lastAckSent(): number {
    return this.lastAck;
  }
  /** Data frames received after the last ACK this side sent. */
  get unacked(): number {
    return this.data.countAbove(this.lastAck);
  }

  /** Record a received data frame; false = the sender overran every window it could have had (`window_overrun`). */
  onData(logical: number): boolean {
    this.data.push(logical);
    for (const e of this.epochs) if (this.data.countAbove(e.ack) <= e.limit) return true;
    // floor: every dropped epoch had ack ≤ the oldest kept one, so counting from there is conservative
    return this.floorLimit > 0 && this.data.countAbove(this.epochs[0]!.ack) <= this.floorLimit;
  }

  noteAckSent(logical: number): void {
    this.lastAck = Math.max(this.lastAck, logical);
    this.creditsSinceAck = 0;
    this.push({ ack: this.lastAck, limit: this.w });
  }

  noteFlowCtlSent(window: number, creditsAdded: number): void {
    this.w = checkWindow(window);
    this.creditsSinceAck += creditsAdded;
    this.push({ ack: this.lastAck, limit: this.w + this.creditsSinceAck });
  }

  private push(e: Epoch): void {
    this.epochs.push(e);
    while (this.epochs.length > EPOCHS_KEPT) {
      const dropped = this.epochs.shift()!;
      this.floorLimit = Math.max(this.floorLimit, dropped.limit);
    }
    this.data.dropUpTo(this.epochs[0]!.ack);
  }

  clear(): void {
    this.data.clear();
  }
}

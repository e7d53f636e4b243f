/** X08 flow-control units: sender window and credits, receiver overrun check, u32 sequence wrap. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RecvWindow, SendWindow, logicalFromWire, wireSeq } from '../../engine/transport/tensor/flow.js';
import { SEQ_MAX, nextSeq } from '../../engine/transport/tensor/frame.js';

describe('sequence numbers', () => {
  it('start at 1 and wrap 2^32−1 → 1', () => {
    expect(wireSeq(1)).toBe(1);
    expect(wireSeq(SEQ_MAX)).toBe(SEQ_MAX);
    expect(wireSeq(SEQ_MAX + 1)).toBe(1);
    expect(nextSeq(SEQ_MAX)).toBe(1);
    expect(nextSeq(7)).toBe(8);
    expect(logicalFromWire(3, SEQ_MAX - 2, SEQ_MAX + 10)).toBe(SEQ_MAX + 3);
    expect(logicalFromWire(5, 1, 4)).toBeNull(); // never sent
    expect(logicalFromWire(0, 1, 4)).toBeNull();
  });
  it('logicalFromWire inverts wireSeq inside the window (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 40 }), fc.integer({ min: 0, max: 1000 }), (base, d) => {
        expect(logicalFromWire(wireSeq(base + d), base, base + 1000)).toBe(base + d);
      }),
    );
  });
});

describe('SendWindow', () => {
  it('blocks at W, resumes on ACK; credits last until the next ACK', async () => {
    const w = new SendWindow(2);
    w.onDataSent(1);
    w.onDataSent(2);
    expect(w.canSend()).toBe(false);
    let released = false;
    const p = w.waitForSlot().then(() => (released = true));
    await Promise.resolve();
    expect(released).toBe(false);
    w.onAck(1);
    await p;
    expect(released).toBe(true);
    w.onDataSent(3);
    w.onFlowCtl(2, 2);
    expect(w.canSend()).toBe(true);
    w.onDataSent(4);
    w.onDataSent(5);
    expect(w.canSend()).toBe(false);
    w.onAck(3); // credits reset: in flight 4,5 = W
    expect(w.inFlight).toBe(2);
    expect(w.canSend()).toBe(false);
    w.fail(new Error('closed'));
    await expect(w.waitForSlot()).rejects.toThrow('closed');
  });
});

describe('RecvWindow', () => {
  it('flags the W+1-th unacknowledged data frame', () => {
    const r = new RecvWindow(3);
    expect([1, 2, 3].map((s) => r.onData(s))).toEqual([true, true, true]);
    expect(r.onData(4)).toBe(false);
  });

  it('never flags an honest sender, whatever the ACK/FLOWCTL timing (property)', () => {
    // simulate a sender and receiver with independent delivery delays of control frames
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(
          fc.oneof(
            fc.constant('send'),
            fc.constant('ack'),
            fc.constant('grow'),
            fc.constant('credit'),
            fc.constant('deliver'),
          ),
          { maxLength: 120 },
        ),
        (w0, ops) => {
          const s = new SendWindow(w0);
          const r = new RecvWindow(w0);
          const toSender: (() => void)[] = []; // in-flight control frames, in order
          let seq = 0;
          let received = 0;
          const pendingData: number[] = [];
          for (const op of ops) {
            if (op === 'send' && s.canSend()) {
              seq++;
              s.onDataSent(seq);
              pendingData.push(seq);
            } else if (op === 'deliver' && pendingData.length) {
              const q = pendingData.shift()!;
              received = q;
              expect(r.onData(q)).toBe(true);
            } else if (op === 'ack' && received > r.lastAckSent) {
              const upTo = received;
              r.noteAckSent(upTo);
              toSender.push(() => s.onAck(upTo));
            } else if (op === 'grow' && r.window < 64) {
              const nw = r.window + 1;
              r.noteFlowCtlSent(nw, 0);
              toSender.push(() => s.onFlowCtl(nw, 0));
            } else if (op === 'credit') {
              r.noteFlowCtlSent(r.window, 2);
              const nw = r.window;
              toSender.push(() => s.onFlowCtl(nw, 2));
            }
            if (toSender.length && (op === 'deliver' || op === 'send')) toSender.shift()!();
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

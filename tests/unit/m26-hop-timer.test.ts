/**
 * M26 per-hop timeout (backends.ts HopTimer): one timer per pipeline instead of a setTimeout/clearTimeout pair per
 * hop — a wait past its deadline is rejected with TIMEOUT, a fast one is not, and a timer armed by an earlier hop
 * re-arms for the remaining time of the current one.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HopTimer, TIMEOUT } from '../../engine/distributed_inference/backends.js';

const later = <T>(ms: number, v: T) => new Promise<T>((r) => setTimeout(() => r(v), ms));

describe('HopTimer', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('passes a value or an error through; many fast hops leave at most one timer', async () => {
    const h = new HopTimer();
    for (let i = 0; i < 50; i++) {
      const p = h.within(later(2, i), 1000);
      await vi.advanceTimersByTimeAsync(2);
      await expect(p).resolves.toBe(i);
    }
    expect(vi.getTimerCount()).toBe(1);
    const boom = new Error('closed');
    await expect(h.within(Promise.reject(boom), 1000)).rejects.toBe(boom);
    h.stop();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a wait past its deadline is rejected with TIMEOUT, at its own deadline after an earlier hop armed the timer', async () => {
    const h = new HopTimer();
    const first = h.within(later(1, 'a'), 1000); // arms the timer for t = 1000
    await vi.advanceTimersByTimeAsync(1);
    await expect(first).resolves.toBe('a');
    await vi.advanceTimersByTimeAsync(599); // t = 600
    let outcome: unknown = 'pending';
    const never = new Promise<never>(() => undefined);
    h.within(never, 1000).then(
      () => (outcome = 'resolved'),
      (e: unknown) => (outcome = e),
    ); // deadline t = 1600
    await vi.advanceTimersByTimeAsync(999); // t = 1599: the t = 1000 firing re-armed for the rest
    expect(outcome).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(outcome).toBe(TIMEOUT);
    h.stop();
  });

  it('no wait in progress: the timer fires once and is not re-armed', async () => {
    const h = new HopTimer();
    await expect(h.within(Promise.resolve(1), 500)).resolves.toBe(1);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(500);
    expect(vi.getTimerCount()).toBe(0);
  });
});

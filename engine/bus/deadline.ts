/** Call deadlines and helpers of the bus's dispatch. */
import { RPC_DEFAULT_TIMEOUT_SECONDS } from '../core/constants.js';
import { HnError } from '../core/errors.js';
import type { Origin } from './bus.js';
import type { CapabilityDescriptor, StreamFrame } from './types.js';

/** Deadline = min(caller timeout, descriptor timeout); caller's AbortSignal cancels too. */
export function deadline(d: CapabilityDescriptor, origin: Origin, now = Date.now) {
  const ms = Math.min(
    origin.timeoutMs ?? Infinity,
    (d.timeout_seconds || RPC_DEFAULT_TIMEOUT_SECONDS) * 1000,
  );
  const ac = new AbortController();
  let reject!: (e: unknown) => void;
  const aborted = new Promise<never>((_, rej) => (reject = rej));
  // raced against the handler, where the caller receives the abort; once the handler has settled
  // a later abort has no one to tell, so it must not surface as an unhandled rejection
  aborted.catch(() => undefined);
  const onAbort = () => {
    const reason =
      ac.signal.reason instanceof HnError
        ? ac.signal.reason
        : new HnError('timeout', 'the call was cancelled');
    reject(reason);
  };
  ac.signal.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => ac.abort(new HnError('timeout', `deadline of ${ms} ms passed`)), ms);
  const fromCaller = () =>
    ac.abort(
      origin.signal?.reason instanceof HnError
        ? origin.signal.reason
        : new HnError('timeout', 'the call was cancelled'),
    );
  if (origin.signal) {
    if (origin.signal.aborted) fromCaller();
    else origin.signal.addEventListener('abort', fromCaller, { once: true });
  }
  return {
    signal: ac.signal,
    deadlineMs: now() + ms,
    aborted,
    dispose: () => {
      clearTimeout(timer);
      origin.signal?.removeEventListener('abort', fromCaller);
    },
  };
}

export function failingIterable(err: unknown): AsyncIterable<StreamFrame> {
  return {
    [Symbol.asyncIterator]: () => ({
      next: () => Promise.reject(err),
    }),
  };
}

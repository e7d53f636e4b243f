/**
 * Event sync and signature verification in Node (issue #11):
 *
 * - `events.sync_10k_seconds`: node A writes 10,000 events while apart (not timed); B (empty, same community)
 *   links to A over an in-memory port pair; seconds from the link until B holds all 10,001 events (the link's
 *   first act is a sync). Both nodes on the default storage (memory), the platform's verifier (WebCrypto after
 *   its self-test). `events.sync_10k_seconds_noble`: the same with the verifier forced to noble.
 * - `events.verify_per_s_webcrypto` / `events.verify_per_s_noble`: signatures per second through
 *   `verifyBatch` (256 at a time, as a sync batch) on each forced backend, over 2,000 distinct signed event-like
 *   messages from 8 keys; median of 3 runs. `HN_BENCH_EVENTS=<n>` shrinks the sync for a quick look.
 */
import { createNode, type HearthNode } from '../../engine/index.js';
import { canonical } from '../../engine/core/canonical.js';
import { keyPairFromSeed, signBytes } from '../../engine/identity/identity.js';
import {
  forceVerifierBackend,
  verifyBatch,
  type VerifierBackend,
  type VerifyItem,
} from '../../engine/identity/verify.js';
import { memoryPortPair } from '../../engine/net/port.js';
import type { BenchFilter } from './run.js';

export const names = [
  'events.sync_10k_seconds',
  'events.sync_10k_seconds_noble',
  'events.verify_per_s_webcrypto',
  'events.verify_per_s_noble',
];

const EVENTS = Number(process.env.HN_BENCH_EVENTS ?? 10_000);
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function syncSeconds(seedByte: number): Promise<number> {
  const quiet = { protocol: { announce_to_peers: false } };
  const A = await createNode({ seed: new Uint8Array(32).fill(seedByte), config: quiet });
  const B = await createNode({
    seed: new Uint8Array(32).fill(seedByte + 1),
    config: { ...quiet, community: { community_id: A.id } },
  });
  try {
    for (let i = 0; i < EVENTS; i++) await A.events.append('bench.sync.item', { i, note: 'x'.repeat(40) });
    const t0 = performance.now();
    const [pa, pb] = memoryPortPair();
    await Promise.all([
      A.connect(pa, { transport: 'memory', expectedPeer: B.id }),
      B.connect(pb, { transport: 'memory', expectedPeer: A.id }),
    ]);
    const want = EVENTS + 1;
    const deadline = Date.now() + 600_000;
    while ((await B.events.count()) < want) {
      if (Date.now() > deadline) throw new Error('sync did not finish in 10 minutes');
      await new Promise((r) => setTimeout(r, 20));
    }
    return (performance.now() - t0) / 1000;
  } finally {
    await closeAll([A, B]);
  }
}

async function closeAll(ns: HearthNode[]): Promise<void> {
  for (const n of ns) await n.close();
}

function items(n: number): VerifyItem[] {
  const keys = Array.from({ length: 8 }, (_, i) => keyPairFromSeed(new Uint8Array(32).fill(100 + i)));
  return Array.from({ length: n }, (_, i) => {
    const kp = keys[i % keys.length]!;
    const msg = canonical({ event_type: 'bench.verify', i, author: kp.nodeId, data: { n: i } });
    return { publicKey: kp.publicKey, msg, sig: signBytes(kp, msg) };
  });
}

async function verifyPerS(backend: VerifierBackend, all: VerifyItem[]): Promise<number> {
  forceVerifierBackend(backend);
  try {
    const once = async () => {
      const t0 = performance.now();
      for (let off = 0; off < all.length; off += 256) {
        const ok = await verifyBatch(all.slice(off, off + 256));
        if (!ok.every(Boolean)) throw new Error('a good signature did not verify');
      }
      return all.length / ((performance.now() - t0) / 1000);
    };
    await once(); // warm-up (key imports, JIT)
    const runs: number[] = [];
    for (let r = 0; r < 3; r++) runs.push(await once());
    return median(runs);
  } finally {
    forceVerifierBackend(null);
  }
}

export async function figures(want: BenchFilter): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (want('events.verify_per_s')) {
    const all = items(2000);
    if (want('events.verify_per_s_webcrypto'))
      out['events.verify_per_s_webcrypto'] = Math.round(await verifyPerS('webcrypto', all));
    if (want('events.verify_per_s_noble'))
      out['events.verify_per_s_noble'] = Math.round(await verifyPerS('noble', all));
  }
  if (want('events.sync_10k_seconds')) out['events.sync_10k_seconds'] = round(await syncSeconds(61));
  if (want('events.sync_10k_seconds_noble')) {
    forceVerifierBackend('noble');
    try {
      out['events.sync_10k_seconds_noble'] = round(await syncSeconds(71));
    } finally {
      forceVerifierBackend(null);
    }
  }
  return out;
}

/**
 * M31 civil-defence figures (Node, pure engine code):
 * - `m31.verify_chain_entries_per_s`: §4.8 verify_chain (`verifyChainBatch`: signatures as one WebCrypto batch) (seq, prev_sha links, Ed25519 signature of each
 *   entry, payload_sha) over 10,000 signed audit entries with their payloads;
 * - `m31.inclusion_proof_bytes`: size of an RFC 9162 inclusion proof (raw SHA-256 path, 32 bytes per hash)
 *   for the middle entry of a 10,000-entry chain (⌈log2 10,000⌉ = 14 hashes expected → 448 bytes).
 * `m31.publish_to_notify_ms_p50` needs browsers through the relay: m31-browser.bench.ts.
 */
import type { BenchFilter } from './run.js';
import { keyPairFromSeed, signObject } from '../../engine/identity/identity.js';
import {
  entryHash,
  leafOf,
  makeEntry,
  verifyChain,
  verifyChainBatch,
  ZERO,
  type AuditEntry,
} from '../../engine/civdef/audit.js';
import { inclusionPath, rootOf, verifyInclusion } from '../../engine/civdef/merkle.js';

export const names = ['m31.verify_chain_entries_per_s', 'm31.inclusion_proof_bytes'];
const N = 10_000;

function chain(): { entries: AuditEntry[]; payloads: Map<number, unknown> } {
  const kp = keyPairFromSeed(new Uint8Array(32).fill(31));
  const sign = <T extends Record<string, unknown>>(o: T) => signObject(kp, o);
  const entries: AuditEntry[] = [];
  const payloads = new Map<number, unknown>();
  let prev = ZERO;
  for (let seq = 0; seq < N; seq++) {
    const payload = { seq, alert_id: `A${seq % 97}`, status: 'received', note_sha: 'ab'.repeat(32) };
    const e = makeEntry(
      sign,
      {
        seq,
        chain: kp.nodeId,
        alert_id: seq === 0 ? null : `A${seq % 97}`,
        event: seq === 0 ? 'genesis' : 'acked',
        actor: kp.nodeId,
        at: '2026-03-01T12:00:00Z',
        prev_sha: prev,
      },
      payload,
    );
    entries.push(e);
    payloads.set(seq, payload);
    prev = entryHash(e);
  }
  return { entries, payloads };
}

export async function figures(want: BenchFilter): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (!want('m31.verify_chain_entries_per_s') && !want('m31.inclusion_proof_bytes')) return out;
  const { entries, payloads } = chain();
  if (want('m31.verify_chain_entries_per_s')) {
    verifyChain(entries.slice(0, 200), { payloads }); // warm-up
    const t = performance.now();
    const rep = await verifyChainBatch(entries, { payloads });
    const s = (performance.now() - t) / 1000;
    if (!rep.ok) throw new Error(`bench chain does not verify: ${rep.reason}`);
    out['m31.verify_chain_entries_per_s'] = N / s;
  }
  if (want('m31.inclusion_proof_bytes')) {
    const leaves = entries.map(leafOf);
    const m = N >> 1;
    const p = inclusionPath(leaves, m);
    if (!verifyInclusion(leaves[m]!, m, N, p, rootOf(leaves))) throw new Error('proof does not verify');
    out['m31.inclusion_proof_bytes'] = p.reduce((n, h) => n + h.length, 0);
  }
  return out;
}

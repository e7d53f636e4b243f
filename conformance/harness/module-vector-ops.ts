/**
 * Harness op `vector`, module families (experimental modules): each runs one vector of
 * conformance/vectors/{lora,distributed_inference,fedlearn,civdef,moe,evidence}/ through the engine module's own pure function (M29
 * beacon codec and time on air, M26 planner, M28 aggregation, civdef cert_id and RFC 9162 Merkle tree, M27 topic normalisation, M30
 * ClaimID), so the files' independent expected values are checked against the implementation.
 * Imports engine/ (harness side only); reached from runVector (vector-ops.ts).
 */
import { HnError } from '../../engine/core/errors.js';
import { aggregate, type AggregatorKind } from '../../engine/fedlearn/aggregator.js';
import { keyOf, planCover, type ShardPath } from '../../engine/distributed_inference/plan.js';
import { timeOnAirMs } from '../../engine/lora/airtime.js';
import { beaconIdOf, decodeFrame, encodeFrame, senderHashOf } from '../../engine/lora/frame.js';
import { certIdOf } from '../../engine/civdef/role.js';
import { consistencyProof, inclusionPath, leafHash, rootOf } from '../../engine/civdef/merkle.js';
import { normalizeTopics } from '../../engine/moe/expert_registry.js';
import { buildClaim, claimPreimage, normaliseDraft } from '../../engine/evidence/claim.js';
import { jcs } from '../../engine/core/canonical.js';
import type { NodeID } from '../../engine/core/types.js';
import { runModuleVector2 } from './module-vector-ops-2.js';

const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const hex = (s: unknown): Uint8Array => {
  const t = String(s);
  if (!/^([0-9a-f]{2})*$/i.test(t)) throw new HnError('bad_request', 'bad hex');
  return Uint8Array.from(t.match(/../g) ?? [], (b) => parseInt(b, 16));
};
const utf8 = (s: unknown) => new TextEncoder().encode(String(s));

/** the module vector ops (a Promise for the async ones); undefined when `family/op` is not one of them */
export function runModuleVector(family: string, op: string, input: any): unknown {
  switch (`${family}/${op}`) {
    case 'lora/sender_hash':
      return { sender_hash: senderHashOf(String(input.node_id)) };
    case 'lora/encode': {
      const f = input.fields;
      return { hex: toHex(encodeFrame(f)), beacon_id: beaconIdOf(f) };
    }
    case 'lora/decode': {
      const d = decodeFrame(hex(input.hex), { acceptAuth: false });
      return {
        fields: {
          sender_hash: d.sender_hash,
          sequence: d.sequence,
          flags: d.flags,
          unix_seconds: d.unix_seconds,
        },
        beacon_id: beaconIdOf(d),
      };
    }
    case 'lora/airtime':
      return {
        toa_ms: timeOnAirMs(Number(input.payload_bytes), {
          sf: Number(input.sf),
          bw_khz: Number(input.bw_khz),
          cr: Number(input.cr),
          preamble: Number(input.preamble),
        }),
      };
    case 'civdef/cert_id': {
      const body = input.body as Record<string, unknown>;
      return { preimage_jcs: jcs(body), cert_id: certIdOf(body) };
    }
    case 'civdef/merkle': {
      const leaves = (input.leaves_utf8 as string[]).map((l) => leafHash(utf8(l)));
      const out: Record<string, unknown> = { root: toHex(rootOf(leaves)) };
      if (input.index !== undefined) out.path = inclusionPath(leaves, Number(input.index)).map(toHex);
      if (input.from_size !== undefined)
        out.proof = consistencyProof(leaves, Number(input.from_size)).map(toHex);
      return out;
    }
    case 'moe/normalise_topic':
      return { topic: normalizeTopics([input.topic], 'topic')[0] };
    case 'distributed_inference/plan': {
      // candidates as in the file: [shard_id, host, lo, hi, path, queue_depth, p95_latency_ms]
      const cands = (input.candidates as unknown[][]).map((c) => ({
        shard_id: String(c[0]),
        host: String(c[1]),
        layer_range: [Number(c[2]), Number(c[3])] as [number, number],
        path: c[4] as ShardPath,
        queue_depth: Number(c[5]),
        p95_latency_ms: Number(c[6]),
      }));
      const r = planCover(cands, Number(input.total_layers));
      return r.ok
        ? { shards: r.shards.map(keyOf) }
        : { reason: r.reason, first_uncovered_layer: r.first_uncovered_layer };
    }
    case 'fedlearn/aggregate': {
      // one lora_B tensor per submission (B starts at 0, so the aggregate is the combined delta, then F32)
      const name = 'vector.lora_B';
      const subs = (
        input.submissions as { participant: string; num_samples: number; values: number[] }[]
      ).map((s) => ({
        participant: String(s.participant),
        num_samples: Number(s.num_samples),
        tensors: new Map([[name, { shape: [s.values.length], data: Float32Array.from(s.values) }]]),
      }));
      const n = subs[0]?.tensors.get(name)!.data.length ?? 0;
      const out = aggregate(subs, {
        method: input.method as AggregatorKind,
        trim_fraction: Number(input.trim_fraction),
        min_participants: 1,
        init: new Map([[name, { shape: [n], data: new Float32Array(n) }]]),
      });
      return { values_f32: Array.from(out.get(name)!.data) };
    }
    case 'evidence/claim_id': {
      const d = normaliseDraft(input.draft, String(input.asserted_at));
      const c = buildClaim(d, input.asserted_by as NodeID, String(input.asserted_at));
      const { claim_id: _id, ...rest } = c;
      return { preimage_jcs: jcs(claimPreimage(rest)), claim_id: c.claim_id };
    }
  }
  // duty cycle, Meshtastic, scorer, M28 manifest / init / delta (module-vector-ops-2.ts)
  return runModuleVector2(family, op, input);
}

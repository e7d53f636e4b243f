/** Sim-peer helpers for cases: open a sim link to a SUT peer, build signed sim descriptors. */
import { signObj, type SuiteKey } from '../../lib/crypto.js';
import type { CaseCtx } from '../../runner/case.js';
import { SimPeer } from './link.js';

export { SimPeer, simEvent } from './link.js';

export function simDescriptor(key: SuiteKey, over: Record<string, unknown> = {}, sign = true) {
  const d = {
    descriptor_schema: 1,
    name: 'hearthnet-conformance-sim',
    vendor: 'X09 suite',
    version: '1.0.0',
    protocol_versions: ['3.0.0'],
    homepage_url: null,
    contact: null,
    node_id: key.nodeId,
    issued_at: '2026-06-01T00:00:00Z',
    capabilities: [],
    modules: {
      distributed_llm: false,
      moe: false,
      fedlearn: false,
      lora: false,
      evidence: false,
      civdef: false,
      tensor_transport: false,
      protocol: true,
    },
    ...over,
  };
  return sign ? signObj(key, d) : d;
}

/** Open a sim link (handshake done) to SUT peer `peer`; null when the target has no raw_link op. */
export async function openSim(
  ctx: CaseCtx,
  opts: {
    name?: string;
    key?: SuiteKey;
    protocol_versions?: string[];
    descriptor?: Record<string, unknown>;
    community?: string;
    peer?: number;
  } = {},
): Promise<SimPeer> {
  if (!ctx.target.rawLink) throw new Error('raw_link unavailable');
  const key = opts.key ?? ctx.identity(opts.name ?? 'sim');
  const port = await ctx.target.rawLink(opts.peer ?? 0);
  const sim = new SimPeer(port, {
    key,
    community: opts.community ?? ctx.info.community_id,
    protocol_versions: opts.protocol_versions ?? ['3.0.0'],
    ...(opts.descriptor ? { descriptor: opts.descriptor } : {}),
    to: ctx.info.peers[opts.peer ?? 0] ?? null,
  });
  await sim.open();
  return sim;
}

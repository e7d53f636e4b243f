import { createNode, memoryPortPair, type HearthNode, type NodeOptions } from '../../engine/index.js';

/** Two nodes of one community, linked by an in-memory port pair. */
export async function linkedPair(
  a: NodeOptions = {},
  b: NodeOptions = {},
): Promise<[HearthNode, HearthNode]> {
  const A = await createNode(a);
  const B = await createNode({
    ...b,
    config: { ...b.config, community: { community_id: A.id, ...b.config?.community } },
  });
  await link(A, B);
  return [A, B];
}

export async function link(A: HearthNode, B: HearthNode) {
  const [pa, pb] = memoryPortPair();
  await Promise.all([
    A.connect(pa, { transport: 'memory', expectedPeer: B.id }),
    B.connect(pb, { transport: 'memory', expectedPeer: A.id }),
  ]);
}

export const seedOf = (n: number) => new Uint8Array(32).fill(n);

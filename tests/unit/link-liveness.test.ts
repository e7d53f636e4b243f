/**
 * Link liveness (issue #11, the flaky relayed X08 cancel test): a peer whose CONTROL messages (pings) are stuck
 * behind its own bulk data is still alive while its link frames keep arriving; once nothing arrives for
 * `missedHeartbeats` intervals the link is closed as `peer silent`, as before.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createNode, memoryPortPair, type HearthNode } from '../../engine/index.js';
import { KIND_CONTROL } from '../../engine/net/frames.js';
import type { BytePort } from '../../engine/net/port.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A port that can withhold CONTROL link frames (kind byte 1) while passing everything else. */
function muting(p: BytePort): BytePort & { mute: boolean } {
  const w = {
    mute: false,
    send: (m: Uint8Array) => (w.mute && m[1] === KIND_CONTROL ? Promise.resolve() : p.send(m)),
    onMessage: (cb: (m: Uint8Array) => void) => p.onMessage(cb),
    onClose: (cb: (r: string) => void) => p.onClose(cb),
    close: (r?: string) => p.close(r),
    get closed() {
      return p.closed;
    },
    maxMessageBytes: p.maxMessageBytes,
  };
  return w;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('link liveness', () => {
  it('inbound link frames keep a link whose pings are held up; silence still closes it', async () => {
    const A: HearthNode = await createNode({ heartbeatMs: 250, missedHeartbeats: 4 });
    cleanups.push(() => A.close());
    const B: HearthNode = await createNode({
      heartbeatMs: 250,
      missedHeartbeats: 4,
      config: { community: { community_id: A.id } },
    });
    cleanups.push(() => B.close());
    const [pa, pb] = memoryPortPair();
    const fromA = muting(pa);
    await Promise.all([
      A.connect(fromA, { transport: 'memory', expectedPeer: B.id }),
      B.connect(pb, { transport: 'memory', expectedPeer: A.id }),
    ]);
    const open = () => B.peers().some((p) => p.id === A.id && p.state === 'open');
    expect(open()).toBe(true);

    // A's pings no longer reach B, but A keeps sending X08 link frames (to a channel B never opened: dropped)
    fromA.mute = true;
    const ch = A.session(B.id)!.mux.channel(7);
    const until = Date.now() + 2500; // 2.5 × the 1 s silence limit (250 ms × 4)
    while (Date.now() < until) {
      await ch.send(new Uint8Array(1024));
      await sleep(20);
    }
    expect(open()).toBe(true);

    // nothing at all from A: B declares it silent
    await expect.poll(open, { timeout: 5000, interval: 20 }).toBe(false);
  }, 30_000);
});

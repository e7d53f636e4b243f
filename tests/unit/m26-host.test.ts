/**
 * M26 shard host bad input (B3/B7/B10.1): each malformed request gets its B3 error and the host keeps serving
 * others; admission (capacity_exceeded); X08 forward sessions fed a bad tensor are closed alone; and the no-leak
 * grep (B10.9) over captured console output and every node's event log after real runs.
 */
import { rmSync } from 'node:fs';
import { base64 } from '@scure/base';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { StreamFrame } from '../../engine/bus/types.js';
import { ulid } from '../../engine/core/ulid.js';
import { CAP, CONNECT_REF, FORWARD_PURPOSE } from '../../engine/distributed_inference/types.js';
import { fromFloat32 } from '../../engine/transport/tensor/dtype.js';
import {
  admit,
  link,
  m26Node,
  makeFixture,
  reference,
  syncAds,
  type Fixture,
  type M26Node,
} from './m26-helpers.js';

const PROMPT = 'Q: what is a mesh network?\nA:';
let f: Fixture;
const open: M26Node[] = [];
beforeAll(async () => {
  f = await makeFixture();
}, 120_000);
afterAll(async () => {
  await f.whole.close();
  await f.orch.close();
  rmSync(f.dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const n of open.splice(0).reverse()) await n.node.close();
});

async function setup() {
  const orch = await m26Node(f, { serve: false });
  const host = await m26Node(f, { founder: orch.node });
  const host2 = await m26Node(f, { founder: orch.node });
  const member = await m26Node(f, { founder: orch.node, serve: false });
  open.push(orch, host, host2, member);
  await admit(orch.node, host.node, 'trusted');
  await admit(orch.node, host2.node, 'trusted');
  await admit(orch.node, member.node, 'member');
  await host.node.events.receive(await orch.node.events.list());
  await link(orch.node, host.node);
  await link(orch.node, host2.node);
  await link(member.node, host.node);
  await host.mod.serve({ model_id: f.manifest.model_id, layer_range: [0, 1] });
  await host2.mod.serve({ model_id: f.manifest.model_id, layer_range: [2, 3] });
  await syncAds(orch, [host, host2], 2);
  return { orch, host, host2, member };
}

const SID = () => `${f.manifest.model_id}:0-1:fp32`;
const E = () => f.manifest.dims.hidden_size;
const connectIn = (over: Record<string, unknown> = {}) => ({
  shard_id: SID(),
  weights_sha256: f.manifest.weights_sha256,
  pipeline_id: ulid(),
  max_seq_len: 64,
  ...over,
});
function inline(values: number[], S: number, dtype: 'fp32' | 'fp16' = 'fp32') {
  const t = fromFloat32(Float32Array.from(values), [1, S, E()], dtype);
  return { dtype, shape: t.shape, data: base64.encode(t.data) };
}
const canary = (S = 2) => Array.from({ length: S * E() }, (_, i) => Math.sin(i * 0.37) * 0.5);

async function collect(it: AsyncIterable<StreamFrame>) {
  const out: StreamFrame[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('M26 shard host: bad input, admission, isolation', () => {
  it('every bad request gets its B3 error; stored events are unchanged; the host keeps serving', async () => {
    const { orch, host } = await setup();
    // the link rate-limits calls per capability; a refused burst is retried after retry_after_ms
    const call = async (cap: string, input: unknown): Promise<any> => {
      for (;;) {
        try {
          return await orch.node.call(cap, input, { peer: host.node.id });
        } catch (e) {
          if ((e as { code?: string }).code !== 'rate_limited') throw e;
          await new Promise((r) => setTimeout(r, 1100));
        }
      }
    };
    // the host's own events: others' (ads, admissions) may still be arriving by sync while this runs
    const own = async () => (await host.node.events.list({ author: host.node.id })).length;
    const before = await own();

    for (const bad of ['nope', 'm:3-1', `${f.manifest.model_id}:0-x`, '', 42, `${f.manifest.model_id}:0-1:`])
      await expect(call(CAP.connect, connectIn({ shard_id: bad }))).rejects.toMatchObject({
        code: 'bad_request',
      });
    await expect(
      call(CAP.connect, connectIn({ shard_id: `${f.manifest.model_id}:0-9:fp32` })),
    ).rejects.toMatchObject({
      code: 'bad_request',
    });
    await expect(call(CAP.connect, connectIn({ weights_sha256: 'XYZ' }))).rejects.toMatchObject({
      code: 'bad_request',
    });
    await expect(call(CAP.connect, connectIn({ weights_sha256: 'b'.repeat(64) }))).rejects.toMatchObject({
      code: 'shard_unavailable',
      message: expect.stringMatching(/^weights_mismatch/), // core's link drops `details`; the reason leads the message
    });
    await expect(
      call(CAP.connect, connectIn({ shard_id: `${f.manifest.model_id}:2-3:fp32` })),
    ).rejects.toMatchObject({
      code: 'shard_unavailable',
    });
    await expect(call(CAP.connect, connectIn({ pipeline_id: 'not-a-ulid' }))).rejects.toMatchObject({
      code: 'bad_request',
    });
    await expect(call(CAP.connect, connectIn({ max_seq_len: 0 }))).rejects.toMatchObject({
      code: 'bad_request',
    });
    await expect(call(CAP.connect, connectIn({ negotiation: { flow_window: 99 } }))).rejects.toMatchObject({
      code: 'bad_request',
    });

    // direct shard.forward: canary works; oversize and non-finite refused
    const ok = await call(CAP.forward, {
      shard_id: SID(),
      weights_sha256: f.manifest.weights_sha256,
      tensor: inline(canary(), 2),
    });
    expect(ok.tensor.shape).toEqual([1, 2, E()]);
    expect(ok.past_len_after).toBe(2);
    const big = 'A'.repeat(400 * 1024);
    await expect(
      call(CAP.forward, {
        shard_id: SID(),
        weights_sha256: f.manifest.weights_sha256,
        tensor: { dtype: 'fp32', shape: [1, 2000, E()], data: big },
      }),
    ).rejects.toMatchObject({ code: 'tensor_too_large' });
    const nan = canary();
    nan[3] = NaN;
    await expect(
      call(CAP.forward, {
        shard_id: SID(),
        weights_sha256: f.manifest.weights_sha256,
        tensor: inline(nan, 2),
      }),
    ).rejects.toMatchObject({ code: 'bad_request' });
    const inf = canary();
    inf[5] = Infinity;
    await expect(
      call(CAP.forward, {
        shard_id: SID(),
        weights_sha256: f.manifest.weights_sha256,
        tensor: inline(inf, 2, 'fp16'),
      }),
    ).rejects.toMatchObject({ code: 'bad_request' });
    await expect(
      call(CAP.forward, {
        shard_id: SID(),
        weights_sha256: f.manifest.weights_sha256,
        tensor: { ...inline(canary(), 2), shape: [1, 3, E()] },
      }),
    ).rejects.toMatchObject({ code: 'bad_request' });
    await expect(
      call(CAP.forward, {
        shard_id: SID(),
        weights_sha256: f.manifest.weights_sha256,
        tensor: { ...inline(canary(), 2), data: '!!!' },
      }),
    ).rejects.toMatchObject({ code: 'bad_request' });
    await expect(
      call(CAP.forward, {
        shard_id: SID(),
        weights_sha256: f.manifest.weights_sha256,
        session_id: ulid(),
        tensor: inline(canary(), 2),
      }),
    ).rejects.toMatchObject({ code: 'not_found' });

    expect(await own()).toBe(before); // nothing stored for refused requests
    // the canary is deterministic (spot-check input for X09)
    const again = await call(CAP.forward, {
      shard_id: SID(),
      weights_sha256: f.manifest.weights_sha256,
      tensor: inline(canary(), 2),
    });
    expect(again.tensor.data).toBe(ok.tensor.data);
    // and the host still serves a full run
    const frames = await collect(
      orch.node.stream(CAP.run, {
        model_id: f.manifest.model_id,
        weights_sha256: f.manifest.weights_sha256,
        prompt: PROMPT,
        max_tokens: 8,
      }),
    );
    expect(frames.filter((x) => x.event === 'token').map((x) => x.data.token_id)).toEqual(
      await reference(f, PROMPT, 8),
    );
  }, 180_000);

  it("trust (the view's button) promotes through the community component: a member → unauthorized, log unchanged; the anchor → trusted", async () => {
    const { orch, member } = await setup();
    const before = await member.node.events.list();
    await expect(member.mod.parts().trust(orch.node.id)).rejects.toMatchObject({ code: 'unauthorized' });
    expect(await member.node.events.list()).toEqual(before);
    expect(orch.node.levelOf(member.node.id)).toBe('member');
    await orch.mod.parts().trust(member.node.id);
    expect(orch.node.levelOf(member.node.id)).toBe('trusted');
    const promoted = await orch.node.events.list({ type: 'community.member.promoted' });
    expect(promoted.map((e) => e.data.target_node_id)).toEqual([member.node.id]);
    // already trusted → bad_request, nothing appended
    await expect(orch.mod.parts().trust(member.node.id)).rejects.toMatchObject({ code: 'bad_request' });
    expect(await orch.node.events.list({ type: 'community.member.promoted' })).toHaveLength(1);
  }, 120_000);

  it('a member (not trusted) asking to connect → unauthorized; at the stream limit → capacity_exceeded', async () => {
    const { orch, host, member } = await setup();
    expect(orch.node.levelOf(member.node.id)).toBe('member');
    await expect(member.node.call(CAP.connect, connectIn(), { peer: host.node.id })).rejects.toMatchObject({
      code: 'unauthorized',
    });
    await expect(
      member.node.call(
        CAP.forward,
        { shard_id: SID(), weights_sha256: f.manifest.weights_sha256, tensor: inline(canary(), 2) },
        { peer: host.node.id },
      ),
    ).rejects.toMatchObject({ code: 'unauthorized' });
    // shard.list is open to members
    const list = await member.node.call(CAP.list, {}, { peer: host.node.id });
    expect(list.shards.map((s: { shard_id: string }) => s.shard_id)).toEqual([SID()]);
    // four streams per shard, the fifth is refused (spec: repick, never queue)
    const sessions = [];
    for (let i = 0; i < 4; i++)
      sessions.push(
        await orch.node.tensors.open(host.node.id, {
          capability: CONNECT_REF,
          purpose: FORWARD_PURPOSE,
          input: connectIn(),
        }),
      );
    await expect(orch.node.call(CAP.connect, connectIn(), { peer: host.node.id })).rejects.toMatchObject({
      code: 'capacity_exceeded',
    });
    expect(host.mod.parts().host.activeSessions).toBe(4);
    for (const s of sessions) s.close('done');
    await expect.poll(() => host.mod.parts().host.activeSessions, { timeout: 5000 }).toBe(0);
  }, 120_000);

  it('an X08 forward session fed a NaN or mis-shaped tensor is closed alone; another session keeps working', async () => {
    const { orch, host } = await setup();
    const good = await orch.node.tensors.open(host.node.id, {
      capability: CONNECT_REF,
      purpose: FORWARD_PURPOSE,
      input: connectIn(),
    });
    const bad = await orch.node.tensors.open(host.node.id, {
      capability: CONNECT_REF,
      purpose: FORWARD_PURPOSE,
      input: connectIn(),
    });
    const nan = canary(1);
    nan[0] = NaN;
    await bad.sendTensor(1, fromFloat32(Float32Array.from(nan), [1, 1, E()], 'fp16'));
    await expect(bad.recvTensor()).rejects.toBeTruthy();
    expect(bad.closeInfo).toMatchObject({ by: 'remote', text: 'bad_request' });
    const shape = await orch.node.tensors.open(host.node.id, {
      capability: CONNECT_REF,
      purpose: FORWARD_PURPOSE,
      input: connectIn(),
    });
    await shape.sendTensor(1, fromFloat32(new Float32Array(E() + 1), [1, 1, E() + 1], 'fp32')); // wrong hidden size
    await expect(shape.recvTensor()).rejects.toBeTruthy();
    expect(shape.closeInfo).toMatchObject({ by: 'remote', text: 'bad_request' });
    // the good session appends positions as before
    for (let i = 1; i <= 3; i++) {
      await good.sendTensor(i, fromFloat32(Float32Array.from(canary(1)), [1, 1, E()], 'fp16'));
      const r = await good.recvTensor();
      expect(r.tensorId).toBe(i);
      expect(r.tensor.shape).toEqual([1, 1, E()]);
    }
    good.close('done');
  }, 120_000);

  it('no prompt, token or activation reaches the console or any event log (B10.9)', async () => {
    const logs: string[] = [];
    const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((k) =>
      vi.spyOn(console, k).mockImplementation((...a: unknown[]) => void logs.push(a.map(String).join(' '))),
    );
    try {
      const { orch, host, host2 } = await setup();
      const secret = 'Zebra-secret-7431 tells the hearth';
      const frames = await collect(
        orch.node.stream(CAP.run, {
          model_id: f.manifest.model_id,
          weights_sha256: f.manifest.weights_sha256,
          prompt: secret,
          max_tokens: 16,
        }),
      );
      const text = frames
        .filter((x) => x.event === 'token')
        .map((x) => x.data.text)
        .join('');
      const ids = frames.filter((x) => x.event === 'token').map((x) => x.data.token_id as number);
      expect(ids.length).toBeGreaterThan(4);
      await orch.node.events.sync(host.node.id);
      await orch.node.events.sync(host2.node.id);
      const stored = JSON.stringify([
        await orch.node.events.list(),
        await host.node.events.list(),
        await host2.node.events.list(),
      ]);
      const outputs = [stored, logs.join('\n')];
      for (const o of outputs) {
        expect(o).not.toContain('Zebra-secret');
        if (text.trim().length >= 4) expect(o).not.toContain(text.trim());
        expect(o).not.toContain(JSON.stringify(ids.slice(0, 6)).slice(1, -1));
        expect(o).not.toContain('token_id');
      }
      const m26 = JSON.parse(stored)
        .flat()
        .filter((e: { event_type: string }) => e.event_type.startsWith('distributed_llm.'));
      expect(m26.map((e: { event_type: string }) => e.event_type)).toEqual(
        expect.arrayContaining([
          'distributed_llm.shard.advertised',
          'distributed_llm.pipeline.planned',
          'distributed_llm.pipeline.completed',
        ]),
      );
    } finally {
      for (const s of spies) s.mockRestore();
    }
  }, 180_000);
});

describe('M26 built-in definition', () => {
  it('on without models: shard.list is empty, plan → bad_request, run → bad_request; off → experimental_disabled', async () => {
    const { createNode } = await import('../../engine/index.js');
    const n = await createNode();
    try {
      await n.enable('distributed_llm');
      expect(n.config.tensor_transport.enabled).toBe(true);
      expect((await n.call(CAP.list, {})).shards).toEqual([]);
      await expect(n.call(CAP.plan, { model_id: 'x', weights_sha256: 'a'.repeat(64) })).rejects.toMatchObject(
        {
          code: 'bad_request',
        },
      );
      await expect(collect(n.stream(CAP.run, { prompt: 'hi' }))).rejects.toMatchObject({
        code: 'bad_request',
      });
      await expect(n.call(CAP.status, { pipeline_id: ulid() })).rejects.toMatchObject({ code: 'not_found' });
      await n.disable('distributed_llm');
      await expect(n.call(CAP.list, {})).rejects.toMatchObject({ code: 'experimental_disabled' });
    } finally {
      await n.close();
    }
  });
});

import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { createNode, HnError } from '../../engine/index.js';
import { descriptor } from '../../engine/modules/registry.js';
import { SEED_CAPABILITIES } from '../../engine/core/catalogue.js';
import { linkedPair } from './helpers.js';

describe('createNode', () => {
  it('works in Node with memory storage and exposes the public API', async () => {
    const n = await createNode({ storage: 'memory' });
    expect(n.id).toMatch(/^ed25519:[A-Za-z0-9_-]{43}$/);
    expect(n.config.protocol.enabled).toBe(true);
    for (const k of ['call', 'stream', 'enable', 'disable', 'close'] as const)
      expect(typeof n[k]).toBe('function');
    for (const k of ['append', 'list', 'sync'] as const) expect(typeof n.events[k]).toBe('function');
    await n.close();
  });

  it('flags: experimental capabilities are refused until their module is enabled', async () => {
    const n = await createNode();
    await expect(n.call('experimental.evidence.claim.get', { claim_id: 'x' })).rejects.toMatchObject({
      code: 'experimental_disabled',
    });
    expect(n.bus.has('experimental.evidence.claim.get')).toBe(false);
    expect(
      n.metrics.get('hearthnet_experimental_disabled_total', {
        capability: 'experimental.evidence.claim.get',
      }),
    ).toBe(1);
    // registering into a disabled module is refused
    expect(() =>
      n.bus.register({
        descriptor: descriptor('experimental.moe.expert.list', 'moe'),
        handler: async () => ({}),
      }),
    ).toThrow(expect.objectContaining({ code: 'experimental_disabled' }));
    await n.enable('evidence');
    for (const cap of SEED_CAPABILITIES.evidence) expect(n.bus.has(cap)).toBe(true);
    // registered and built (M30): a malformed request gets the generic code
    await expect(n.call('experimental.evidence.claim.get', {})).rejects.toMatchObject({
      code: 'bad_request',
    });
    await n.disable('evidence');
    expect(n.bus.has('experimental.evidence.claim.get')).toBe(false);
    await expect(n.call('experimental.evidence.claim.get', {})).rejects.toMatchObject({
      code: 'experimental_disabled',
    });
  });

  it('protocol.version.list is callable by default', async () => {
    const n = await createNode();
    expect(await n.call('protocol.version.list', {})).toMatchObject({
      protocol_versions: ['3.0.0'],
      current: '3.0.0',
    });
    expect(await n.call('protocol.version.list@1.0', {})).toMatchObject({ current: '3.0.0' });
    await n.disable('protocol');
    await expect(n.call('protocol.version.list', {})).rejects.toMatchObject({
      code: 'experimental_disabled',
    });
  });

  it('enabling distributed_llm also enables tensor_transport (M26 needs X08)', async () => {
    const n = await createNode();
    await n.enable('distributed_llm');
    expect(n.config.tensor_transport.enabled).toBe(true);
    expect(n.bus.has('experimental.distributed_llm.pipeline.run')).toBe(true);
    await n.disable('tensor_transport');
    expect(n.config.distributed_llm.enabled).toBe(false);
  });

  it('identity, config and events survive closing and reopening an IndexedDB node', async () => {
    const name = `hn-reopen-${Math.random()}`;
    const a = await createNode({ storage: 'indexeddb', name });
    await a.enable('moe');
    const ev = await a.events.append('test.thing.happened', { n: 1 });
    const id = a.id;
    await a.close();
    const b = await createNode({ storage: 'indexeddb', name });
    expect(b.id).toBe(id);
    expect(b.config.moe.enabled).toBe(true);
    expect(b.bus.has('experimental.moe.route.query')).toBe(true);
    expect((await b.events.get(ev.event_id))?.data).toEqual({ n: 1 });
    const next = await b.events.append('test.thing.happened', { n: 2 });
    expect(next.seq).toBe(ev.seq + 1);
    expect(next.prev).toMatch(/^blake3:/);
    await b.close();
  });

  it('a node refuses a seed that does not match its stored identity', async () => {
    const name = `hn-seed-${Math.random()}`;
    await (await createNode({ name, seed: new Uint8Array(32).fill(1) })).close();
    await expect(createNode({ name, seed: new Uint8Array(32).fill(2) })).rejects.toMatchObject({
      code: 'keys_invalid',
    });
  });
});

describe('remote capability calls over an in-memory link', () => {
  it('round-trips, preserves the remote error code, and honours trust', async () => {
    const [A, B] = await linkedPair();
    expect(A.peers()).toEqual([expect.objectContaining({ id: B.id, link: 'memory', state: 'open' })]);
    expect(await A.call('protocol.version.list', {}, { peer: B.id })).toMatchObject({
      protocol_versions: ['3.0.0'],
      current: '3.0.0',
    });
    await expect(A.call('protocol.conformance.report', {}, { peer: B.id })).rejects.toMatchObject({
      code: 'protocol_suite_not_installed',
    });
    await expect(A.call('protocol.nothing.here', {}, { peer: B.id })).rejects.toMatchObject({
      code: 'not_found',
    });
    // a self-only action cannot be called by a peer
    await expect(
      A.call('protocol.conformance.report', { action: 'run' }, { peer: B.id }),
    ).rejects.toMatchObject({
      code: 'unauthorized',
    });
    // a disabled module on the callee answers experimental_disabled even if the caller has it on
    await A.enable('moe');
    await expect(A.call('experimental.moe.expert.list', {}, { peer: B.id })).rejects.toMatchObject({
      code: 'experimental_disabled',
    });
    await A.close();
    await B.close();
  });

  it('a call to an unlinked node fails with partition', async () => {
    const A = await createNode();
    const other = await createNode();
    await expect(A.call('protocol.version.list', {}, { peer: other.id })).rejects.toMatchObject({
      code: 'partition',
    });
  });

  it('streams with deadlines and cancellation work across the link', async () => {
    const [A, B] = await linkedPair();
    let aborted = false;
    B.bus.register({
      descriptor: descriptor('llm.count', 'core', {
        stream_schema: { type: 'object', required: ['event', 'data'] },
        trust_required: 'member',
      }),
      handler: async function* (input: { n: number }, ctx) {
        for (let i = 1; i <= input.n; i++) {
          if (ctx.signal.aborted) {
            aborted = true;
            return { stopped: i };
          }
          yield { event: 'tick', data: { i } };
          await new Promise((r) => setTimeout(r, 1));
        }
        return { total: input.n };
      },
    });
    const frames = [];
    for await (const f of A.stream('llm.count', { n: 40 }, { peer: B.id })) frames.push(f);
    expect(frames.map((f) => f.data.i).filter(Boolean)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(frames.at(-1)).toEqual({ event: 'done', data: { total: 40 } });
    // cancel: the consumer stops early; the handler's signal fires
    for await (const f of A.stream('llm.count', { n: 10_000 }, { peer: B.id })) if (f.data.i === 3) break;
    await new Promise((r) => setTimeout(r, 100));
    expect(aborted).toBe(true);
    await A.close();
    await B.close();
  });

  it('a closed link makes pending calls fail with partition', async () => {
    const [A, B] = await linkedPair();
    B.bus.register({
      descriptor: descriptor('llm.slow', 'core'),
      handler: () => new Promise((r) => setTimeout(() => r({}), 5000)),
    });
    const p = A.call('llm.slow', {}, { peer: B.id });
    B.session(A.id)!.close('test');
    await expect(p).rejects.toMatchObject({ code: 'partition' });
    expect(p).toBeInstanceOf(Promise);
    expect(new HnError('partition').code).toBe('partition');
  });
});

import { describe, expect, it } from 'vitest';
import { Bus, schemaHash } from '../../engine/bus/bus.js';
import { Metrics } from '../../engine/observability/metrics.js';
import { descriptor } from '../../engine/modules/registry.js';
import { BUILTIN_NAMESPACES } from '../../engine/modules/builtin.js';
import type { NodeID } from '../../engine/core/types.js';
import type { ModuleName } from '../../engine/core/config.js';

const SELF = 'ed25519:11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' as NodeID;
const PEER = 'ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' as NodeID;

function mkBus(enabled: Partial<Record<ModuleName, boolean>> = {}, levels: Record<string, any> = {}) {
  const metrics = new Metrics();
  const bus = new Bus({
    self: SELF,
    isEnabled: (m) => enabled[m as ModuleName] ?? m === 'protocol',
    namespaces: () => BUILTIN_NAMESPACES,
    levelOf: (n) => (n in levels ? levels[n] : n === SELF ? 'anchor' : 'member'),
    metrics,
  });
  return { bus, metrics };
}
const echo = (name: string, over = {}) => ({
  descriptor: descriptor(name, 'core', {
    request_schema: {
      type: 'object',
      required: ['text'],
      properties: { text: { type: 'string', maxLength: 10 } },
      additionalProperties: false,
    },
    ...over,
  }),
  handler: async (i: { text: string }) => ({ text: i.text }),
});

describe('bus registry', () => {
  it('enforces the namespace rules', () => {
    const { bus } = mkBus();
    expect(() => bus.register(echo('foo.bar'))).toThrow(
      expect.objectContaining({ code: 'namespace_violation' }),
    );
    expect(() => bus.register(echo('experimental.unknown.x'))).toThrow(
      expect.objectContaining({ code: 'namespace_violation' }),
    );
    expect(() => bus.register(echo('Llm.Chat'))).toThrow(
      expect.objectContaining({ code: 'namespace_violation' }),
    );
    expect(() => bus.register(echo('embed.text'))).toThrow(
      expect.objectContaining({ code: 'namespace_violation' }),
    );
  });
  it('identical re-registration is a no-op, a different descriptor is a duplicate', () => {
    const { bus } = mkBus();
    bus.register(echo('llm.echo'));
    bus.register(echo('llm.echo'));
    expect(bus.list()).toHaveLength(1);
    expect(() => bus.register(echo('llm.echo', { timeout_seconds: 5 }))).toThrow(
      expect.objectContaining({ code: 'duplicate' }),
    );
  });
  it('version compatibility: 1.2 serves 1.0 but not 1.3 or 2.0', async () => {
    const { bus } = mkBus();
    bus.register(echo('llm.echo', { version: [1, 2] }));
    expect(await bus.call('llm.echo@1.0', { text: 'hi' })).toEqual({ text: 'hi' });
    for (const v of ['1.3', '2.0'])
      await expect(bus.call(`llm.echo@${v}`, { text: 'hi' })).rejects.toMatchObject({
        code: 'schema_mismatch',
        extra: { alt_capabilities: ['llm.echo@1.2'] },
      });
    await expect(bus.call('llm.other', {})).rejects.toMatchObject({ code: 'not_found' });
    await expect(bus.call('not a ref', {})).rejects.toMatchObject({ code: 'bad_request' });
  });
  it('schema_hash is stable and changes with the schema', () => {
    const a = echo('llm.echo').descriptor;
    expect(schemaHash(a)).toBe(schemaHash(echo('llm.echo').descriptor));
    expect(schemaHash(a)).toMatch(/^blake3:[0-9a-f]{64}$/);
    expect(schemaHash({ ...a, request_schema: { type: 'object' } })).not.toBe(schemaHash(a));
  });
});

describe('bus dispatch', () => {
  it('validates input before the handler runs and names the field', async () => {
    const { bus } = mkBus();
    let ran = 0;
    bus.register({ ...echo('llm.echo'), handler: async (i: any) => (ran++, i) });
    await expect(bus.call('llm.echo', { text: 42 })).rejects.toMatchObject({
      code: 'schema_mismatch',
      field: 'text',
    });
    await expect(bus.call('llm.echo', {})).rejects.toMatchObject({ code: 'schema_mismatch', field: 'text' });
    await expect(bus.call('llm.echo', { text: 'x', extra: 1 })).rejects.toMatchObject({
      code: 'schema_mismatch',
      field: 'extra',
    });
    await expect(bus.call('llm.echo', { text: 'x'.repeat(11) })).rejects.toMatchObject({
      code: 'schema_mismatch',
    });
    expect(ran).toBe(0);
  });
  it('deadline → timeout, and the handler sees its signal abort', async () => {
    const { bus } = mkBus();
    let sawAbort = false;
    bus.register({
      descriptor: descriptor('llm.wait', 'core'),
      handler: (_i, ctx) =>
        new Promise((_, rej) =>
          ctx.signal.addEventListener('abort', () => ((sawAbort = true), rej(new Error('x')))),
        ),
    });
    await expect(bus.call('llm.wait', {}, { timeout_ms: 30 })).rejects.toMatchObject({ code: 'timeout' });
    expect(sawAbort).toBe(true);
    expect(bus.stats()['llm.wait@1.0']).toMatchObject({ calls: 1, errors: 1, in_flight: 0 });
  });
  it('cancellation through AbortSignal', async () => {
    const { bus } = mkBus();
    bus.register({ descriptor: descriptor('llm.wait', 'core'), handler: () => new Promise(() => {}) });
    const ac = new AbortController();
    const p = bus.call('llm.wait', {}, { signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'timeout' });
  });
  it('a throwing handler gives internal_error without stack text and in_flight returns to 0', async () => {
    const { bus } = mkBus();
    bus.register({
      descriptor: descriptor('llm.boom', 'core'),
      handler: async () => {
        throw new Error('secret /home/x/path');
      },
    });
    const e = await bus.call('llm.boom', {}).catch((x) => x);
    expect(e.code).toBe('internal_error');
    expect(e.message).not.toContain('secret');
    expect(JSON.stringify(e.toObject())).not.toContain('at ');
    expect(bus.stats()['llm.boom@1.0']!.in_flight).toBe(0);
  });
  it('max_concurrent=1: a second parallel call gets capacity_exceeded with retry_after_ms', async () => {
    const { bus } = mkBus();
    let release!: () => void;
    bus.register({
      descriptor: descriptor('llm.one', 'core', { max_concurrent: 1 }),
      handler: () =>
        new Promise((r) => {
          release = () => r({});
        }),
    });
    const first = bus.call('llm.one', {});
    await expect(bus.call('llm.one', {})).rejects.toMatchObject({
      code: 'capacity_exceeded',
      retry_after_ms: 1000,
    });
    release();
    await first;
  });
  it('trust: member caller of a trusted capability → unauthorized; revoked → revoked; non-member → unauthorized', async () => {
    const { bus } = mkBus({}, { [PEER]: 'member' });
    bus.register({ ...echo('llm.t', { trust_required: 'trusted' }) });
    await expect(
      bus.dispatch('llm.t', { text: 'a' }, { caller: PEER, isLocal: false }),
    ).rejects.toMatchObject({ code: 'unauthorized' });
    const r = mkBus({}, { [PEER]: 'revoked' });
    r.bus.register(echo('llm.t'));
    await expect(
      r.bus.dispatch('llm.t', { text: 'a' }, { caller: PEER, isLocal: false }),
    ).rejects.toMatchObject({ code: 'revoked' });
    const n = mkBus({}, { [PEER]: null });
    n.bus.register(echo('llm.t'));
    await expect(
      n.bus.dispatch('llm.t', { text: 'a' }, { caller: PEER, isLocal: false }),
    ).rejects.toMatchObject({ code: 'unauthorized' });
  });
  it('counts calls, errors and latency per capability, and renders Prometheus text', async () => {
    const { bus, metrics } = mkBus();
    bus.register(echo('llm.echo'));
    await bus.call('llm.echo', { text: 'a' });
    await bus.call('llm.echo', { text: 'b' });
    await bus.call('llm.echo', { text: 1 }).catch(() => {});
    expect(bus.stats()['llm.echo@1.0']).toMatchObject({ calls: 2, errors: 0 });
    expect(metrics.get('hearthnet_requests_total', { capability: 'llm.echo@1.0', result: 'ok' })).toBe(2);
    expect(
      metrics.get('hearthnet_requests_total', { capability: 'llm.echo', result: 'schema_mismatch' }),
    ).toBe(1);
    const text = metrics.render();
    expect(text).toMatch(/# TYPE hearthnet_requests_total counter/);
    expect(text).toMatch(/hearthnet_request_duration_ms_count\{capability="llm.echo@1.0"\} 2/);
  });
  it('streams are async iterables with backpressure: the handler only runs as far as it is pulled', async () => {
    const { bus } = mkBus();
    let produced = 0;
    bus.register({
      descriptor: descriptor('llm.gen', 'core', { stream_schema: { type: 'object' } }),
      handler: async function* () {
        for (let i = 0; i < 1000; i++) {
          produced++;
          yield { event: 'n', data: { i } };
        }
        return { ok: true };
      },
    });
    const it = bus.stream('llm.gen', {})[Symbol.asyncIterator]();
    await it.next();
    await it.next();
    expect(produced).toBeLessThanOrEqual(3);
    await it.return!();
    const all = [];
    for await (const f of bus.stream('llm.gen', {})) all.push(f);
    expect(all).toHaveLength(1001);
    expect(all.at(-1)).toEqual({ event: 'done', data: { ok: true } });
  });
  it('inbound rate limits: soft above 10/s, hard drop above 100/s per capability', () => {
    const t = 1_000_000;
    const metrics = new Metrics();
    const bus = new Bus({
      self: SELF,
      isEnabled: () => true,
      levelOf: () => 'member',
      metrics,
      now: () => t,
    });
    const r = Array.from({ length: 150 }, () => bus.rateCheck(PEER, 'llm.x'));
    expect(r.slice(0, 10).every((x) => x === 'ok')).toBe(true);
    expect(r[10]).toBe('soft');
    expect(r.filter((x) => x === 'hard')).toHaveLength(50);
  });
});

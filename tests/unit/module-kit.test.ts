/** The module seam: the test-only example module, lifecycle with rollback, link messages, stores, gating. */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { createNode } from '../../engine/index.js';
import { HnError } from '../../engine/core/errors.js';
import type { ModuleDefinition } from '../../engine/modules/module.js';
import { descriptor } from '../../engine/modules/registry.js';
import { bool } from '../../engine/core/config-fields.js';
import { example, PINGS_SEEN } from '../example-module/index.js';
import { link, seedOf } from './helpers.js';

const note = { id: 'n1', tag: 'demo', body: 'a private note' };

describe('example module', () => {
  it('is reachable locally and from a peer; its event validates; its link message round-trips', async () => {
    const A = await createNode({ seed: seedOf(71), modules: [example] });
    const B = await createNode({
      seed: seedOf(72),
      modules: [example],
      config: { community: { community_id: A.id } },
    });
    await link(A, B);
    await expect(A.call('experimental.example.note.put', note)).rejects.toMatchObject({
      code: 'experimental_disabled',
    });
    await A.enable('example');
    await B.enable('example');
    expect(await A.call('experimental.example.note.put', note)).toEqual({ stored: true, greeting: 'hello' });
    expect((await B.call('experimental.example.note.by_tag', { tag: 'demo' }, { peer: A.id })).notes).toEqual(
      [note],
    );
    // bad input: the seed's error, nothing stored
    await expect(A.call('experimental.example.note.put', { id: 'x' })).rejects.toMatchObject({
      code: 'schema_mismatch',
    });
    expect((await A.call('experimental.example.note.by_tag', { tag: 'demo' })).notes).toHaveLength(1);
    // its event type validates: a malformed one is refused, a good one was appended
    await expect(A.events.append('example.note.added', { id: 1 })).rejects.toMatchObject({
      code: 'data_invalid',
    });
    expect(await A.events.list({ type: 'example.note.added' })).toHaveLength(1);
    // the note body never reaches the log
    expect(JSON.stringify(A.logs.entries())).not.toContain('a private note');
    // link message: B pings A, A answers once
    const mod = B.moduleDefinitions().find((d) => d.name === 'example')!;
    expect(mod).toBe(example);
    await B.bus.call('experimental.example.note.put', { ...note, id: 'n2' });
    const before = PINGS_SEEN.length;
    await sendPing(B, A.id, 0);
    await expect
      .poll(() => PINGS_SEEN.slice(before).map((p) => [p.at === A.id, p.at === B.id, p.n]))
      .toEqual([
        [true, false, 0],
        [false, true, 1],
      ]);
    await A.close();
    await B.close();
  });

  it('its store survives closing and reopening the node', async () => {
    const name = `hn-example-${Math.random()}`;
    const A = await createNode({ storage: 'indexeddb', name, modules: [example] });
    await A.enable('example');
    await A.call('experimental.example.note.put', note);
    await A.close();
    const B = await createNode({ storage: 'indexeddb', name, modules: [example] });
    expect(B.config).toMatchObject({ example: { enabled: true } });
    expect((await B.call('experimental.example.note.by_tag', { tag: 'demo' })).notes).toEqual([note]);
    await B.close();
  });
});

/** Send a link message as the example module would (through a tiny helper module sharing the type). */
async function sendPing(from: Awaited<ReturnType<typeof createNode>>, to: string, n: number) {
  const s = from.session(to as never)!;
  await s.sendModuleMessage('example.ping', { n });
}

describe('module host lifecycle', () => {
  const cfg = { enabled: bool(false) };
  function probe(failStart: boolean, log: string[]): ModuleDefinition<'probe', typeof cfg> {
    return {
      name: 'probe',
      seedId: 'T02',
      config: cfg,
      capabilityNames: ['experimental.probe.ping'],
      linkMessages: [{ type: 'probe.hello', schema: { type: 'object' } }],
      create(c) {
        return {
          capabilities: () => [
            { descriptor: descriptor('experimental.probe.ping', 'probe'), handler: async () => ({ ok: 1 }) },
          ],
          start() {
            c.clock.setInterval(() => log.push('tick'), 5);
            c.link.on('probe.hello', () => log.push('hello'));
            c.peers.onChange(() => log.push('peers'));
            log.push('start');
            if (failStart) throw new HnError('internal_error', 'no stick attached');
          },
          stop() {
            log.push('stop');
          },
        };
      },
    };
  }

  it('a start that throws leaves nothing registered and reports the switch failed with the reason', async () => {
    const log: string[] = [];
    const n = await createNode({ modules: [probe(true, log)] });
    await expect(n.enable('probe')).rejects.toMatchObject({ code: 'internal_error' });
    expect(n.bus.has('experimental.probe.ping')).toBe(false);
    expect(n.moduleStates().find((s) => s.name === 'probe')).toMatchObject({
      state: 'failed',
      error: { code: 'internal_error', message: 'no stick attached' },
    });
    await expect(n.call('experimental.probe.ping', {})).rejects.toMatchObject({
      code: 'experimental_disabled',
    });
    await new Promise((r) => setTimeout(r, 30));
    expect(log).toEqual(['start', 'stop']); // the interval was cancelled by the rollback
    // another config change does not retry it; disable clears the failure
    await n.setConfig({ identity: { display_name: 'x' } });
    expect(log).toEqual(['start', 'stop']);
    await n.disable('probe');
    expect(n.moduleStates().find((s) => s.name === 'probe')?.state).toBe('off');
    await n.close();
  });

  it('enable twice, disable twice, enable-disable-enable behave; disable removes everything', async () => {
    const log: string[] = [];
    const n = await createNode({ modules: [probe(false, log)] });
    await n.enable('probe');
    await n.enable('probe');
    expect(log.filter((x) => x === 'start')).toHaveLength(1);
    expect(await n.call('experimental.probe.ping', {})).toEqual({ ok: 1 });
    await n.disable('probe');
    await n.disable('probe');
    expect(log.filter((x) => x === 'stop')).toHaveLength(1);
    expect(n.bus.has('experimental.probe.ping')).toBe(false);
    const ticks = log.filter((x) => x === 'tick').length;
    await new Promise((r) => setTimeout(r, 30));
    expect(log.filter((x) => x === 'tick').length).toBe(ticks);
    await Promise.all([n.enable('probe'), n.disable('probe'), n.enable('probe')]);
    expect(n.moduleStates().find((s) => s.name === 'probe')?.state).toBe('on');
    expect(await n.call('experimental.probe.ping', {})).toEqual({ ok: 1 });
    await n.close();
  });

  it("a stop hook may append the module's farewell event; once off, the module's events are refused", async () => {
    const farewell: ModuleDefinition<'probe', typeof cfg> = {
      name: 'probe',
      seedId: 'T02',
      config: cfg,
      capabilityNames: [],
      events: [{ type: 'probe.left', schema: { type: 'object' } }],
      create(c) {
        return {
          capabilities: () => [],
          async stop() {
            await c.events.append('probe.left', {});
          },
        };
      },
    };
    const n = await createNode({ modules: [farewell] });
    await expect(n.events.append('probe.left', {})).rejects.toMatchObject({ code: 'experimental_disabled' });
    await n.enable('probe');
    await n.disable('probe');
    expect(await n.events.list({ type: 'probe.left' })).toHaveLength(1);
    await expect(n.events.append('probe.left', {})).rejects.toMatchObject({ code: 'experimental_disabled' });
    // closing the node stops the module the same way
    await n.enable('probe');
    await n.close();
    expect(n.moduleStates().find((s) => s.name === 'probe')?.state).toBe('off');
  });

  it('a module may register only its declared names in its own namespace', async () => {
    const bad: ModuleDefinition<'probe', typeof cfg> = {
      ...probe(false, []),
      capabilityNames: [],
    };
    const n = await createNode({ modules: [bad] });
    await expect(n.enable('probe')).rejects.toMatchObject({ code: 'namespace_violation' });
    expect(n.bus.has('experimental.probe.ping')).toBe(false);
    await n.close();
  });
});

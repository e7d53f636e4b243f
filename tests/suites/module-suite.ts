/**
 * Module acceptance suite: run over every module definition (`moduleAcceptanceSuite(def)`):
 * gating (`experimental_disabled` while off), enable/disable idempotence, start-failure rollback,
 * and capabilities that match their protocol schemas (or, for names the protocol does not define,
 * a well-formed descriptor under the module's namespace).
 */
import { describe, expect, it } from 'vitest';
import { createNode, type HearthNode, type NodeOptions } from '../../engine/index.js';
import { HnError } from '../../engine/core/errors.js';
import type { AnyModuleDefinition } from '../../engine/modules/module.js';
import { namespaceOf } from '../../engine/modules/module.js';
import { CAPABILITY_INDEX, capabilitySchemas } from '../../engine/protocol/catalog.js';

export interface ModuleSuiteOptions {
  /** extra node options (e.g. a config the module needs to start) */
  node?: NodeOptions;
  /** a valid request per capability, when `{}` would not pass its schema (only used for gating) */
  sample?: Record<string, unknown>;
}

const owned = (n: HearthNode, def: AnyModuleDefinition) =>
  n.bus
    .list()
    .filter((c) => c.module === def.name)
    .map((c) => c.name)
    .sort();

export function moduleAcceptanceSuite(def: AnyModuleDefinition, o: ModuleSuiteOptions = {}): void {
  const mk = (d: AnyModuleDefinition = def) =>
    createNode({
      ...o.node,
      modules: [...(o.node?.modules ?? []), d],
      config: { ...o.node?.config, [def.name]: { enabled: false } } as NodeOptions['config'],
    });
  const state = (n: HearthNode) => n.moduleStates().find((s) => s.name === def.name);
  const names = [...def.capabilityNames, ...(def.extraCapabilityNames ?? [])].sort();

  describe(`module acceptance: ${def.name} (${def.seedId})`, () => {
    it('gating: while off nothing is registered and every call answers experimental_disabled', async () => {
      const n = await mk();
      expect(owned(n, def)).toEqual([]);
      for (const cap of names) {
        const call = n.bus.descriptor(cap)?.stream_schema
          ? (async () => {
              for await (const _ of n.stream(cap, o.sample?.[cap] ?? {})) break;
            })()
          : n.call(cap, o.sample?.[cap] ?? {});
        await expect(call, cap).rejects.toMatchObject({ code: 'experimental_disabled' });
      }
      for (const ev of def.events ?? [])
        await expect(n.events.append(ev.type, {}), ev.type).rejects.toMatchObject({
          code: 'experimental_disabled',
        });
      await n.close();
    });

    it('enable twice, disable twice, enable-disable-enable: registered exactly while on', async () => {
      const n = await mk();
      await n.enable(def.name);
      await n.enable(def.name);
      expect(state(n)?.state).toBe('on');
      expect(owned(n, def)).toEqual(names);
      await n.disable(def.name);
      await n.disable(def.name);
      expect(state(n)?.state).toBe('off');
      expect(owned(n, def)).toEqual([]);
      await n.enable(def.name);
      await n.disable(def.name);
      await n.enable(def.name);
      expect(owned(n, def)).toEqual(names);
      await n.close();
    });

    it('a start that throws rolls everything back and reports the reason', async () => {
      let stopped = 0;
      const failing: AnyModuleDefinition = {
        ...def,
        async create(c) {
          const inst = await def.create(c);
          c.clock.setInterval(() => undefined, 1000); // must be cancelled by the rollback
          return {
            ...inst,
            async start() {
              await inst.start?.();
              throw new HnError('internal_error', 'injected start failure');
            },
            async stop() {
              stopped++;
              await inst.stop?.();
            },
          };
        },
      };
      const n = await mk(failing);
      await expect(n.enable(def.name)).rejects.toMatchObject({ code: 'internal_error' });
      expect(owned(n, def)).toEqual([]);
      expect(stopped).toBe(1);
      expect(state(n)).toMatchObject({
        state: 'failed',
        error: { code: 'internal_error', message: 'injected start failure' },
      });
      for (const cap of names.slice(0, 1))
        await expect(n.call(cap, {})).rejects.toMatchObject({ code: 'experimental_disabled' });
      await n.disable(def.name);
      expect(state(n)?.state).toBe('off');
      await n.close();
    });

    it('capabilities match their protocol schemas and live in the module namespace', async () => {
      const n = await mk();
      await n.enable(def.name);
      const ns = namespaceOf(def);
      for (const cap of names) {
        const d = n.bus.descriptor(cap)!;
        expect(d, cap).toBeDefined();
        expect(ns && cap.startsWith(ns), cap).toBe(true);
        expect(d.module).toBe(def.name);
        const idx = CAPABILITY_INDEX.find((c) => c.name === cap);
        if (idx) {
          const s = capabilitySchemas(cap);
          expect(d.request_schema, cap).toEqual(s.request);
          expect(d.response_schema, cap).toEqual(s.response);
          expect(d.stream_schema !== null, cap).toBe(idx.streaming);
          expect(d.stability, cap).toBe(idx.tier);
        } else {
          // a name the protocol does not define: only outside the seed's modules (tests, local
          // extensions) or one of a module's declared extras beyond the seed
          expect(
            CAPABILITY_INDEX.some((c) => c.module === def.name) && !def.extraCapabilityNames?.includes(cap),
            cap,
          ).toBe(false);
          expect(typeof d.request_schema).toBe('object');
          expect(d.response_schema !== null || d.stream_schema !== null, cap).toBe(true);
        }
      }
      await n.close();
    });
  });
}

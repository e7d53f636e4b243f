/**
 * Module host: starts and stops modules from their definitions. Every registration a module's start
 * makes (capabilities, event types, link-message handlers, subscriptions, timers, stores, the hello
 * hook) goes through here and is undone on stop, or at once when start throws (rollback). Switch
 * operations are serialised, so enable twice / disable twice / enable-disable-enable behave.
 */
import { assertSchema } from '../bus/schema.js';
import type { Bus } from '../bus/bus.js';
import type { Capability } from '../bus/types.js';
import { HnError, toHnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import { queueTail, type Clock } from '../core/vocab.js';
import type { EventLog } from '../events/log.js';
import { promotionData, type CommunityView } from '../identity/community.js';
import { verifyObject } from '../identity/identity.js';
import type { LinkProtocolHook } from '../net/session.js';
import type { LogBook, Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { eventSchema } from '../protocol/catalog.js';
import type { DbSchema, StorageAdapter, StorageFactory } from '../store/types.js';
import type { TensorHost } from '../transport/tensor/host.js';
import {
  namespaceOf,
  type AnyModuleDefinition,
  type LinkMessageSpec,
  type ModuleComponents,
  type ModuleInstance,
  type ModulePeers,
} from './module.js';

export type ModuleState = 'off' | 'starting' | 'on' | 'stopping' | 'failed';

export interface ModuleStatus {
  name: string;
  seed_id: string;
  state: ModuleState;
  /** why the last start failed (state 'failed') */
  error: { code: string; message: string } | null;
}

export interface ModuleHostDeps {
  self: NodeID;
  communityId: NodeID;
  /** the node's membership view (levels; promotion checks) */
  community: CommunityView;
  bus: Bus;
  log: EventLog;
  metrics: Metrics;
  tensors: TensorHost;
  peers: ModulePeers;
  clock: Clock;
  logs: LogBook;
  /** the module's section (and any other) of the current config */
  config: () => Readonly<Record<string, unknown>>;
  sign<T extends Record<string, unknown>>(obj: T): T & { signature: string };
  /** raw Ed25519 with the node key (only reached through the narrow component above) */
  signBytes(msg: Uint8Array): Uint8Array;
  kv: { get<T>(key: string): Promise<T | undefined>; put(key: string, value: unknown): Promise<void> };
  /** storage factory and node database name: a module's database is `<dbName>:<module>` */
  storage: StorageFactory;
  dbName: string;
  setLinkHook(hook: LinkProtocolHook | null): void;
  /** send a module link message to a peer (throws `partition` without an open link) */
  sendLink(peer: NodeID, type: string, payload: unknown): Promise<void>;
}

interface Running {
  def: AnyModuleDefinition;
  instance: ModuleInstance | null;
  disposers: (() => unknown)[];
  stores: StorageAdapter[];
}

export class ModuleHost {
  private defs = new Map<string, AnyModuleDefinition>();
  private running = new Map<string, Running>();
  private status = new Map<string, ModuleStatus>();
  private linkHandlers = new Map<string, Set<(peer: NodeID, payload: unknown) => void>>();
  private linkSpecs = new Map<string, { module: string; spec: LinkMessageSpec }>();
  private listeners = new Set<() => void>();
  private queue: Promise<unknown> = Promise.resolve();
  private hookOwner: string | null = null;
  private readonly hlog: Logger;

  constructor(
    private d: ModuleHostDeps,
    defs: readonly AnyModuleDefinition[],
  ) {
    this.hlog = d.logs.logger('modules');
    for (const def of defs) {
      this.defs.set(def.name, def);
      for (const spec of def.linkMessages ?? []) {
        if (!spec.type.startsWith(`${def.name}.`))
          throw new HnError('namespace_violation', `link message ${spec.type} must start with ${def.name}.`);
        this.linkSpecs.set(spec.type, { module: def.name, spec });
      }
    }
    for (const def of this.defs.values())
      this.status.set(def.name, { name: def.name, seed_id: def.seedId, state: 'off', error: null });
  }

  definitions(): AnyModuleDefinition[] {
    return [...this.defs.values()];
  }
  definition(name: string): AnyModuleDefinition | undefined {
    return this.defs.get(name);
  }
  /** Is the module started (or starting)? The bus gates on this, so a failed module answers `experimental_disabled`. */
  isLive(name: string): boolean {
    const s = this.status.get(name)?.state;
    return s === 'on' || s === 'starting';
  }
  /** May the module append its own events? While its code runs — started, starting or stopping (a stop hook's
   * farewell, such as a withdrawn advert, reaches the peers). */
  mayEmit(name: string): boolean {
    const s = this.status.get(name)?.state;
    return s === 'on' || s === 'starting' || s === 'stopping';
  }
  states(): ModuleStatus[] {
    return [...this.status.values()].map((s) => ({ ...s }));
  }
  onChange(cb: () => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** Bring the running set in line with the flags; failed modules are retried only when `retry` names them. */
  apply(enabled: (name: string) => boolean, retry: readonly string[] = []): Promise<void> {
    return this.serial(async () => {
      const errors: HnError[] = [];
      for (const def of this.defs.values()) {
        const on = enabled(def.name);
        const st = this.status.get(def.name)!;
        if (!on) await this.stopOne(def.name);
        else if (!this.running.has(def.name) && (st.state !== 'failed' || retry.includes(def.name))) {
          const e = await this.startOne(def);
          if (e && retry.includes(def.name)) errors.push(e);
        }
      }
      if (errors.length) throw errors[0];
    });
  }

  /** Stop every module (node close). */
  stopAll(): Promise<void> {
    return this.serial(async () => {
      for (const name of [...this.running.keys()].reverse()) await this.stopOne(name);
    });
  }

  /** An inbound module link message from a peer: validated against its spec, then handed to every handler. */
  deliverLink(peer: NodeID, type: unknown, payload: unknown): void {
    if (typeof type !== 'string') return;
    const known = this.linkSpecs.get(type);
    if (!known || !this.running.has(known.module)) return; // unknown or off: ignored (forward compatible)
    try {
      assertSchema(known.spec.schema, payload, 'bad_request');
    } catch (e) {
      this.d.metrics.inc('hearthnet_link_messages_dropped_total', { type, reason: 'invalid' });
      this.d.logs.write('warning', known.module, 'invalid link message dropped', {
        type,
        peer,
        error: toHnError(e).message,
      });
      return;
    }
    for (const h of this.linkHandlers.get(type) ?? []) {
      try {
        h(peer, payload);
      } catch (e) {
        this.d.logs.write('error', known.module, 'link message handler failed', {
          type,
          peer,
          error: e as Error,
        });
      }
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = queueTail(p); // the chain continues; the caller gets the error from p
    return p;
  }

  private setState(name: string, state: ModuleState, error: ModuleStatus['error'] = null) {
    const s = this.status.get(name)!;
    s.state = state;
    s.error = error;
    for (const cb of this.listeners) {
      try {
        cb();
      } catch (e) {
        this.hlog.error('module state listener failed', { error: e as Error });
      }
    }
  }

  private async startOne(def: AnyModuleDefinition): Promise<HnError | null> {
    const r: Running = { def, instance: null, disposers: [], stores: [] };
    this.running.set(def.name, r);
    this.setState(def.name, 'starting');
    try {
      const components = this.components(def, r);
      const inst = await def.create(components);
      r.instance = inst;
      const caps = inst.capabilities();
      this.checkCapabilities(def, caps);
      for (const cap of caps) this.d.bus.register(cap);
      for (const ev of def.events ?? []) {
        if (!ev.type.startsWith(`${def.name}.`))
          throw new HnError('namespace_violation', `event type ${ev.type} must start with ${def.name}.`);
        const schema = ev.schema ?? eventSchema(ev.type);
        if (!schema) throw new HnError('schema_unknown', `event type ${ev.type} has no data schema`);
        this.d.log.registerType(ev.type, schema);
      }
      await inst.start?.();
      this.setState(def.name, 'on');
      this.hlog.info('module started', { module: def.name });
      return null;
    } catch (e) {
      const err = toHnError(e);
      await this.teardown(r, true);
      this.running.delete(def.name);
      this.setState(def.name, 'failed', { code: err.code, message: err.message });
      this.d.metrics.inc('hearthnet_module_start_failures_total', { module: def.name });
      this.hlog.error('module failed to start', { module: def.name, code: err.code, error: err.message });
      return err;
    }
  }

  private async stopOne(name: string): Promise<void> {
    const r = this.running.get(name);
    if (!r) {
      if (this.status.get(name)?.state === 'failed') this.setState(name, 'off');
      return;
    }
    this.setState(name, 'stopping');
    await this.teardown(r, false);
    this.running.delete(name);
    this.setState(name, 'off');
    this.hlog.info('module stopped', { module: name });
  }

  /** Undo everything the module's enable added. Errors are logged; teardown always completes. */
  private async teardown(r: Running, failedStart: boolean) {
    const name = r.def.name;
    this.d.bus.unregisterModule(name);
    try {
      await r.instance?.stop?.();
    } catch (e) {
      this.hlog.warn(failedStart ? 'stop after a failed start threw' : 'module stop threw', {
        module: name,
        error: e as Error,
      });
    }
    for (const dispose of r.disposers.splice(0).reverse()) {
      try {
        await dispose();
      } catch (e) {
        this.hlog.warn('module cleanup step failed', { module: name, error: e as Error });
      }
    }
    for (const s of r.stores.splice(0)) {
      try {
        await s.close();
      } catch (e) {
        this.hlog.warn('module store did not close', { module: name, error: e as Error });
      }
    }
  }

  /** A module registers exactly its declared seed names, under its own namespace, owned by itself. */
  private checkCapabilities(def: AnyModuleDefinition, caps: Capability[]) {
    const ns = namespaceOf(def);
    const declared = new Set([...def.capabilityNames, ...(def.extraCapabilityNames ?? [])]);
    for (const c of caps) {
      const n = c.descriptor.name;
      if (c.descriptor.module !== def.name)
        throw new HnError(
          'namespace_violation',
          `${n} is registered by ${def.name} but owned by ${c.descriptor.module}`,
        );
      if (!ns || !n.startsWith(ns))
        throw new HnError('namespace_violation', `${n} is outside the namespace of module ${def.name}`);
      if (!declared.has(n))
        throw new HnError('namespace_violation', `${n} is not listed in ${def.name}'s capabilityNames`);
    }
  }

  private components(def: AnyModuleDefinition, r: Running): ModuleComponents<any> {
    const d = this.d;
    const name = def.name;
    const track = <T extends () => unknown>(off: T): T => {
      r.disposers.push(off);
      return off;
    };
    const live = () => this.running.get(name) === r;
    const log = d.logs.logger(name);
    const ownType = (type: string) => {
      const area = type.slice(0, type.indexOf('.'));
      if (area !== name && this.defs.has(area))
        throw new HnError('namespace_violation', `${name} may not append ${area}'s event ${type}`);
    };
    return {
      self: d.self,
      communityId: d.communityId,
      module: name,
      bus: d.bus,
      events: {
        append: (type, data) => {
          ownType(type);
          return d.log.append(type, data);
        },
        list: (q) => d.log.list(q),
        get: (id) => d.log.get(id),
        subscribe: (cb) =>
          track(
            d.log.subscribe((ev, source) => {
              try {
                cb(ev, source);
              } catch (e) {
                log.error('event subscriber threw', { event_type: ev.event_type, error: e as Error });
              }
            }),
          ),
      },
      config: () => d.config()[name] as never,
      configOf: (section) => d.config()[section] as Readonly<Record<string, unknown>> | undefined,
      modules: () => Object.fromEntries([...this.defs.keys()].map((m) => [m, this.isLive(m)])),
      openStore: async (schema?: DbSchema) => {
        if (!live()) throw new HnError('closed', `module ${name} is not running`);
        const s = await d.storage(
          `${d.dbName}:${name}`,
          schema ?? { version: def.storesVersion ?? 1, stores: [...(def.stores ?? [])] },
        );
        r.stores.push(s);
        return s;
      },
      kv: {
        get: (k) => d.kv.get(`${name}:${k}`),
        put: (k, v) => d.kv.put(`${name}:${k}`, v),
      },
      tensors: d.tensors,
      peers: { list: () => d.peers.list(), onChange: (cb) => track(d.peers.onChange(cb)) },
      community: {
        levelOf: (n) => d.community.levelOf(n),
        promote: async (target, level) =>
          d.log.append(
            'community.member.promoted',
            promotionData(d.community, d.self, target, level, (o) => d.sign(o)),
          ),
      },
      metrics: d.metrics,
      clock: {
        now: () => d.clock.now(),
        setTimeout: (fn, ms) => track(d.clock.setTimeout(fn, ms)),
        setInterval: (fn, ms) => track(d.clock.setInterval(fn, ms)),
      },
      log,
      sign: (obj) => d.sign(obj),
      signDataIntegrity: (m) => {
        if (!(m instanceof Uint8Array) || m.length !== 64)
          throw new HnError('bad_request', 'Data Integrity hashData is two SHA-256 digests (64 bytes)');
        return d.signBytes(m);
      },
      verify: (obj, signer) => verifyObject(obj, signer),
      link: {
        send: async (peer, type, payload) => {
          const known = this.linkSpecs.get(type);
          if (!known || known.module !== name)
            throw new HnError('namespace_violation', `${type} is not a link message of ${name}`);
          if (!live()) throw new HnError('experimental_disabled', `module ${name} is not running`);
          assertSchema(known.spec.schema, payload, 'bad_request');
          await d.sendLink(peer, type, payload);
        },
        on: (type, handler) => {
          const known = this.linkSpecs.get(type);
          if (!known || known.module !== name)
            throw new HnError('namespace_violation', `${type} is not a link message of ${name}`);
          const set = this.linkHandlers.get(type) ?? new Set();
          this.linkHandlers.set(type, set);
          set.add(handler);
          return track(() => set.delete(handler));
        },
      },
      setLinkHook: (hook) => {
        if (hook && this.hookOwner && this.hookOwner !== name)
          throw new HnError('duplicate', `the link-hello hook belongs to ${this.hookOwner}`);
        d.setLinkHook(hook);
        this.hookOwner = hook ? name : null;
        if (hook)
          track(() => {
            if (this.hookOwner === name) {
              d.setLinkHook(null);
              this.hookOwner = null;
            }
          });
      },
    };
  }
}

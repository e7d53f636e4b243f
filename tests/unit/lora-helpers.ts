/** Shared setup for the M29 LoRa tests: real storage (fake-indexeddb), real keys, the simulated ether. */
import 'fake-indexeddb/auto';
import { CORE_SCHEMA } from '../../engine/store/core-schema.js';
import { openIndexedDbStorage } from '../../engine/store/indexeddb.js';
import type { StorageAdapter } from '../../engine/store/types.js';
import { generateKeyPair, type KeyPair } from '../../engine/identity/identity.js';
import { VirtualClock } from '../../engine/lora/clock.js';
import type { LoraKv } from '../../engine/lora/duty_cycle.js';
import { beaconKeyFromSeed } from '../../engine/lora/frame.js';
import {
  LORA_DEFAULTS,
  LoraService,
  type LockManagerLike,
  type LoraEventType,
  type LoraSettings,
} from '../../engine/lora/service.js';
import type { LoraNotification } from '../../engine/lora/rx_pipeline.js';
import { SimRadioChannel } from '../../engine/lora/sim/channel.js';
import { SimSerial, SimSerialPort, SimStick, type StickPersonality } from '../../engine/lora/sim/stick.js';

let dbSeq = 0;
/** The module kv exactly as engine/node.ts stores it: rows `module:<key>` in the core `meta` store. */
export function kvOver(store: StorageAdapter): LoraKv {
  return {
    get: async (k) => (await store.get<{ k: string; v: any }>('meta', `module:${k}`))?.v,
    put: async (k, v) => store.put('meta', { k: `module:${k}`, v }),
  };
}

export async function openDb(
  name = `lora-test-${process.pid}-${dbSeq++}`,
): Promise<{ name: string; store: StorageAdapter }> {
  return { name, store: await openIndexedDbStorage(name, CORE_SCHEMA) };
}

export interface TestNode {
  keys: KeyPair;
  svc: LoraService;
  events: { type: LoraEventType; data: Record<string, any> }[];
  notes: LoraNotification[];
  stick: SimStick;
  port: SimSerialPort;
  serial: SimSerial;
  store: StorageAdapter;
  dbName: string;
  settings: LoraSettings;
  of(type: LoraEventType): Record<string, any>[];
}

export interface NodeOpts {
  clock: VirtualClock;
  channel: SimRadioChannel;
  personality?: StickPersonality;
  adapter?: LoraSettings['adapter'];
  settings?: Partial<LoraSettings>;
  x?: number;
  keys?: KeyPair;
  db?: { name: string; store: StorageAdapter };
  chunkSplit?: number;
  connect?: boolean;
  grant?: boolean;
  locks?: LockManagerLike;
  /** share another node's stick and port (a second tab on the same computer) */
  sameStickAs?: TestNode;
}

export async function makeNode(o: NodeOpts): Promise<TestNode> {
  const keys = o.keys ?? generateKeyPair();
  const personality = o.personality ?? 'meshtastic';
  const adapter =
    o.adapter ??
    (personality === 'hnlora-sx1262'
      ? 'sx126x'
      : personality.startsWith('hnlora') || personality === 'wrong-fw'
        ? 'rfm95w'
        : 'meshtastic');
  const settings: LoraSettings = {
    ...LORA_DEFAULTS,
    enabled: true,
    adapter,
    scheduler: false,
    ...o.settings,
  };
  const stick =
    o.sameStickAs?.stick ??
    new SimStick({ id: `stick-${keys.nodeId.slice(8, 16)}`, personality, channel: o.channel, x: o.x ?? 0 });
  const port = o.sameStickAs?.port ?? new SimSerialPort(stick, { chunkSplit: o.chunkSplit });
  const serial = o.sameStickAs?.serial ?? new SimSerial([port]);
  const db = o.db ?? (await openDb());
  const events: TestNode['events'] = [];
  const notes: LoraNotification[] = [];
  const svc = await LoraService.create({
    self: keys.nodeId,
    settings: () => settings,
    kv: kvOver(db.store),
    clock: o.clock,
    emit: (type, data) => events.push({ type, data }),
    notify: (n) => notes.push(n),
    ports: serial,
    simulated: true,
    random: mulberry(keys.publicKey[0]!),
    beaconKey: beaconKeyFromSeed(keys.seed),
    locks: o.locks,
  });
  if (o.grant ?? true) await serial.requestPort();
  if (o.connect ?? true) {
    const p = svc.connect();
    await o.clock.advance(200); // wake wait of 100 ms and the replies
    await p;
  }
  return {
    keys,
    svc,
    events,
    notes,
    stick,
    port,
    serial,
    store: db.store,
    dbName: db.name,
    settings,
    of: (t) => events.filter((e) => e.type === t).map((e) => e.data),
  };
}

export function mulberry(seed: number): () => number {
  let a = seed >>> 0 || 1;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function world(o: { seed?: number; lossRate?: number; shadowing?: boolean } = {}) {
  const clock = new VirtualClock();
  const channel = new SimRadioChannel({
    clock,
    seed: o.seed ?? 7,
    lossRate: o.lossRate ?? 0,
    shadowing: o.shadowing ?? false,
  });
  return { clock, channel };
}

/** await a promise while the virtual clock runs (rejects stay rejects) */
export async function runFor<T>(clock: VirtualClock, p: Promise<T>, ms: number): Promise<T> {
  let settled = false;
  const wrapped = p.finally(() => {
    settled = true;
  });
  wrapped.catch(() => undefined);
  for (let t = 0; t < ms && !settled; t += 50) await clock.advance(50);
  return wrapped;
}

/** The Web Locks semantics used by the service (exclusive, `ifAvailable`), as in one browser profile. */
export function lockManager(): LockManagerLike & { held: Set<string> } {
  const held = new Set<string>();
  return {
    held,
    async request(name, _opts, cb) {
      if (held.has(name)) return cb(null);
      held.add(name);
      try {
        return await cb({ name, mode: 'exclusive' });
      } finally {
        held.delete(name);
      }
    },
  };
}

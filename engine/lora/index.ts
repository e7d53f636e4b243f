/**
 * M29 LoRa beacons — the module definition (docs/modules.md). The logic lives in service.ts and the
 * files beside it; this file maps the seven `experimental.lora.*` capabilities onto the service,
 * decides which of the ten events go into the signed, synced event log (see below), and wires the
 * kit's components (clock, kv, events) into the service's explicit dependencies.
 *
 * Events: all ten are delivered to `onLocalEvent` (the Radio view). The event log (which syncs to
 * the community) gets `lora.beacon.sent`, `lora.panic.sent`, `lora.duty_cycle.exhausted`,
 * `lora.duty_cycle.overridden` and `lora.peer.conflict`; `lora.panic.received` only with
 * `gossip_panic_received`, `lora.peer.verified` only with `gossip_peer_verified` (digest §12.3);
 * `lora.beacon.received`, `lora.rx.dropped` and `lora.peer.unknown` never (local-only, digest §5, §9).
 */
import * as C from '../core/constants.js';
import { bool, int, num, oneOf } from '../core/config-fields.js';
import { HnError } from '../core/errors.js';
import type { CallContext } from '../bus/types.js';
import type { CancelTimer, Clock as KitClock } from '../core/vocab.js';
import type { ModuleComponents, ModuleDefinition } from '../modules/module.js';
import { descriptor } from '../modules/registry.js';
import type { Clock } from './clock.js';
import type { LoraNotification } from './rx_pipeline.js';
import type { PortProvider } from './serial_bridge.js';
import { LORA_EVENT_TYPES } from './settings.js';
import {
  LORA_DEFAULTS,
  LoraService,
  type LockManagerLike,
  type LoraEventType,
  type LoraSettings,
  type LoraStatus,
} from './service.js';

/**
 * What the Radio view (View.svelte) reaches of a running module, by node id: the service, the
 * port provider (for the click that picks a stick), the service's clock, and the live events and
 * notifications. Present only while the module is on.
 */
export interface LoraHandle {
  readonly service: LoraService;
  readonly ports: PortProvider | null;
  readonly simulated: boolean;
  /** 'worker' when the stick is driven from the serial worker, 'main' on the main thread, null without Web Serial */
  readonly serialHost: 'worker' | 'main' | 'sim' | null;
  now(): number;
  /** the click handler: `requestPort` first (it needs the click's transient activation), then connect */
  connectStick(): Promise<LoraStatus>;
  /** every local event and every notification; returns the unsubscribe */
  subscribe(cb: (ev: LoraLiveEvent) => void): () => void;
  /** received panics not yet dismissed, newest first (at most 20) */
  readonly alerts: (LoraNotification & { at: number })[];
  dismiss(tag: string): void;
}
export type LoraLiveEvent =
  | { kind: 'event'; type: LoraEventType; data: Record<string, unknown> }
  | { kind: 'notify'; notification: LoraNotification; at: number };
export const LORA_HANDLES = new Map<string, LoraHandle>();

/** [lora] config section: seed §8 fields plus the digest's additions (lora-beacons digest §2). */
export const config = {
  enabled: bool(false),
  serial_baud: int(115200, 1200, 4_000_000),
  adapter: oneOf('meshtastic', ['meshtastic', 'rfm95w', 'sx126x']),
  region: oneOf('EU868', ['EU868', 'US915', 'AS923']),
  spreading_factor: int(9, 7, 12),
  bandwidth_khz: int(125, 125, 500),
  coding_rate_denom: int(5, 5, 8),
  tx_power_dbm: int(14, -10, 30),
  beacon_period_seconds: int(C.LORA_BEACON_PERIOD_SECONDS_DEFAULT, 10, 86400),
  panic_burst_count: int(C.LORA_PANIC_BURST_COUNT, 1, 10),
  panic_burst_gap_ms: int(C.LORA_PANIC_BURST_GAP_MS, 100, 60_000),
  rx_queue_max: int(C.LORA_RX_QUEUE_MAX, 16, 4096),
  peer_rx_max_per_minute: int(C.LORA_PEER_RX_MAX_PER_MINUTE, 1, 600),
  tofu_auto_accept: bool(false),
  duty_cycle_override_for_panic: bool(true),
  frequency_hz: int(868_100_000, 137_000_000, 1_020_000_000),
  sync_word: int(0x12, 0, 255),
  preamble_symbols: int(8, 6, 65535),
  /** EU868/AS923; US915 has none (the region wins) */
  duty_cycle_percent: num(1, 0.1, 100),
  beacon_jitter_fraction: num(0.1, 0, 0.5),
  meshtastic_channel: int(0, 0, 7),
  gossip_panic_received: bool(false),
  gossip_peer_verified: bool(false),
  /** 1 = 32-byte v1 beacon; 2 = authenticated 64-byte beacon (digest §12.1) */
  frame_version: int(1, 1, 2),
  accept_auth_frames: bool(true),
  scheduler: bool(true),
};

export const CAPABILITIES = [
  'experimental.lora.status',
  'experimental.lora.beacon.send',
  'experimental.lora.panic.send',
  'experimental.lora.peer.list',
  'experimental.lora.peer.verify',
  'experimental.lora.recent_beacons',
  'experimental.lora.duty_cycle',
] as const;

export const EVENT_TYPES = LORA_EVENT_TYPES;

const LOGGED: ReadonlySet<string> = new Set([
  'lora.beacon.sent',
  'lora.panic.sent',
  'lora.duty_cycle.exhausted',
  'lora.duty_cycle.overridden',
  'lora.peer.conflict',
]);

export interface LoraModuleOptions {
  /** `navigator.serial` (tab or worker), the simulated one, or null; default: `navigator.serial` if present */
  ports?: PortProvider | null;
  simulated?: boolean;
  /** every one of the ten events, local or logged (the Radio view listens here) */
  onLocalEvent?(type: LoraEventType, data: Record<string, unknown>): void;
  /** panic / TOFU / override notifications (the app shows them with the Notification API + a banner) */
  notify?(n: LoraNotification): void;
  /** 32-byte v2 beacon key of this node (frame_version 2) */
  beaconKey?: Uint8Array;
  /** Web Locks; default `navigator.locks` where it exists */
  locks?: LockManagerLike | null;
  /** the service instance, for the app's view and for tests */
  onService?(svc: LoraService | null): void;
}

/** The kit's clock (cancel functions) as the service's clock (handles + sleep). */
export function serviceClock(k: KitClock): Clock {
  return {
    now: () => k.now(),
    setTimeout: (fn, ms) => k.setTimeout(fn, ms),
    clearTimeout: (h) => (h as CancelTimer | undefined)?.(),
    sleep: (ms) => new Promise<void>((r) => void k.setTimeout(r, ms)),
  };
}

/** the Playwright runner's per-page binding (= SIM_BINDING of sim/page_bridge.ts, kept here so production never loads sim code) */
const SIM_BINDING = '__hearthnetLoraSim';

interface PortChoice {
  ports: PortProvider | null;
  clock?: Clock;
  host: LoraHandle['serialHost'];
}

/**
 * Where the stick's bytes come from: the Playwright runner's simulated stick when the page has its
 * binding (test-only, digest §10), else Web Serial — from the serial worker where the worker has
 * `navigator.serial` (Chromium), else on the main thread — else nothing (Firefox, Safari, Node).
 */
async function defaultPorts(warn: (msg: string, data: Record<string, unknown>) => void): Promise<PortChoice> {
  const g = globalThis as Record<string, unknown> & { navigator?: { serial?: PortProvider } };
  const binding = g[SIM_BINDING];
  if (typeof binding === 'function') {
    const { pageSim } = await import('./sim/page_bridge.js');
    const sim = await pageSim(binding as Parameters<typeof pageSim>[0]);
    return { ports: sim.ports, clock: sim.clock, host: 'sim' };
  }
  const serial = g.navigator?.serial;
  if (!serial) return { ports: null, host: null };
  try {
    const { workerPortProvider } = await import('../../workers/serial/client.js');
    const w = await workerPortProvider(serial);
    if (w) return { ports: w, host: 'worker' };
  } catch (e) {
    // no worker here: the main thread drives the port
    warn('serial worker unavailable; the page drives the port', { error: e as Error });
  }
  return { ports: serial, host: 'main' };
}

function settingsOf(c: ModuleComponents<typeof config>): LoraSettings {
  const s = c.config();
  return {
    ...LORA_DEFAULTS,
    ...s,
    adapter: s.adapter as LoraSettings['adapter'],
    region: s.region as LoraSettings['region'],
    duty_cycle_percent: s.region === 'US915' ? null : s.duty_cycle_percent,
    frame_version: s.frame_version === 2 ? 2 : 1,
  };
}

export function createLoraModule(o: LoraModuleOptions = {}): ModuleDefinition<'lora', typeof config> {
  return {
    name: 'lora',
    seedId: 'M29',
    config,
    capabilityNames: CAPABILITIES,
    events: EVENT_TYPES.map((type) => ({ type })),
    view: {
      title: 'Radio',
      blurb: 'Beacons and panic bursts through a USB LoRa stick over Web Serial (M29).',
      icon: '📡',
      load: () => import('./View.svelte'),
    },
    create(c) {
      let svc: LoraService | null = null;
      const listeners = new Set<(ev: LoraLiveEvent) => void>();
      const alerts: (LoraNotification & { at: number })[] = [];
      let now: () => number = () => c.clock.now();
      const live = (ev: LoraLiveEvent) => {
        for (const l of listeners) {
          try {
            l(ev);
          } catch (e) {
            // a view's listener never breaks the service
            c.log.warn('lora view listener threw', { error: e as Error });
          }
        }
      };
      const need = (): LoraService => {
        if (!svc) throw new HnError('experimental_disabled', 'the LoRa module is not running');
        return svc;
      };
      const emit = (type: LoraEventType, data: Record<string, unknown>) => {
        o.onLocalEvent?.(type, data);
        live({ kind: 'event', type, data });
        const s = c.config();
        const logged =
          LOGGED.has(type) ||
          (type === 'lora.panic.received' && s.gossip_panic_received) ||
          (type === 'lora.peer.verified' && s.gossip_peer_verified);
        if (logged)
          void c.events
            .append(type, data)
            .catch((e: unknown) => c.log.warn('lora event not logged', { type, code: (e as HnError).code }));
      };
      /**
       * `selfOrTrusted`: local calls always, remote callers only at trust `trusted` (peer.list and
       * recent_beacons reveal who is physically nearby, digest §3). The bus level is `member`; the
       * handler checks the remote caller's level.
       */
      const cap = (
        name: (typeof CAPABILITIES)[number],
        trust: 'member' | 'self' | 'selfOrTrusted',
        handler: (input: any) => unknown,
      ) => ({
        descriptor: descriptor(name, 'lora', {
          trust_required: trust === 'selfOrTrusted' ? 'member' : trust,
          timeout_seconds: 30,
          idempotent: trust === 'member',
        }),
        handler: async (input: unknown, ctx: CallContext) => {
          if (
            trust === 'selfOrTrusted' &&
            !ctx.isLocal &&
            ctx.callerLevel !== 'trusted' &&
            ctx.callerLevel !== 'anchor'
          )
            throw new HnError('unauthorized', `${name} needs trust level trusted for remote callers`);
          return handler(input ?? {});
        },
      });
      return {
        capabilities: () => [
          cap('experimental.lora.status', 'member', () => need().status()),
          cap('experimental.lora.beacon.send', 'self', (i) => need().beaconSend(i)),
          cap('experimental.lora.panic.send', 'self', () => need().panicSend()),
          cap('experimental.lora.peer.list', 'selfOrTrusted', (i) => need().peerList(i)),
          cap('experimental.lora.peer.verify', 'self', (i) => need().peerVerify(i)),
          cap('experimental.lora.recent_beacons', 'selfOrTrusted', (i) => need().recentBeacons(i)),
          cap('experimental.lora.duty_cycle', 'member', () => need().dutyCycle()),
        ],
        async start() {
          const choice: PortChoice =
            o.ports === undefined
              ? await defaultPorts((m, d) => c.log.warn(m, d))
              : { ports: o.ports, host: o.ports ? 'main' : null };
          const clock = choice.clock ?? serviceClock(c.clock);
          now = () => clock.now();
          const service = (svc = await LoraService.create({
            self: c.self,
            settings: () => settingsOf(c),
            kv: c.kv,
            clock,
            emit,
            notify: (n) => {
              const at = clock.now();
              if (n.kind === 'panic') {
                alerts.unshift({ ...n, at });
                alerts.splice(20);
              }
              live({ kind: 'notify', notification: n, at });
              if (o.notify) o.notify(n);
              else if (n.kind === 'panic') c.log.warn('LoRa panic received', { tag: n.tag });
            },
            ports: choice.ports,
            simulated: o.simulated ?? choice.host === 'sim',
            beaconKey: o.beaconKey,
            locks:
              o.locks === undefined
                ? ((globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks ?? null)
                : o.locks,
          }));
          c.events.subscribe((ev, source) => {
            if (source && ev.event_type === 'lora.peer.verified' && ev.author !== c.self) {
              const d = ev.data as { sender_hash?: unknown; node_id?: unknown };
              if (typeof d.sender_hash === 'string' && typeof d.node_id === 'string')
                void svc?.remotePeerVerified(d.sender_hash, d.node_id);
            }
          });
          await service.start();
          LORA_HANDLES.set(c.self, {
            service,
            ports: choice.ports,
            simulated: choice.host === 'sim',
            serialHost: choice.host,
            now: () => now(),
            async connectStick() {
              if (!choice.ports?.requestPort)
                throw new HnError('lora_hardware_unavailable', 'Web Serial is unavailable in this browser');
              const port = await choice.ports.requestPort({ filters: [] });
              return service.connect(port);
            },
            subscribe(cb) {
              listeners.add(cb);
              return () => listeners.delete(cb);
            },
            alerts,
            dismiss(tag) {
              const i = alerts.findIndex((a) => a.tag === tag);
              if (i >= 0) alerts.splice(i, 1);
            },
          });
          o.onService?.(service);
        },
        async stop() {
          const s = svc;
          svc = null;
          LORA_HANDLES.delete(c.self);
          listeners.clear();
          o.onService?.(null);
          await s?.stop();
        },
      };
    },
  };
}

/** The built-in definition: `navigator.serial` where it exists (desktop Chromium), else no hardware. */
export const lora = createLoraModule();
export default lora;

/**
 * M29 settings and shapes shared by the LoRa service and its module definition: the ten event types
 * (seed §3.4), LoraConfig with its defaults, the status shape and the service's explicit dependencies.
 */
import { LORA_PANIC_BURST_COUNT, LORA_PANIC_BURST_GAP_MS } from '../core/constants.js';
import type { NodeID } from '../core/types.js';
import type { Clock } from './clock.js';
import type { LoraKv } from './duty_cycle.js';
import type { LoraNotification } from './rx_pipeline.js';
import type { PortProvider } from './serial_bridge.js';
import type { AdapterName } from './adapters/types.js';

export const LORA_EVENT_TYPES = [
  'lora.beacon.sent',
  'lora.beacon.received',
  'lora.panic.sent',
  'lora.panic.received',
  'lora.peer.unknown',
  'lora.peer.verified',
  'lora.peer.conflict',
  'lora.duty_cycle.exhausted',
  'lora.duty_cycle.overridden',
  'lora.rx.dropped',
] as const;
export type LoraEventType = (typeof LORA_EVENT_TYPES)[number];

export const PANIC_COOLDOWN_MS = 60_000;

/** LoraConfig of the digest (spec §7 plus the digest's additions). */
export interface LoraSettings {
  enabled: boolean;
  serial_baud: number;
  adapter: AdapterName;
  region: 'EU868' | 'US915' | 'AS923';
  spreading_factor: number;
  bandwidth_khz: number;
  coding_rate_denom: number;
  tx_power_dbm: number;
  beacon_period_seconds: number;
  panic_burst_count: number;
  panic_burst_gap_ms: number;
  rx_queue_max: number;
  peer_rx_max_per_minute: number;
  tofu_auto_accept: boolean;
  duty_cycle_override_for_panic: boolean;
  frequency_hz: number;
  sync_word: number;
  preamble_symbols: number;
  /** percent; null = no limit (US915) */
  duty_cycle_percent: number | null;
  beacon_jitter_fraction: number;
  meshtastic_channel: number;
  gossip_panic_received: boolean;
  /** 1 = the 32-byte v1 frame; 2 = the authenticated 64-byte frame (digest §12.1) */
  frame_version: 1 | 2;
  /** accept v2 frames on receive (false = a strict v1 receiver) */
  accept_auth_frames: boolean;
  /** run the beacon scheduler (the periodic alive beacon) */
  scheduler: boolean;
}

export const LORA_DEFAULTS: LoraSettings = {
  enabled: false,
  serial_baud: 115200,
  adapter: 'meshtastic',
  region: 'EU868',
  spreading_factor: 9,
  bandwidth_khz: 125,
  coding_rate_denom: 5,
  tx_power_dbm: 14,
  beacon_period_seconds: 600,
  panic_burst_count: LORA_PANIC_BURST_COUNT,
  panic_burst_gap_ms: LORA_PANIC_BURST_GAP_MS,
  rx_queue_max: 256,
  peer_rx_max_per_minute: 20,
  tofu_auto_accept: false,
  duty_cycle_override_for_panic: true,
  frequency_hz: 868_100_000,
  sync_word: 0x12,
  preamble_symbols: 8,
  duty_cycle_percent: 1,
  beacon_jitter_fraction: 0.1,
  meshtastic_channel: 0,
  gossip_panic_received: false,
  frame_version: 1,
  accept_auth_frames: true,
  scheduler: true,
};

export type LoraState = 'disabled' | 'unavailable' | 'initializing' | 'ready' | 'error';

export interface LoraStatus {
  state: LoraState;
  error_code?: string;
  adapter: AdapterName;
  region: string;
  radio: {
    frequency_hz?: number;
    sf: number;
    bw_khz: number;
    cr: number;
    tx_power_dbm: number;
    preamble: number;
  };
  device_id?: string;
  firmware?: string;
  usb?: { vendorId?: number; productId?: number };
  web_serial_supported: boolean;
  simulated: boolean;
  tx_count: number;
  rx_count: number;
  rx_dropped: { queue: number; rate_limited: number; malformed: number; blocked: number; self: number };
  queue_depth: number;
  last_tx_at?: number;
  last_rx_at?: number;
}

export interface LoraServiceDeps {
  self: NodeID;
  settings: () => LoraSettings;
  kv: LoraKv;
  clock: Clock;
  emit(type: LoraEventType, data: Record<string, unknown>): void;
  notify?(n: LoraNotification): void;
  /** navigator.serial (or the simulated one); null where Web Serial does not exist */
  ports: PortProvider | null;
  simulated?: boolean;
  random?: () => number;
  /** v2 beacon key of this node (32 bytes); required for frame_version 2 */
  beaconKey?: Uint8Array;
  /** NodeIDs of community members, for tofu_auto_accept */
  members?: () => string[];
  /** another transport (mesh/relay) is up: sets GATEWAY on scheduled beacons */
  gatewayUp?: () => boolean;
  /** remembered port (USB ids) */
  remembered?: { usbVendorId?: number; usbProductId?: number };
  /** Web Locks (`navigator.locks`): only the tab holding "hn-lora-port" owns the stick */
  locks?: LockManagerLike | null;
}

/** The subset of the Web Locks API used here. */
export interface LockManagerLike {
  request(name: string, opts: { ifAvailable: true }, cb: (lock: unknown) => Promise<void>): Promise<unknown>;
}
export const PORT_LOCK_NAME = 'hn-lora-port';

/**
 * M29 LoRa radio — module definition. PLACEHOLDER: the seed capabilities are registered (while the
 * module is on) and answer `not_implemented`; the module's helper replaces the body of `create`.
 */
import * as C from '../core/constants.js';
import { bool, int, oneOf } from '../core/config-fields.js';
import type { ModuleDefinition } from '../modules/module.js';
import { notImplementedCapabilities } from '../modules/registry.js';

/** [lora] config section (seed §8; field list owned by the module digest). */
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

export const EVENT_TYPES = [
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

export const lora: ModuleDefinition<'lora', typeof config> = {
  name: 'lora',
  seedId: 'M29',
  config,
  capabilityNames: CAPABILITIES,
  events: EVENT_TYPES.map((type) => ({ type })),
  view: {
    title: 'LoRa radio',
    blurb: 'Beacons through a USB LoRa stick over Web Serial (M29).',
    icon: '📡',
  },
  create: () => ({
    capabilities: () => notImplementedCapabilities('lora', CAPABILITIES),
  }),
};

export default lora;

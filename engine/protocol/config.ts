/** M32's config section and seed names (leaf: the definition in index.ts/service.ts uses them). */
import { bool, int, str, strList } from '../core/config-fields.js';

/** [protocol] config section (seed §8, M32 digest). */
export const config = {
  enabled: bool(true),
  supported_versions: strList(['3.0.0'], /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/),
  default_announce_version: str('3.0.0', 64),
  announce_to_peers: bool(true),
  conformance_auto_run_on_startup: bool(false),
  registry_max_entries: int(4096, 1, 1_000_000),
};

export const CAPABILITIES = [
  'protocol.version.list',
  'protocol.self.describe',
  'protocol.conformance.report',
  'protocol.registry.list',
  'protocol.registry.announce',
] as const;

export const PROTOCOL_EVENT_TYPES = [
  'protocol.descriptor.announced',
  'protocol.registry.updated',
  'protocol.conformance.ran',
] as const;

/**
 * The protocol's machine-readable schemas (protocol/schemas, imported at build time) as the engine
 * uses them: capability request/response/stream schemas, event data schemas, tiers, error list.
 * The engine registers exactly these, so a name or field cannot drift from the protocol silently.
 */
import type { JsonSchema } from '../bus/schema.js';
import {
  CAPABILITY_SCHEMA_FILES,
  EVENT_SCHEMA_FILES,
  capabilitiesIndex,
  descriptorSchema,
  errorsList,
  eventsIndex,
  reportSchema,
} from './schemas.js';

export interface CapabilityIndexEntry {
  name: string;
  module: string;
  version: string;
  tier: 'stable' | 'provisional' | 'experimental';
  streaming: boolean;
  trust: string;
  feature_flag: string;
  description: string;
}

/** Drop annotation keywords that only document the file (and that Ajv's default draft would trip on). */
export function stripMeta(s: Record<string, unknown>): JsonSchema {
  const { $schema: _s, $id: _i, title: _t, $comment: _c, ...rest } = s;
  return rest;
}

/** Protocol version of the schema set (= protocol/VERSION; checked by a test). */
export const PROTOCOL_SCHEMA_VERSION: string = (capabilitiesIndex as { protocol_version: string })
  .protocol_version;

export const CAPABILITY_INDEX: readonly CapabilityIndexEntry[] = (
  capabilitiesIndex as { capabilities: CapabilityIndexEntry[] }
).capabilities;
const byName = new Map(CAPABILITY_INDEX.map((c) => [c.name, c]));
export const indexEntry = (name: string): CapabilityIndexEntry | undefined => byName.get(name);

const schemaCache = new Map<string, JsonSchema | null>();
function file(key: string): JsonSchema | null {
  if (!schemaCache.has(key)) {
    const f = CAPABILITY_SCHEMA_FILES[key] ?? EVENT_SCHEMA_FILES[key];
    schemaCache.set(key, f ? stripMeta(f) : null);
  }
  return schemaCache.get(key)!;
}

/** Request / response / stream schema of a capability, as the protocol defines it (null when absent). */
export function capabilitySchemas(name: string): {
  request: JsonSchema | null;
  response: JsonSchema | null;
  stream: JsonSchema | null;
} {
  return {
    request: file(`${name}.request`),
    response: file(`${name}.response`),
    stream: file(`${name}.stream`),
  };
}

/** Data schema of an event type (null for types the protocol does not define). */
export const eventSchema = (type: string): JsonSchema | null =>
  EVENT_SCHEMA_FILES[type] ? file(type) : null;

export const EVENT_INDEX: readonly { type: string; module: string; tier: string }[] = (
  eventsIndex as { events: { type: string; module: string; tier: string }[] }
).events;
export const ERROR_LIST: readonly { code: string; module: string; seed: boolean; http_status: number }[] = (
  errorsList as { errors: { code: string; module: string; seed: boolean; http_status: number }[] }
).errors;
export const DESCRIPTOR_SCHEMA: JsonSchema = stripMeta(descriptorSchema as Record<string, unknown>);
export const REPORT_SCHEMA: JsonSchema = stripMeta(reportSchema as Record<string, unknown>);

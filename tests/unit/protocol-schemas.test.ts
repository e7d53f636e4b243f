/** The protocol folder is the single source: the engine's names, schemas, tiers and codes must equal it. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createNode } from '../../engine/index.js';
import { SEED_CAPABILITIES, SEED_EVENT_TYPES } from '../../engine/core/catalogue.js';
import { BUILTIN_MODULES } from '../../engine/modules/builtin.js';
import { defaultConfig } from '../../engine/core/config.js';
import { ERROR_CODES } from '../../engine/core/errors.js';
import { CORE_EVENT_SCHEMAS } from '../../engine/identity/community.js';
import {
  CAPABILITY_INDEX,
  capabilitySchemas,
  ERROR_LIST,
  eventSchema,
  PROTOCOL_SCHEMA_VERSION,
  stripMeta,
} from '../../engine/protocol/catalog.js';
import { compareVersions, parseVersion } from '../../engine/protocol/version.js';
import { renderSchemaImports } from '../../tools/protocol/gen-schema-imports.js';

const P = 'protocol';
const read = (p: string) => readFileSync(join(P, p), 'utf8');
const VERSION = read('VERSION').trim();

describe('protocol artefacts', () => {
  it('VERSION equals the schema set, the config default and is listed as supported', () => {
    expect(VERSION).toBe('3.0.0');
    expect(PROTOCOL_SCHEMA_VERSION).toBe(VERSION);
    expect(defaultConfig().protocol.default_announce_version).toBe(VERSION);
    expect(defaultConfig().protocol.supported_versions).toContain(VERSION);
  });

  it('README links resolve', () => {
    const text = read('README.md');
    const links = [...text.matchAll(/\]\(([^)#]+)\)/g)].map((m) => m[1]!).filter((l) => !/^https?:/.test(l));
    expect(links.length).toBeGreaterThan(20);
    for (const l of links) expect(existsSync(resolve(P, l)), l).toBe(true);
    // every schema file and document is reachable from the README (directly or by its folder pattern)
    for (const f of [...readdirSync(join(P, 'core')), ...readdirSync(join(P, 'experimental'))])
      expect(text).toContain(f);
  });

  it('CHANGELOG headings are semver, strictly descending, newest = VERSION', () => {
    const heads = [...read('CHANGELOG.md').matchAll(/^## (\S+) — (\d{4}-\d{2}-\d{2})$/gm)].map((m) => m[1]!);
    expect(heads[0]).toBe(VERSION);
    const vs = heads.map((h) => parseVersion(h));
    expect(vs.every(Boolean)).toBe(true);
    for (let i = 1; i < vs.length; i++) expect(compareVersions(vs[i - 1]!, vs[i]!)).toBe(1);
  });

  it('every core/ and experimental/ document has protocol-version frontmatter ≤ VERSION and a tier', () => {
    for (const d of ['core', 'experimental'])
      for (const f of readdirSync(join(P, d))) {
        const m = /^---\nprotocol-version: (\S+)\ntier: (stable|provisional|experimental)\n---/.exec(
          read(`${d}/${f}`),
        );
        expect(m, f).not.toBeNull();
        expect(compareVersions(parseVersion(m![1])!, parseVersion(VERSION)!), f).toBeLessThanOrEqual(0);
      }
  });

  it('engine/protocol/schemas.ts is generated from the current protocol/schemas', () => {
    expect(readFileSync('engine/protocol/schemas.ts', 'utf8')).toBe(renderSchemaImports());
  });
});

describe('schema coverage', () => {
  it('capabilities.index ⊇ every seed capability, each with request and response schema', () => {
    const names = new Set(CAPABILITY_INDEX.map((c) => c.name));
    for (const caps of Object.values(SEED_CAPABILITIES))
      for (const c of caps) {
        expect(names.has(c), c).toBe(true);
        const s = capabilitySchemas(c);
        expect(s.request, c).not.toBeNull();
        expect(s.response, c).not.toBeNull();
      }
    for (const c of CAPABILITY_INDEX) if (c.name.startsWith('protocol.')) expect(c.tier).toBe('stable');
  });

  it('events/ ⊇ every seed event type and the core community.* ones (same schemas as the engine)', () => {
    for (const types of Object.values(SEED_EVENT_TYPES))
      for (const t of types) expect(eventSchema(t), t).not.toBeNull();
    for (const [t, s] of Object.entries(CORE_EVENT_SCHEMAS)) expect(eventSchema(t), t).toEqual(s);
    expect(eventSchema('protocol.conformance.ran')).toMatchObject({
      required: expect.arrayContaining(['report_cid', 'overall']),
    });
  });

  it('errors.json lists exactly the engine error codes, every seed §6 code marked seed', () => {
    expect(ERROR_LIST.map((e) => e.code).sort()).toEqual([...ERROR_CODES].sort());
    for (const c of [
      'experimental_disabled',
      'protocol_version_unknown',
      'protocol_suite_not_installed',
      'protocol_descriptor_invalid',
      'protocol_unsupported_capability',
      'tensor_too_large',
      'civdef_ack_rate_limited',
    ])
      expect(ERROR_LIST.find((e) => e.code === c)?.seed, c).toBe(true);
  });

  it('every capability the engine registers has the protocol request/response/stream schema and tier', async () => {
    const node = await createNode();
    for (const m of ['distributed_llm', 'moe', 'fedlearn', 'lora', 'evidence', 'civdef'] as const)
      await node.enable(m);
    // a module's declared extras beyond the seed (e.g. M30's VC export/import) are not protocol names
    const extras = new Set(BUILTIN_MODULES.flatMap((m) => m.extraCapabilityNames ?? []));
    const listed = node.bus.list().filter((c) => !extras.has(c.name));
    expect(listed.length).toBe(CAPABILITY_INDEX.length);
    for (const c of listed) {
      const d = node.bus.descriptor(c.ref)!;
      const idx = CAPABILITY_INDEX.find((x) => x.name === c.name);
      expect(idx, c.name).toBeDefined();
      const s = capabilitySchemas(c.name);
      expect(d.request_schema, c.name).toEqual(s.request);
      expect(d.response_schema, c.name).toEqual(s.response);
      expect(d.stream_schema !== null, c.name).toBe(idx!.streaming);
      expect(d.stability === 'stable' ? 'stable' : d.stability, c.name).toBe(idx!.tier);
    }
    await node.close();
  });

  it('stripMeta only drops annotations', () => {
    expect(stripMeta({ $schema: 'x', $id: 'y', title: 't', $comment: 'c', type: 'object' })).toEqual({
      type: 'object',
    });
    expect(dirname('a/b')).toBe('a');
  });
});

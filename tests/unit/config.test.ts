import { describe, expect, it } from 'vitest';
import {
  configFromToml,
  configToToml,
  defaultConfig,
  MODULE_SECTIONS,
  resolveConfig,
} from '../../engine/core/config.js';
import { createNode } from '../../engine/index.js';

describe('config', () => {
  it('Phase-3 modules default off, protocol on', () => {
    const c = defaultConfig();
    for (const m of MODULE_SECTIONS) expect(c[m].enabled, m).toBe(m === 'protocol');
  });
  it('defaults → TOML → import is deep-equal', () => {
    const c = defaultConfig();
    expect(configFromToml(configToToml(c)).config).toEqual(c);
    const changed = resolveConfig({
      moe: { enabled: true, top_k_default: 5 },
      transport: { ice_servers: [{ urls: 'stun:stun.example:3478' }] },
    }).config;
    expect(configFromToml(configToToml(changed)).config).toEqual(changed);
  });
  it('invalid TOML → invalid_toml; a bad value → invalid_field naming the path', () => {
    expect(() => configFromToml('[transport\nmax_links = 3')).toThrow(
      expect.objectContaining({ code: 'invalid_toml' }),
    );
    expect(() => configFromToml('[transport]\nmax_links = "x"')).toThrow(
      expect.objectContaining({ code: 'invalid_field', field: 'transport.max_links' }),
    );
    expect(() => resolveConfig({ transport: { max_links: 0 } })).toThrow(
      expect.objectContaining({ field: 'transport.max_links' }),
    );
    expect(() => resolveConfig({ lora: { region: 'MARS' } })).toThrow(
      expect.objectContaining({ field: 'lora.region' }),
    );
    expect(() => resolveConfig({ relay: { urls: ['ftp://x'] } })).toThrow(
      expect.objectContaining({ field: 'relay.urls[0]' }),
    );
    expect(() => resolveConfig({ bus: { local_load_threshold: 0 } })).toThrow(
      expect.objectContaining({ field: 'bus.local_load_threshold' }),
    );
  });
  it('unknown sections and keys are warnings, not errors', () => {
    const r = configFromToml('[future]\nx = 1\n[moe]\nenabled = true\nnew_knob = 2\n');
    expect(r.config.moe.enabled).toBe(true);
    expect(r.warnings).toEqual(['unknown section [future] ignored', 'unknown key moe.new_knob ignored']);
  });
  it('distributed_llm without tensor_transport is invalid', () => {
    expect(() => resolveConfig({ distributed_llm: { enabled: true } })).toThrow(
      expect.objectContaining({ code: 'invalid_field', field: 'distributed_llm.enabled' }),
    );
    expect(
      resolveConfig({ distributed_llm: { enabled: true }, tensor_transport: { enabled: true } }).config
        .distributed_llm.enabled,
    ).toBe(true);
  });
  it('is frozen, persisted, and a failed import changes nothing', async () => {
    const name = `cfg-${Math.random()}`;
    const n = await createNode({ name });
    expect(Object.isFrozen(n.config.moe)).toBe(true);
    await n.setConfig({ moe: { top_k_default: 7 } });
    await expect(n.importConfigToml('[moe]\ntop_k_default = -1')).rejects.toMatchObject({
      code: 'invalid_field',
    });
    expect(n.config.moe.top_k_default).toBe(7);
    const diff = await n.importConfigToml(
      configToToml(resolveConfig({ evidence: { enabled: true } }).config),
      { dryRun: true },
    );
    expect(diff).toEqual(
      expect.arrayContaining([
        { field: 'evidence.enabled', from: false, to: true },
        { field: 'moe.top_k_default', from: 7, to: 3 },
      ]),
    );
    expect(n.config.evidence.enabled).toBe(false);
    await n.close();
    const again = await createNode({ name });
    expect(again.config.moe.top_k_default).toBe(7);
  });
});

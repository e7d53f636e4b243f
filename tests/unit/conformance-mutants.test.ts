/**
 * Mutation run, the three mutants the issue names (ignores BYE, accepts any signature, wrong CID
 * bytes), one module-family mutant (a NaN delta accepted, caught by VEC-15) plus a stale patch: each broken engine is built by the loader hook in a fresh child process
 * and must be caught by a failing case; a patch that no longer applies is reported STALE, never caught.
 * (The full catalogue runs in `npm run bench -- x09` / `npm run conformance -- --mutants`.)
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MUTANTS } from '../../conformance/mutants/catalogue.js';
import { runMutants } from '../../conformance/mutants/run.js';

describe('mutants', () => {
  it('the catalogue holds ≥ 30 mutants covering every core section and X08, ids unique', () => {
    expect(MUTANTS.length).toBeGreaterThanOrEqual(30);
    expect(new Set(MUTANTS.map((m) => m.id)).size).toBe(MUTANTS.length);
    for (const s of [
      'core/identity',
      'core/events',
      'core/bus',
      'core/transport',
      'core/protocol',
      'experimental/tensor_transport',
    ])
      expect(MUTANTS.filter((m) => m.section === s).length, s).toBeGreaterThanOrEqual(3);
    // the module families run through harness op vector (VEC-12..VEC-15) have their own mutants
    for (const fam of ['lora', 'moe', 'fedlearn'])
      expect(
        MUTANTS.filter((m) => m.id.startsWith(`${fam}-`) && m.section === 'core/vectors').length,
        fam,
      ).toBeGreaterThanOrEqual(3);
    // and module sections catch their own over the bus
    for (const s of ['experimental/civdef', 'experimental/lora', 'experimental/fedlearn'])
      expect(MUTANTS.filter((m) => m.section === s).length, s).toBeGreaterThanOrEqual(1);
  });

  it('every patch still applies to the engine source (a moved line must be followed here, not go STALE)', () => {
    const stale = MUTANTS.flatMap((m) =>
      m.patches.filter((p) => !readFileSync(p.file, 'utf8').includes(p.find)).map((p) => `${m.id} ${p.file}`),
    );
    expect(stale).toEqual([]);
  });

  it('ignoring BYE, accepting any signature and hashing the wrong CID bytes are caught; a stale patch is not', async () => {
    const pick = [
      'x08-ignore-bye',
      'verify-any-signature',
      'descriptor-cid-wrong-bytes',
      'fedlearn-delta-nan-accepted',
    ];
    const stale = {
      id: 'stale-demo',
      section: 'core/identity',
      title: 'patch text that is not in the file',
      patches: [{ file: 'engine/core/canonical.ts', find: 'this text is not in canonical.ts', replace: '' }],
    };
    const r = await runMutants({
      mutants: [...MUTANTS.filter((m) => pick.includes(m.id)), stale],
      parallel: 2,
    });
    expect(r.baseline.failed).toEqual([]);
    const by = Object.fromEntries(r.results.map((x) => [x.id, x]));
    expect(by['x08-ignore-bye']!.caught_by).toContain('X08-20');
    expect(by['verify-any-signature']!.caught).toBe(true);
    expect(by['descriptor-cid-wrong-bytes']!.caught_by).toContain('EV-04');
    // a module family's mutant is caught by its vectors run through the harness
    expect(by['fedlearn-delta-nan-accepted']!.caught_by).toContain('VEC-15');
    expect(by['stale-demo']!.caught).toBe(false);
    expect(by['stale-demo']!.stale).toMatch(/canonical\.ts/);
    expect(r.survivors).toEqual(['stale-demo']);
  }, 600_000);
});

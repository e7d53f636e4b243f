/** §7.3 region and role prefix matching (fast-check), target parsing, NRW role schema. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  isRegionCode,
  matchesTarget,
  parseTarget,
  regionsOverlap,
  segmentPrefix,
} from '../../engine/civdef/target.js';
import { nrwAdapter } from '../../engine/civdef/regions/nrw.js';

const seg = fc.stringMatching(/^[A-Za-zÄÖÜäöüß0-9-]{1,8}$/);
const code = fc.array(seg, { minLength: 2, maxLength: 8 }).map((s) => s.join('.'));

describe('M31 targets', () => {
  it('the digest examples', () => {
    expect(segmentPrefix('DE.NRW.Kleve', 'DE.NRW.Kleve.Issum')).toBe(true);
    expect(segmentPrefix('DE.NRW.Kleve', 'DE.NRW.Wesel')).toBe(false);
    expect(segmentPrefix('DE.NRW.Kleve', 'DE.NRW.Klever')).toBe(false);
    expect(segmentPrefix('DE.NRW.Kleve', 'DE.NRW.Kleve')).toBe(true);
    expect(segmentPrefix('DE.NRW.Kleve.THW', 'DE.NRW.Kleve.THW.Helfer')).toBe(true);
  });

  it('property: prefix ⇔ the segments of one start the segments of the other', () => {
    fc.assert(
      fc.property(code, code, (a, b) => {
        const A = a.split('.');
        const B = b.split('.');
        const expected = A.length <= B.length && A.every((s, i) => s === B[i]);
        expect(segmentPrefix(a, b)).toBe(expected);
        expect(regionsOverlap(a, b)).toBe(regionsOverlap(b, a));
      }),
    );
  });

  it('property: extending a code by segments keeps the prefix; appending characters to the last segment breaks it', () => {
    fc.assert(
      fc.property(code, fc.array(seg, { minLength: 1, maxLength: 3 }), seg, (a, more, tail) => {
        expect(segmentPrefix(a, [a, ...more].join('.'))).toBe(true);
        expect(segmentPrefix(a, a + tail)).toBe(false);
      }),
    );
  });

  it('property: malformed targets are civdef_alert_target_invalid, never another error', () => {
    fc.assert(
      fc.property(fc.anything(), (t) => {
        try {
          parseTarget(t);
        } catch (e) {
          expect((e as { code: string }).code).toBe('civdef_alert_target_invalid');
        }
      }),
      { numRuns: 300 },
    );
    for (const bad of ['DE', 'DE..NRW', 'DE.NRW.Kle ve', 'DE.NRW.' + 'x'.repeat(130), 'a.b.c.d.e.f.g.h.i'])
      expect(isRegionCode(bad)).toBe(false);
    expect(() =>
      parseTarget({ region: 'DE.NRW', bbox: [1, 2, 3], roles: [], channels: ['local'] }),
    ).toThrow();
    expect(() =>
      parseTarget({ region: 'DE.NRW', bbox: [1, 2, 3, 200], roles: [], channels: ['local'] }),
    ).toThrow();
    expect(() =>
      parseTarget({ region: 'DE.NRW', bbox: null, roles: Array(17).fill('DE.NRW.X'), channels: ['local'] }),
    ).toThrow();
    expect(() => parseTarget({ region: 'DE.NRW', bbox: null, roles: [], channels: ['sms'] })).toThrow();
  });

  it('matching: home region either way, bbox with a position, roles', () => {
    const t = parseTarget({
      region: 'DE.NRW.Kleve',
      bbox: [6.3, 51.5, 6.5, 51.6],
      roles: [],
      channels: ['local'],
    });
    expect(matchesTarget(t, { home_region: 'DE.NRW.Kleve.Issum', roles: [] })).toBe(true);
    expect(matchesTarget(t, { home_region: 'DE.NRW', roles: [] })).toBe(true);
    expect(matchesTarget(t, { home_region: 'DE.NRW.Wesel', roles: [] })).toBe(false);
    expect(
      matchesTarget(t, { home_region: 'DE.NRW.Kleve', position: { lon: 7, lat: 51.55 }, roles: [] }),
    ).toBe(false);
    const r = parseTarget({
      region: 'DE.NRW.Kleve',
      bbox: null,
      roles: ['DE.NRW.Kleve.THW'],
      channels: ['local'],
    });
    expect(matchesTarget(r, { home_region: 'DE.NRW.Kleve', roles: ['DE.NRW.Kleve.THW.Helfer'] })).toBe(true);
    expect(matchesTarget(r, { home_region: 'DE.NRW.Kleve', roles: ['DE.NRW.Kleve.DRK.Sanitaeter'] })).toBe(
      false,
    );
  });

  it('NRW adapter: role schema, embedded region, caps', () => {
    const ad = nrwAdapter([]);
    expect(ad.roleSpec('DE.NRW.Kleve.Issum.Feuerwehr.Wehrleiter')).toMatchObject({
      max_severity: 'emergency',
      rank: 30,
      region: 'DE.NRW.Kleve.Issum',
    });
    expect(ad.roleSpec('DE.NRW.Kleve.KatS.Stabsleiter')).toMatchObject({ max_severity: 'extreme', rank: 40 });
    expect(ad.roleSpec('DE.NRW.Kleve.DRK.Ortsverein.Bereitschaftsleiter')).toMatchObject({
      max_severity: 'warning',
    });
    expect(ad.roleSpec('DE.NRW.Kleve.Feuerwehr.Wehrleiter')).toBeNull(); // Wehrleiter is per Gemeinde
    expect(ad.validateRole({ role: 'DE.NRW.Kleve.THW.Helfer', region: 'DE.NRW.Wesel' })).toBe(false);
    expect(ad.regionInfo('DE.NRW.Kleve')).toMatchObject({ ars: '05154' });
    expect(ad.regionInfo('DE.BY')).toBeNull();
  });
});

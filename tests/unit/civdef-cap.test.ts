/** CAP 1.2 export validated by a real XSD validator (xmllint-wasm, libxml2) against the OASIS schema;
 * golden files; import of the three OASIS examples; the NINA JSON shape; drills never Actual. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { validateXML } from 'xmllint-wasm';
import { keyPairFromSeed, signObject } from '../../engine/identity/identity.js';
import { type Alert, type AlertBody, type Cancel } from '../../engine/civdef/alert.js';
import { fromCapXml, parseXml, toCapXml, toNinaJson } from '../../engine/civdef/cap.js';

const FIX = '../shared/fixtures/cap/';
const XSD = readFileSync(FIX + 'CAP-v1.2.xsd', 'utf8');
const kp = keyPairFromSeed(new Uint8Array(32).fill(7));
const GOLD = 'tests/fixtures/civdef/';

async function xsdValid(xmls: string[]) {
  const r = await validateXML({
    xml: xmls.map((contents, i) => ({ fileName: `a${i}.xml`, contents })),
    schema: { fileName: 'CAP-v1.2.xsd', contents: XSD },
  });
  return r;
}

function alertOf(over: Partial<AlertBody> = {}): Alert {
  const body: AlertBody = {
    alert_id: '01JGZ5Y5K3W3C0Q0S8R6X4T2M1',
    cert_id: 'A'.repeat(52),
    severity: 'warning',
    title: 'Hochwasser <Niers> & "Issum"',
    body: 'Die Niers tritt über die Ufer.\nBitte meiden Sie die Uferwege.',
    target: {
      region: 'DE.NRW.Kleve.Issum',
      bbox: [6.4, 51.5, 6.5, 51.56],
      roles: [],
      channels: ['local', 'push'],
    },
    instructions: ['Keller räumen', 'Radio einschalten'],
    expires_at: '2026-03-02T12:00:00Z',
    evidence_claim: null,
    correlation_id: null,
    category: 'Met',
    status: 'actual',
    event: 'Hochwasser',
    urgency: null,
    certainty: 'Likely',
    language: 'de-DE',
    published_at: '2026-03-01T12:00:00Z',
    publisher: kp.nodeId,
    publisher_role: 'DE.NRW.Kleve.Issum.Feuerwehr.Wehrleiter',
    publisher_cert: 'A'.repeat(52),
    ...over,
  };
  return signObject(kp, body as never) as unknown as Alert;
}

describe('M31 CAP 1.2', () => {
  it('the validator is real: the OASIS examples validate, a broken alert does not', async () => {
    const ex = [
      'oasis_a1_homeland_security.xml',
      'oasis_a2_severe_thunderstorm.xml',
      'oasis_a4_amber_alert.xml',
    ].map((f) => readFileSync(FIX + f, 'utf8'));
    expect((await xsdValid(ex)).valid).toBe(true);
    const broken = ex[0]!.replace('<status>Actual</status>', '<status>Real</status>');
    expect((await xsdValid([broken])).valid).toBe(false);
    const wrongOrder = toCapXml({ alert: alertOf() }).replace(
      /(<identifier>.*?<\/identifier>\n)(\s*<sender>.*?<\/sender>\n)/,
      '$2$1',
    );
    expect((await xsdValid([wrongOrder])).valid).toBe(false);
  });

  it('§7.14 golden publish and cancel; valid per XSD; -00:00 times; closed polygon', async () => {
    const a = alertOf();
    const cancel = signObject(kp, {
      alert_id: a.alert_id,
      reason: 'Entwarnung: Pegel sinkt',
      cancelled_at: '2026-03-01T15:00:00Z',
      by: kp.nodeId,
      by_cert: 'A'.repeat(52),
    }) as unknown as Cancel;
    const pub = toCapXml({ alert: a });
    const can = toCapXml({ alert: a }, cancel);
    expect(pub).toBe(readFileSync(GOLD + 'publish.cap.xml', 'utf8'));
    expect(can).toBe(readFileSync(GOLD + 'cancel.cap.xml', 'utf8'));
    const r = await xsdValid([pub, can]);
    expect(r.errors).toEqual([]);
    expect(pub).toContain('<sent>2026-03-01T12:00:00-00:00</sent>');
    expect(pub).toContain('<polygon>51.5,6.4 51.56,6.4 51.56,6.5 51.5,6.5 51.5,6.4</polygon>');
    expect(pub).toContain('<value>05154</value>');
    expect(can).toContain('<msgType>Cancel</msgType>');
    expect(can).toContain(`<references>${kp.nodeId},${a.alert_id},2026-03-01T12:00:00-00:00</references>`);
  });

  it('drills: Exercise and Test stay Exercise/Test in CAP and NINA, restricted alerts are Restricted', async () => {
    for (const status of ['exercise', 'test'] as const) {
      const a = alertOf({
        status,
        target: { region: 'DE.NRW.Kleve', bbox: null, roles: ['DE.NRW.Kleve.THW'], channels: ['local'] },
      });
      const x = toCapXml({ alert: a });
      expect(x).toContain(`<status>${status === 'exercise' ? 'Exercise' : 'Test'}</status>`);
      expect(x).not.toContain('<status>Actual</status>');
      expect(x).toContain('<scope>Restricted</scope>');
      expect((await xsdValid([x])).valid).toBe(true);
      expect(toNinaJson({ alert: a }).status).not.toBe('Actual');
    }
  });

  it('property: every valid alert gives schema-valid XML whose fields round-trip through the importer', async () => {
    const text = (max: number) =>
      fc
        .string({ unit: fc.constantFrom(...'abcÄöüß <>&"\'xyz0129'.split('')), minLength: 1, maxLength: max })
        .filter((s) => s.trim().length > 0 && s === s.trim());
    const arb = fc.record({
      title: text(80),
      body: text(300),
      severity: fc.constantFrom('info', 'advisory', 'warning', 'emergency', 'extreme' as const),
      status: fc.constantFrom('actual', 'exercise', 'test' as const),
      category: fc.constantFrom('Met', 'Fire', 'CBRNE', 'Safety', 'Infra' as const),
      bbox: fc.option(
        fc.tuple(
          fc.double({ min: 5.9, max: 6.2, noNaN: true }),
          fc.double({ min: 51.4, max: 51.6, noNaN: true }),
        ),
        { nil: null },
      ),
    });
    const samples = fc.sample(arb, 12);
    const xmls = samples.map((s) => {
      const a = alertOf({
        title: s.title,
        body: s.body,
        severity: s.severity as never,
        status: s.status as never,
        category: s.category as never,
        event: s.title.slice(0, 64),
        target: {
          region: 'DE.NRW.Kleve.Issum',
          bbox: s.bbox ? [s.bbox[0], s.bbox[1], s.bbox[0] + 0.1, s.bbox[1] + 0.1] : null,
          roles: [],
          channels: ['local'],
        },
      });
      const x = toCapXml({ alert: a });
      const back = fromCapXml(x).drafts[0]!;
      expect(back.title).toBe(a.title);
      expect(back.body).toBe(a.body);
      expect(back.severity).toBe(a.severity);
      expect(back.status).toBe(a.status);
      expect(back.category).toBe(a.category);
      expect((back.target as { region: string }).region).toBe('DE.NRW.Kleve.Issum');
      if (a.target.bbox)
        (back.target as { bbox: number[] }).bbox.forEach((v, i) =>
          expect(v).toBeCloseTo(a.target.bbox![i]!, 9),
        );
      return x;
    });
    const r = await xsdValid(xmls);
    expect(r.errors).toEqual([]);
  });

  it('imports the three OASIS examples into drafts without losing the modelled fields', () => {
    const a1 = fromCapXml(readFileSync(FIX + 'oasis_a1_homeland_security.xml', 'utf8'), { region: 'DE.NRW' });
    expect(a1).toMatchObject({ identifier: '43b080713727', sender: 'hsas@dhs.gov', msgType: 'Alert' });
    expect(a1.drafts[0]).toMatchObject({
      severity: 'emergency',
      title: 'Homeland Security Sets Code ORANGE',
      category: 'Security',
      event: 'Homeland Security Advisory System Update',
      urgency: 'Immediate',
      certainty: 'Likely',
      status: 'actual',
    });
    expect(a1.drafts[0]!.body).toMatch(/^The Department of Homeland Security has elevated.*terrorism\.$/s);
    const a2 = fromCapXml(readFileSync(FIX + 'oasis_a2_severe_thunderstorm.xml', 'utf8'), {
      region: 'DE.NRW',
    });
    const d2 = a2.drafts[0]!;
    expect(d2).toMatchObject({
      category: 'Met',
      event: 'SEVERE THUNDERSTORM',
      urgency: 'Immediate',
      certainty: 'Observed',
      title: 'SEVERE THUNDERSTORM WARNING',
      expires_at: '2003-06-17T23:00:00Z',
    });
    expect(d2.instructions).toEqual(['TAKE COVER IN A SUBSTANTIAL SHELTER UNTIL THE STORM PASSES.']);
    expect((d2.target as { bbox: number[] }).bbox).toEqual([-120.14, 38.34, -119.74, 38.62]);
    const a4 = fromCapXml(readFileSync(FIX + 'oasis_a4_amber_alert.xml', 'utf8'), { region: 'DE.NRW' });
    expect(a4.drafts.map((d) => d.language)).toEqual(['en-US', 'es-US']);
    expect(a4.drafts[1]).toMatchObject({
      event: 'Abducción de Niño',
      category: 'Rescue',
      title: 'Alerta Amber en el condado de Los Ángeles',
    });
  });

  it('bad XML → bad_request (DTD, mismatched tags, Draft status)', () => {
    expect(() => parseXml('<!DOCTYPE x [<!ENTITY a "b">]><x/>')).toThrow(
      expect.objectContaining({ code: 'bad_request' }),
    );
    expect(() => parseXml('<a><b></a>')).toThrow(expect.objectContaining({ code: 'bad_request' }));
    expect(() => parseXml('<a>&bogus;</a>')).toThrow(expect.objectContaining({ code: 'bad_request' }));
    const draft = readFileSync(FIX + 'oasis_a1_homeland_security.xml', 'utf8').replace(
      '<status>Actual</status>',
      '<status>Draft</status>',
    );
    expect(() => fromCapXml(draft)).toThrow(expect.objectContaining({ code: 'bad_request' }));
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        try {
          parseXml(s);
        } catch (e) {
          expect((e as { code: string }).code).toBe('bad_request');
        }
      }),
      { numRuns: 300 },
    );
  });

  it('NINA warnings/{id}.json shape matches the fixture sample keys', () => {
    const sample = JSON.parse(readFileSync(FIX + 'nina_warning_mowas_example.json', 'utf8'));
    const ours = toNinaJson({ alert: alertOf() });
    for (const k of ['identifier', 'sender', 'sent', 'status', 'msgType', 'scope', 'code', 'info'])
      expect(ours).toHaveProperty(k);
    const infoKeys = [
      'language',
      'category',
      'event',
      'urgency',
      'severity',
      'certainty',
      'headline',
      'description',
      'parameter',
      'area',
    ];
    for (const k of infoKeys) {
      expect(sample.info[0]).toHaveProperty(k);
      expect((ours.info as Record<string, unknown>[])[0]).toHaveProperty(k);
    }
    expect(Array.isArray((ours.info as any)[0].category)).toBe(true);
    expect((ours.info as any)[0].description).toContain('<br/>');
  });
});

/**
 * OASIS CAP 1.2 export and import (digest §4.10) and the JSON shape of the NINA warning API
 * (`warnings/{id}.json`). Pure functions; no DOM. Elements are written in the XSD's sequence order;
 * times use `-00:00` (CAP forbids `Z`); integrity comes from the embedded signed JSON resource.
 */
import { sha1 } from '@noble/hashes/legacy.js';
import { base64 } from '@scure/base';
import { canonical } from '../core/canonical.js';
import { toHex } from '../core/encoding.js';
import { HnError } from '../core/errors.js';
import type { Alert, AlertEnvelope, Cancel } from './alert.js';
import { nrwAdapter, type Severity } from './regions/nrw.js';

export const CAP_NS = 'urn:oasis:names:tc:emergency:cap:1.2';
export const CAP_CODE = 'HearthNet-civdef-1';
export const RESOURCE_MIME = 'application/vnd.hearthnet.civdef-alert+json';

const esc = (s: string): string =>
  s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
/** `2026-03-01T12:00:00Z` → `2026-03-01T12:00:00-00:00` */
export const capTime = (iso: string): string => iso.replace(/Z$/, '-00:00');
const STATUS = { actual: 'Actual', exercise: 'Exercise', test: 'Test' } as const;
const SEVERITY: Record<Severity, string> = {
  extreme: 'Extreme',
  emergency: 'Severe',
  warning: 'Moderate',
  advisory: 'Minor',
  info: 'Minor',
};
const URGENCY: Record<Severity, string> = {
  extreme: 'Immediate',
  emergency: 'Immediate',
  warning: 'Expected',
  advisory: 'Future',
  info: 'Unknown',
};

const el = (name: string, value: string | null | undefined, ind = '  '): string =>
  value === null || value === undefined ? '' : `${ind}<${name}>${esc(value)}</${name}>\n`;

function roleDisplay(role: string): string {
  const segs = role.split('.');
  return segs.slice(2).join(' ');
}

function infoXml(a: Alert): string {
  const ad = nrwAdapter([]);
  const region = ad.regionInfo(a.target.region);
  const json = canonical(a);
  const I = '    ';
  const J = '      ';
  let x = '  <info>\n';
  x += el('language', a.language, I);
  x += el('category', a.category, I);
  x += el('event', a.event, I);
  x += el('urgency', a.urgency ?? URGENCY[a.severity], I);
  x += el('severity', SEVERITY[a.severity], I);
  x += el('certainty', a.certainty ?? 'Unknown', I);
  if (a.target.roles.length) x += el('audience', a.target.roles.join(', '), I);
  x += el('effective', capTime(a.published_at), I);
  x += el('expires', capTime(a.expires_at), I);
  x += el('senderName', roleDisplay(a.publisher_role), I);
  x += el('headline', a.title, I);
  x += el('description', a.body, I);
  if (a.instructions.length) x += el('instruction', a.instructions.join('\n'), I);
  const params: [string, string | null][] = [
    ['hearthnet:severity', a.severity],
    ['hearthnet:publisher_cert', a.publisher_cert],
    ['hearthnet:evidence_claim', a.evidence_claim],
    ['hearthnet:correlation_id', a.correlation_id],
    ['hearthnet:region', a.target.region],
  ];
  for (const [k, v] of params)
    if (v !== null) x += `${I}<parameter>\n${el('valueName', k, J)}${el('value', v, J)}${I}</parameter>\n`;
  x += `${I}<resource>\n`;
  x += el('resourceDesc', 'HearthNet signed alert (JCS)', J);
  x += el('mimeType', RESOURCE_MIME, J);
  x += el('size', String(json.length), J);
  x += el('derefUri', base64.encode(json), J);
  x += el('digest', toHex(sha1(json)), J);
  x += `${I}</resource>\n`;
  x += `${I}<area>\n`;
  x += el('areaDesc', `${region?.name ?? a.target.region} (${a.target.region})`, J);
  if (a.target.bbox) {
    const [w, s, e, n] = a.target.bbox;
    x += el('polygon', `${s},${w} ${n},${w} ${n},${e} ${s},${e} ${s},${w}`, J);
  }
  const K = '        ';
  if (region?.ars)
    x += `${J}<geocode>\n${el('valueName', 'ARS', K)}${el('value', region.ars, K)}${J}</geocode>\n`;
  x += `${J}<geocode>\n${el('valueName', 'hearthnet:region', K)}${el('value', a.target.region, K)}${J}</geocode>\n`;
  x += `${I}</area>\n`;
  x += '  </info>\n';
  return x;
}

/** CAP 1.2 XML of an alert, or of its cancel when `cancel` is given. */
export function toCapXml(envelope: Pick<AlertEnvelope, 'alert'>, cancel?: Cancel): string {
  const a = envelope.alert;
  const restricted = a.target.roles.length > 0;
  let x = `<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="${CAP_NS}">\n`;
  x += el('identifier', cancel ? `${a.alert_id}.cancel` : a.alert_id);
  x += el('sender', cancel ? cancel.by : a.publisher);
  x += el('sent', capTime(cancel ? cancel.cancelled_at : a.published_at));
  x += el('status', STATUS[a.status]);
  x += el('msgType', cancel ? 'Cancel' : 'Alert');
  x += el('source', a.publisher_role);
  x += el('scope', restricted ? 'Restricted' : 'Public');
  if (restricted) x += el('restriction', `roles: ${a.target.roles.join(' ')}`);
  x += el('code', CAP_CODE);
  if (cancel) {
    x += el('note', cancel.reason);
    x += el('references', `${a.publisher},${a.alert_id},${capTime(a.published_at)}`);
  }
  x += infoXml(a);
  x += '</alert>\n';
  return x;
}

// ------------------------------------------------------------------ a small XML reader (CAP subset)
export interface XNode {
  name: string;
  children: XNode[];
  text: string;
}
const ENT: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
function unesc(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (m, e: string) => {
    if (e[0] === '#') {
      const cp = e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      if (!Number.isFinite(cp) || cp > 0x10ffff) throw new HnError('bad_request', 'bad character reference');
      return String.fromCodePoint(cp);
    }
    if (!(e in ENT)) throw new HnError('bad_request', `unknown entity ${m}`);
    return ENT[e]!;
  });
}

/** Parse well-formed XML elements (no DTD, namespaces reduced to local names). Throws bad_request. */
export function parseXml(src: string): XNode {
  if (src.length > 1_000_000) throw new HnError('bad_request', 'XML too large');
  let i = 0;
  const fail = (why: string): never => {
    throw new HnError('bad_request', `XML: ${why} at ${i}`);
  };
  const skipMisc = () => {
    for (;;) {
      while (i < src.length && /\s/.test(src[i]!)) i++;
      if (src.startsWith('<?', i)) {
        const e = src.indexOf('?>', i);
        if (e < 0) fail('unterminated PI');
        i = e + 2;
      } else if (src.startsWith('<!--', i)) {
        const e = src.indexOf('-->', i);
        if (e < 0) fail('unterminated comment');
        i = e + 3;
      } else if (src.startsWith('<!', i)) fail('DTD not allowed');
      else return;
    }
  };
  const NAME = /^[A-Za-z_][\w.:-]*/;
  const element = (depth: number): XNode => {
    if (depth > 32) fail('too deep');
    if (src[i] !== '<') fail('expected <');
    i++;
    const m = NAME.exec(src.slice(i, i + 200));
    if (!m) return fail('bad name');
    const qname = m[0];
    i += qname.length;
    // attributes (skipped, but must be well-formed)
    for (;;) {
      while (/\s/.test(src[i] ?? '')) i++;
      if (src.startsWith('/>', i)) {
        i += 2;
        return { name: qname.split(':').pop()!, children: [], text: '' };
      }
      if (src[i] === '>') {
        i++;
        break;
      }
      const a = NAME.exec(src.slice(i, i + 200));
      if (!a) fail('bad attribute');
      i += a![0].length;
      while (/\s/.test(src[i] ?? '')) i++;
      if (src[i] !== '=') fail('expected =');
      i++;
      while (/\s/.test(src[i] ?? '')) i++;
      const q = src[i];
      if (q !== '"' && q !== "'") fail('expected quote');
      const e = src.indexOf(q!, i + 1);
      if (e < 0) fail('unterminated attribute');
      i = e + 1;
    }
    const node: XNode = { name: qname.split(':').pop()!, children: [], text: '' };
    let text = '';
    for (;;) {
      if (i >= src.length) fail(`unterminated <${qname}>`);
      if (src.startsWith('</', i)) {
        i += 2;
        if (!src.startsWith(qname, i)) fail(`mismatched </${qname}>`);
        i += qname.length;
        while (/\s/.test(src[i] ?? '')) i++;
        if (src[i] !== '>') fail('expected >');
        i++;
        node.text = unesc(text);
        return node;
      }
      if (src.startsWith('<!--', i)) {
        const e = src.indexOf('-->', i);
        if (e < 0) fail('unterminated comment');
        i = e + 3;
      } else if (src.startsWith('<![CDATA[', i)) {
        const e = src.indexOf(']]>', i);
        if (e < 0) fail('unterminated CDATA');
        text += src
          .slice(i + 9, e)
          .replace(/&/g, '&amp;')
          .replace(/</g, '&lt;');
        i = e + 3;
      } else if (src[i] === '<') node.children.push(element(depth + 1));
      else {
        const e = src.indexOf('<', i);
        text += src.slice(i, e < 0 ? src.length : e);
        i = e < 0 ? src.length : e;
      }
    }
  };
  skipMisc();
  const root = element(0);
  skipMisc();
  if (i !== src.length) fail('content after the root element');
  return root;
}

const kid = (n: XNode, name: string) => n.children.find((c) => c.name === name);
const kids = (n: XNode, name: string) => n.children.filter((c) => c.name === name);
const val = (n: XNode, name: string) => kid(n, name)?.text.trim();

const SEV_IN: Record<string, Severity> = {
  Extreme: 'extreme',
  Severe: 'emergency',
  Moderate: 'warning',
  Minor: 'advisory',
  Unknown: 'info',
};
const STATUS_IN: Record<string, 'actual' | 'exercise' | 'test'> = {
  Actual: 'actual',
  Exercise: 'exercise',
  Test: 'test',
};
const clip = (s: string, n: number) => [...s].slice(0, n).join('');
const fromCapTime = (t: string | undefined) =>
  t ? new Date(Date.parse(t)).toISOString().replace('.000Z', 'Z') : undefined;

export interface CapImport {
  identifier: string;
  sender: string;
  sent: string;
  msgType: string;
  references: string | null;
  note: string | null;
  /** one draft per <info> block (no language is dropped) */
  drafts: Record<string, unknown>[];
}

/**
 * Import a CAP 1.2 alert into drafts (one per info). The caller adds `cert_id` and, for alerts
 * without a `hearthnet:region` geocode, the target region. `Draft`/`System` status → bad_request.
 */
export function fromCapXml(xml: string, opts: { region?: string } = {}): CapImport {
  const root = parseXml(xml);
  if (root.name !== 'alert') throw new HnError('bad_request', 'not a CAP alert');
  const status = STATUS_IN[val(root, 'status') ?? ''];
  if (!status) throw new HnError('bad_request', 'CAP status must be Actual, Exercise or Test');
  const identifier = val(root, 'identifier');
  const sender = val(root, 'sender');
  const sent = val(root, 'sent');
  if (!identifier || !sender || !sent)
    throw new HnError('bad_request', 'identifier, sender and sent are required');
  const drafts = kids(root, 'info').map((info) => {
    const params = Object.fromEntries(
      kids(info, 'parameter').map((p) => [val(p, 'valueName') ?? '', val(p, 'value') ?? '']),
    );
    const area = kid(info, 'area');
    const geos = area
      ? Object.fromEntries(
          kids(area, 'geocode').map((g) => [val(g, 'valueName') ?? '', val(g, 'value') ?? '']),
        )
      : {};
    const region = params['hearthnet:region'] ?? geos['hearthnet:region'] ?? opts.region ?? null;
    let bbox: number[] | null = null;
    const poly = area ? val(area, 'polygon') : undefined;
    if (poly) {
      const pts = poly.split(/\s+/).map((p) => p.split(',').map(Number) as [number, number]);
      const lats = pts.map((p) => p[0]);
      const lons = pts.map((p) => p[1]);
      bbox = [Math.min(...lons), Math.min(...lats), Math.max(...lons), Math.max(...lats)];
    }
    const headline = val(info, 'headline') ?? val(info, 'event') ?? '';
    const description = (kid(info, 'description')?.text ?? headline).trim();
    const instruction = kid(info, 'instruction')?.text.trim();
    const lines = instruction
      ? instruction
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean)
      : [];
    return {
      severity:
        (params['hearthnet:severity'] as Severity | undefined) ??
        SEV_IN[val(info, 'severity') ?? 'Unknown'] ??
        'info',
      title: clip(headline, 80),
      body: clip(description, 1000),
      instructions: lines.slice(0, 10).map((l) => clip(l, 200)),
      category: val(info, 'category') ?? 'Other',
      status,
      event: clip(val(info, 'event') ?? headline, 64),
      urgency: val(info, 'urgency') ?? null,
      certainty: val(info, 'certainty') ?? null,
      language: val(info, 'language') ?? 'en-US',
      correlation_id: clip(`${sender},${identifier}`, 128),
      ...(params['hearthnet:evidence_claim'] ? { evidence_claim: params['hearthnet:evidence_claim'] } : {}),
      ...(fromCapTime(val(info, 'expires')) ? { expires_at: fromCapTime(val(info, 'expires')) } : {}),
      target: { region, bbox, roles: [], channels: ['local', 'push'] },
      area_desc: area ? val(area, 'areaDesc') : null,
      sender_name: val(info, 'senderName') ?? null,
    };
  });
  return {
    identifier,
    sender,
    sent,
    msgType: val(root, 'msgType') ?? 'Alert',
    references: val(root, 'references') ?? null,
    note: val(root, 'note') ?? null,
    drafts,
  };
}

/** The JSON shape of the NINA warning API (`warnings/{id}.json`, CAP as JSON) for an alert or its cancel. */
export function toNinaJson(envelope: Pick<AlertEnvelope, 'alert'>, cancel?: Cancel): Record<string, unknown> {
  const a = envelope.alert;
  const region = nrwAdapter([]).regionInfo(a.target.region);
  return {
    identifier: cancel ? `${a.alert_id}.cancel` : a.alert_id,
    sender: cancel ? cancel.by : a.publisher,
    sent: capTime(cancel ? cancel.cancelled_at : a.published_at),
    status: STATUS[a.status],
    msgType: cancel ? 'Cancel' : 'Alert',
    scope: a.target.roles.length ? 'Restricted' : 'Public',
    code: [CAP_CODE],
    ...(cancel
      ? { references: `${a.publisher},${a.alert_id},${capTime(a.published_at)}`, note: cancel.reason }
      : {}),
    info: [
      {
        language: a.language,
        category: [a.category],
        event: a.event,
        urgency: a.urgency ?? URGENCY[a.severity],
        severity: SEVERITY[a.severity],
        certainty: a.certainty ?? 'Unknown',
        expires: capTime(a.expires_at),
        headline: a.title,
        description: a.body.replace(/\n/g, '<br/>'),
        ...(a.instructions.length ? { instruction: a.instructions.join('<br/>') } : {}),
        parameter: [
          { valueName: 'sender_langname', value: roleDisplay(a.publisher_role) },
          { valueName: 'hearthnet:severity', value: a.severity },
          { valueName: 'hearthnet:region', value: a.target.region },
          { valueName: 'hearthnet:publisher_cert', value: a.publisher_cert },
        ],
        area: [
          {
            areaDesc: region?.name ?? a.target.region,
            ...(region?.ars ? { geocode: [{ valueName: 'ARS', value: region.ars }] } : {}),
          },
        ],
      },
    ],
  };
}

#!/usr/bin/env python3
"""
Independent derivation of the M30 ClaimID vectors (conformance/vectors/evidence/claim_ids.json).

Written from the contract text only (digest §3.2 normalisation, §3.3 preimage and ID), in Python:
unicodedata NFC, its own canonical JSON writer (RFC 8785 for strings/integers/arrays/objects with
ASCII keys), hashlib SHA-256 and base64.b32encode. It shares no code with engine/evidence, so the
TypeScript implementation is checked against values it did not compute.

Run: python3 conformance/tools/evidence_vectors.py > conformance/vectors/evidence/claim_ids.json
"""
import base64, hashlib, json, re, unicodedata

A = "ed25519:iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w"  # Ed25519 public key of seed 0x01 * 32
B = "ed25519:gTl3Dqh9F19Wo1Rmw0x-zMuNipG07jeiXfYPW4_Js5Q"  # Ed25519 public key of seed 0x02 * 32
AT = "2026-03-01T12:00:00Z"


def jstr(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"': out.append('\\"')
        elif ch == '\\': out.append('\\\\')
        elif ch == '\b': out.append('\\b')
        elif ch == '\f': out.append('\\f')
        elif ch == '\n': out.append('\\n')
        elif ch == '\r': out.append('\\r')
        elif ch == '\t': out.append('\\t')
        elif o < 0x20: out.append('\\u%04x' % o)
        else: out.append(ch)
    out.append('"')
    return ''.join(out)


def canon(v):
    if v is None: return 'null'
    if isinstance(v, bool): return 'true' if v else 'false'
    if isinstance(v, int): return str(v)
    if isinstance(v, str): return jstr(v)
    if isinstance(v, list): return '[' + ','.join(canon(x) for x in v) + ']'
    if isinstance(v, dict):
        # keys sorted by UTF-16 code units
        keys = sorted(v.keys(), key=lambda k: k.encode('utf-16-be'))
        return '{' + ','.join(jstr(k) + ':' + canon(v[k]) for k in keys) + '}'
    raise TypeError(type(v))


def text(s, collapse):
    s = unicodedata.normalize('NFC', s)
    if collapse: s = re.sub(r'\s+', ' ', s)
    return s.strip()


def floor_time(t):
    m = re.fullmatch(r'(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?Z', t)
    return m.group(1) + 'Z'


def conf5(c):
    n = int(round(c * 100000))  # inputs avoid .5 ties, where rounding modes could differ
    return '1.00000' if n == 100000 else '0.' + str(n).zfill(5)


def preimage(d, by, at):
    srcs = []
    for s in d.get('sources', []):
        srcs.append({
            'source_id': text(s['source_id'], False),
            'accessed_at': floor_time(s['accessed_at']) if s.get('accessed_at') else at,
            'content_sha': s.get('content_sha'),
            'excerpt': (text(s['excerpt'], False) or None) if s.get('excerpt') is not None else None,
        })
    srcs.sort(key=lambda s: (s['source_id'], s['accessed_at'], s['content_sha'] or '', s['excerpt'] or ''))
    dedup = []
    for s in srcs:
        if not dedup or dedup[-1] != s: dedup.append(s)
    return {
        'asserted_at': at,
        'asserted_by': by,
        'claim_type': d.get('claim_type', 'factual'),
        'confidence_5dp': conf5(d.get('confidence', 1)),
        'derived_from': sorted(set(d.get('derived_from', []))),
        'modifiers': {k: text(v, True) for k, v in d.get('modifiers', {}).items()},
        'object': text(d['object'], True),
        'predicate': d['predicate'],
        'schema_version': 1,
        'sources': [{'accessed_at': s['accessed_at'], 'content_sha': s['content_sha'], 'source_id': s['source_id']} for s in dedup],
        'subject': text(d['subject'], True),
        'supersedes': sorted(set(d.get('supersedes', []))),
        'ttl_days': d.get('ttl_days', 365),
    }


def claim_id(pre):
    digest = hashlib.sha256(canon(pre).encode('utf-8')).digest()
    return base64.b32encode(digest).decode('ascii').rstrip('=')


X = 'A' * 51 + 'Q'
Y = 'MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZPJQWEY3EMU'  # any canonical ClaimID spelling
Y = (Y + 'AAAAAAAA')[:51] + 'A'
cases = [
    ('minimal_defaults', {'subject': 'Well 3', 'predicate': 'water_quality', 'object': 'safe to drink'}, A, AT),
    ('whitespace_and_nfc', {'subject': '  Cafe\u0301 \t Central\n', 'predicate': 'opening_hours',
                            'object': 'Mo-Fr\u00a0 08:00-18:00 ', 'modifiers': {'season': ' winter  time '}}, A, AT),
    ('sources_sorted_dedup_excerpt_dropped', {
        'subject': 'Bridge on B56', 'predicate': 'status', 'object': 'closed',
        'sources': [
            {'source_id': 'url:https://b.example/news', 'excerpt': 'closed since Monday'},
            {'source_id': 'node:' + B, 'accessed_at': '2026-02-28T09:30:15.875Z'},
            {'source_id': 'url:https://a.example/report', 'content_sha': 'sha256:' + '0f' * 32},
            {'source_id': 'url:https://b.example/news', 'excerpt': 'closed since Monday'},
        ]}, A, AT),
    ('confidence_type_modifiers_ttl', {'subject': 'Shelter North', 'predicate': 'capacity', 'object': '120',
                                       'claim_type': 'measurement', 'confidence': 0.123456,
                                       'modifiers': {'unit': 'people', 'as_of': '2026-03'}, 'ttl_days': 30}, B, '2026-03-02T00:00:59Z'),
    ('derivation_and_supersession_sorted', {'subject': 'Well 3', 'predicate': 'water_quality', 'object': 'boil first',
                                            'derived_from': [Y, X, Y], 'supersedes': [X]}, A, AT),
    ('geo_object_zero_confidence', {'subject': 'Water point 7', 'predicate': 'located_at', 'object': 'geo:50.9375,6.9603',
                                    'confidence': 0, 'sources': [{'source_id': 'ebkh:https://ebkh.example/entity/7'}]}, B, AT),
    ('non_bmp_subject_and_quote', {'subject': 'Garden \U0001F955 "East"', 'predicate': 'grows',
                                   'object': 'carrots \\ leeks', 'confidence': 0.99999}, A, AT),
    ('retraction', {'subject': 'Well 3', 'predicate': 'retracted', 'object': X}, A, AT),
]

out_cases = []
for name, draft, by, at in cases:
    pre = preimage(draft, by, at)
    c = canon(pre)
    out_cases.append({
        'name': name,
        'input': {'draft': draft, 'asserted_by': by, 'asserted_at': at},
        'expect': {
            'result': 'ok',
            'preimage_jcs': c,
            'preimage_sha256': hashlib.sha256(c.encode('utf-8')).hexdigest(),
            'claim_id': claim_id(pre),
        },
    })
bad = [
    ('empty_subject', {'subject': '   ', 'predicate': 'p', 'object': 'o'}),
    ('uppercase_predicate', {'subject': 's', 'predicate': 'Status', 'object': 'o'}),
    ('control_char', {'subject': 's\u0007', 'predicate': 'p', 'object': 'o'}),
    ('confidence_above_one', {'subject': 's', 'predicate': 'p', 'object': 'o', 'confidence': 1.5}),
    ('lowercase_claim_id', {'subject': 's', 'predicate': 'p', 'object': 'o', 'derived_from': [X.lower()]}),
    ('ttl_zero', {'subject': 's', 'predicate': 'p', 'object': 'o', 'ttl_days': 0}),
    ('unknown_source_kind', {'subject': 's', 'predicate': 'p', 'object': 'o', 'sources': [{'source_id': 'ftp:x'}]}),
]
for name, draft in bad:
    out_cases.append({'name': name, 'input': {'draft': draft, 'asserted_by': A, 'asserted_at': AT},
                      'expect': {'result': 'error', 'code': 'bad_request'}})

print(json.dumps({
    'vector_schema': 'hearthnet.vector/1',
    'id': 'evidence/claim_ids',
    'kind': 'evidence_claim_id',
    'spec_ref': 'seed §2.5; M30 digest §3.2 (normalisation), §3.3 (ClaimID preimage, base32 SHA-256)',
    'description': 'ClaimDraft + asserted_by + asserted_at → JCS preimage and ClaimID; bad drafts → bad_request',
    'source': 'derived independently by conformance/tools/evidence_vectors.py (Python unicodedata, own JCS writer, hashlib.sha256, base64.b32encode); not by engine/evidence',
    'cases': out_cases,
}, ensure_ascii=False, indent=2))

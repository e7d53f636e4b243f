/**
 * Regenerates the language-neutral vectors owned by the suite (canonical_json, identity, signatures,
 * protocol) from the seed 0xC0FFEE and writes vectors/index.json. Uses suite code and @noble only,
 * never engine/. `--check` exits 1 when the committed files differ.
 * Usage: npx tsx conformance/tools/gen-vectors.ts [--check]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { blake3 } from '@noble/hashes/blake3.js';
import { jcs, sha256Hex, signBytes, toHex, utf8, verifyObj, signObj } from '../lib/crypto.js';
import { drbg, drbgIdentity } from '../lib/drbg.js';

const SEED = 0xc0ffee;
const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'vectors');
const OWNED = [
  'canonical_json/jcs.json',
  'identity/nodeids.json',
  'signatures/ed25519.json',
  'protocol/versions.json',
  'protocol/negotiation.json',
];

function file(id: string, kind: string, spec_ref: string, description: string, cases: unknown[]) {
  const body = { vector_schema: 'hearthnet.vector/1', id, kind, spec_ref, description, cases };
  return { ...body, sha256: sha256Hex(utf8(jcs(body))) };
}

function canonicalJson() {
  const inputs: [string, string][] = [
    ['key_order_ascii', '{"b":2,"a":1,"c":{"z":0,"y":[3,2,1]}}'],
    ['key_order_non_ascii', '{"\\u20ac":1,"\\r":2,"1":3,"\\u00f6":4}'],
    ['key_order_non_bmp', '{"\\ud83d\\ude00":1,"\\ufb33":2}'],
    ['numbers', '[1.0, 1e21, 1e-7, -0, 0.1, 123456789012, 1.5e300, 5e-324]'],
    ['float_sum', '{"sum": 0.30000000000000004}'],
    ['escapes', '{"s":"\\u2028\\u2029\\t\\n\\"\\\\\\u0001\\u007f"}'],
    ['nested', '[[],{},[{}],{"a":[null,true,false]}]'],
    [
      'rfc8785_example',
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
    ],
  ];
  return inputs.map(([name, text]) => {
    const c = jcs(JSON.parse(text));
    return {
      name,
      input: text,
      expect: {
        result: 'ok',
        value: c,
        canonical_hex: toHex(utf8(c)),
        sha256: sha256Hex(utf8(c)),
        blake3: `blake3:${toHex(blake3(utf8(c)))}`,
      },
    };
  });
}

function identities() {
  return ['alice', 'bob', 'carol'].map((n) => {
    const k = drbgIdentity(SEED, n);
    return {
      name: n,
      input: { drbg_label: `identity/${n}`, seed_hex: toHex(k.seed) },
      expect: { result: 'ok', public_key_hex: toHex(k.publicKey), node_id: k.nodeId },
    };
  });
}

function signatures() {
  const k = drbgIdentity(SEED, 'signer');
  const payload = {
    capability: 'protocol.version.list',
    body: { note: 'vector', n: 1 },
    from: k.nodeId,
    timestamp: 1780272000,
  };
  const signed = signObj(k, payload);
  const tampered = { ...signed, body: { note: 'vector', n: 2 } };
  const nonJcs = { ...payload, signature: signBytes(k, utf8(JSON.stringify(payload))) };
  // RFC 8032 §7.1 test 1 for the primitive
  const rfc = {
    secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    public: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  };
  return [
    {
      name: 'signed_object',
      input: { signer_seed_hex: toHex(k.seed), payload: JSON.stringify(payload) },
      expect: {
        result: 'ok',
        canonical: jcs(payload),
        signature: signed.signature,
        valid: verifyObj(signed, k.nodeId),
      },
    },
    {
      name: 'tampered_body',
      input: { signer: k.nodeId, signed: JSON.stringify(tampered) },
      expect: { result: 'ok', valid: verifyObj(tampered, k.nodeId) },
    },
    {
      name: 'signed_over_non_jcs_bytes',
      input: { signer: k.nodeId, signed: JSON.stringify(nonJcs) },
      expect: { result: 'ok', valid: verifyObj(nonJcs, k.nodeId) },
    },
    {
      name: 'rfc8032_test_1',
      input: { secret_hex: rfc.secret, message_hex: rfc.message },
      expect: { result: 'ok', public_key_hex: rfc.public, signature_hex: rfc.signature },
    },
  ];
}

function versions() {
  const ok = ['3.0.0', '3.0.0-rc1', '3.0.0-experimental', '0.0.0', '3.2.1', '10.20.30-alpha.1'];
  const bad = ['3.0', 'v3.0.0', '03.0.0', '3.0.0+b1', '3.0.0-', ' 3.0.0', '3.0.0-' + 'x'.repeat(33)];
  const order = [
    ['3.0.0-rc1', '3.0.0'],
    ['3.0.0', '3.0.1'],
    ['3.0.0-alpha', '3.0.0-alpha.1'],
    ['3.0.0-alpha.1', '3.0.0-beta'],
    ['3.0.0-rc.2', '3.0.0-rc.10'],
    ['2.9.9', '3.0.0'],
  ];
  return [
    ...ok.map((v) => ({ name: `parse_${v}`, input: v, expect: { result: 'ok', value: v } })),
    ...bad.map((v) => ({
      name: `reject_${JSON.stringify(v)}`,
      input: v,
      expect: { result: 'error', error: 'bad_request' },
    })),
    ...order.map(([a, b]) => ({
      name: `order_${a}_lt_${b}`,
      input: { a, b },
      expect: { result: 'ok', value: -1 },
    })),
    {
      name: 'compatible_same_major',
      input: { a: '3.0.0', b: '3.2.1' },
      expect: { result: 'ok', value: true },
    },
    {
      name: 'incompatible_other_major',
      input: { a: '3.0.0', b: '4.0.0' },
      expect: { result: 'ok', value: false },
    },
  ];
}

function negotiation() {
  const rows: [string[], string[], string | null][] = [
    [['3.0.0'], ['3.0.0', '3.2.0'], '3.0.0'],
    [['3.0.0'], ['2.1.0', '3.1.0'], '3.0.0'],
    [['3.0.0', '3.1.0'], ['3.1.0', '3.2.0'], '3.1.0'],
    [['2.0.0', '3.0.0'], ['2.5.0'], '2.0.0'],
    [['3.0.0'], ['99.0.0'], null],
    [['3.0.0', '4.0.0-rc1'], ['4.0.0-rc2', '3.0.0'], '4.0.0-rc1'],
  ];
  return rows.map(([local, peer, agreed], i) => ({
    name: `row_${i + 1}`,
    input: { local, peer },
    expect: agreed
      ? { result: 'ok', value: agreed }
      : { result: 'error', error: 'protocol_unsupported_capability' },
  }));
}

export function generate(): Record<string, unknown> {
  return {
    'canonical_json/jcs.json': file(
      'canonical_json/jcs',
      'canonical_json',
      'RFC 8785; Phase 1 §5',
      'JSON text → JCS text, bytes, SHA-256, BLAKE3',
      canonicalJson(),
    ),
    'identity/nodeids.json': file(
      'identity/nodeids',
      'identity',
      'M01 §2; X09 B5',
      'DRBG seed → Ed25519 public key → NodeID (ed25519:+base64url-nopad)',
      identities(),
    ),
    'signatures/ed25519.json': file(
      'signatures/ed25519',
      'signatures',
      'Phase 1 §5 signing',
      'payload → JCS → Ed25519 signature; tampered and non-JCS variants must not verify; RFC 8032 test 1',
      signatures(),
    ),
    'protocol/versions.json': file(
      'protocol/versions',
      'protocol',
      'M32 A3.1',
      'ProtocolVersion parse/reject, precedence and compatibility',
      versions(),
    ),
    'protocol/negotiation.json': file(
      'protocol/negotiation',
      'protocol',
      'M32 A3.3',
      'negotiation table; either argument order gives the same result',
      negotiation(),
    ),
  };
}

if (process.argv[1] && /gen-vectors/.test(process.argv[1])) {
  void drbg;
  const files = generate();
  const check = process.argv.includes('--check');
  const index = {
    vector_schema: 'hearthnet.vector-index/1',
    seed: '0xC0FFEE',
    files: [] as { path: string; sha256: string }[],
  };
  let stale = false;
  for (const p of OWNED) {
    const text = JSON.stringify(files[p], null, 2) + '\n';
    index.files.push({ path: p, sha256: sha256Hex(utf8(text)) });
    const full = join(DIR, p);
    if (check) {
      let cur = '';
      try {
        cur = readFileSync(full, 'utf8');
      } catch {
        /* missing */
      }
      if (cur !== text) stale = true;
    } else {
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, text);
    }
  }
  const indexText = JSON.stringify(index, null, 2) + '\n';
  if (check) {
    if (stale || readFileSync(join(DIR, 'index.json'), 'utf8') !== indexText) {
      console.error('vectors are stale: run npx tsx conformance/tools/gen-vectors.ts');
      process.exit(1);
    }
  } else writeFileSync(join(DIR, 'index.json'), indexText);
}

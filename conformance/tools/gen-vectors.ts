/**
 * Regenerates the language-neutral vectors owned by the suite (identity, signatures, protocol) and writes
 * vectors/index.json. Expected values come only from independent sources — RFC 8032 §7.1 (literal),
 * Project Wycheproof (../shared/fixtures/wycheproof, copied verbatim), hand-written tables — never from
 * engine/ and never from a canonicaliser or signer of the suite (tests/unit/conformance-vectors.test.ts
 * fails otherwise). canonical_json/jcs.json (RFC 8785 text) is hand-maintained; x08/ and tokens/ are
 * written by tools/x08_tokens_vectors.py. `--check` exits 1 when the committed files differ.
 * Usage: npx tsx conformance/tools/gen-vectors.ts [--check]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { base64urlnopad } from '@scure/base';

const HERE = dirname(fileURLToPath(import.meta.url));
const DIR = join(HERE, '..', 'vectors');
const WYCHEPROOF = join(HERE, '..', '..', '..', 'shared', 'fixtures', 'wycheproof', 'ed25519_test.json');
const OWNED = [
  'identity/nodeids.json',
  'signatures/ed25519.json',
  'protocol/versions.json',
  'protocol/negotiation.json',
];
/**
 * listed in index.json (hash-checked, run by the suite) but not written here: RFC 8785 text kept by hand,
 * the X08 frame / M16 token vectors written by tools/x08_tokens_vectors.py (Python, independent), and
 * the module vectors of lora/, civdef/, moe/, evidence/, distributed_inference/, fedlearn/ (their own generators, see SOURCES.json)
 */
const HAND = [
  'canonical_json/jcs.json',
  'x08/frames.json',
  'tokens/tokens.json',
  // module vectors (provenance in SOURCES.json or the file), run through harness op `vector` (VEC-07..VEC-15)
  'lora/frames.json',
  'lora/airtime.json',
  'lora/duty_cycle.json',
  'lora/meshtastic.json',
  'civdef/cert_ids.json',
  'civdef/merkle.json',
  'moe/normalisation.json',
  'moe/scorer.json',
  'evidence/claim_ids.json',
  'distributed_inference/planner.json',
  'fedlearn/aggregation.json',
  'fedlearn/manifest.json',
  'fedlearn/init.json',
  'fedlearn/delta_validation.json',
];

type Source = { kind: string; ref: string; generated_by: string };
const utf8 = (s: string) => new TextEncoder().encode(s);

function file(
  id: string,
  kind: string,
  spec_ref: string,
  description: string,
  source: Source,
  cases: unknown[],
) {
  const body = { vector_schema: 'hearthnet.vector/1', id, kind, spec_ref, description, source, cases };
  return { ...body, sha256: bytesToHex(sha256(utf8(JSON.stringify(body)))) };
}

/** RFC 8032 §7.1 TEST 1–3, copied from the RFC (secret key, public key, message, signature). */
export const RFC8032 = [
  {
    name: 'rfc8032_test_1',
    secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    public: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'rfc8032_test_2',
    secret: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    public: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'rfc8032_test_3',
    secret: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    public: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature:
      '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
];

function identities() {
  // NodeID = "ed25519:" + base64url-nopad(public key): a pure re-encoding of the RFC's public key
  return RFC8032.map((t) => ({
    name: t.name,
    source: 'RFC 8032 §7.1',
    input: { seed_hex: t.secret },
    expect: {
      result: 'ok',
      public_key_hex: t.public,
      node_id: `ed25519:${base64urlnopad.encode(hexToBytes(t.public))}`,
    },
  }));
}

function signatures() {
  const rfc = RFC8032.map((t) => ({
    name: t.name,
    source: 'RFC 8032 §7.1',
    op: 'sign',
    input: { seed_hex: t.secret, message_hex: t.message },
    expect: { result: 'ok', public_key_hex: t.public, signature_hex: t.signature },
  }));
  const w = JSON.parse(readFileSync(WYCHEPROOF, 'utf8')) as {
    testGroups: {
      publicKey: { pk: string };
      tests: { tcId: number; msg: string; sig: string; result: string; flags: string[] }[];
    }[];
  };
  const wy = w.testGroups.flatMap((g) =>
    g.tests.map((t) => ({
      name: `wycheproof_tc${t.tcId}`,
      source: `Wycheproof ed25519_test.json tcId ${t.tcId} (${t.flags.join(',')})`,
      op: 'verify',
      input: { public_key_hex: g.publicKey.pk, message_hex: t.msg, signature_hex: t.sig },
      expect: { result: 'ok', valid: t.result === 'valid' },
    })),
  );
  return [...rfc, ...wy];
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

const HAND_TABLE: Source = {
  kind: 'hand-derived',
  ref: 'table written by hand from the spec text (M32 A3.1 / A3.3, SemVer 2.0.0 §11 precedence)',
  generated_by: 'conformance/tools/gen-vectors.ts (literal table)',
};

export function generate(): Record<string, unknown> {
  return {
    'identity/nodeids.json': file(
      'identity/nodeids',
      'identity',
      'M01 §2; X09 B5',
      'Ed25519 seed → public key → NodeID (ed25519:+base64url-nopad). Run through the harness op `vector` (identity).',
      {
        kind: 'rfc8032',
        ref: 'RFC 8032 §7.1 TEST 1–3 key pairs',
        generated_by: 'conformance/tools/gen-vectors.ts (literal RFC values)',
      },
      identities(),
    ),
    'signatures/ed25519.json': file(
      'signatures/ed25519',
      'signatures',
      'Phase 1 §5 signing; RFC 8032',
      'sign: seed + message → signature (RFC 8032, deterministic); verify: public key + message + signature → valid (Wycheproof). Run through the harness op `vector`.',
      {
        kind: 'rfc8032+wycheproof',
        ref: 'RFC 8032 §7.1 TEST 1–3; Project Wycheproof testvectors_v1/ed25519_test.json (C2SP/wycheproof dac1dd47, ../shared/fixtures/wycheproof/SOURCES.md)',
        generated_by: 'conformance/tools/gen-vectors.ts (copied, never computed)',
      },
      signatures(),
    ),
    'protocol/versions.json': file(
      'protocol/versions',
      'protocol',
      'M32 A3.1',
      'ProtocolVersion parse/reject, precedence and compatibility',
      HAND_TABLE,
      versions(),
    ),
    'protocol/negotiation.json': file(
      'protocol/negotiation',
      'protocol',
      'M32 A3.3',
      'negotiation table; either argument order gives the same result',
      HAND_TABLE,
      negotiation(),
    ),
  };
}

if (process.argv[1] && /gen-vectors/.test(process.argv[1])) {
  const files = generate();
  const check = process.argv.includes('--check');
  const index = {
    vector_schema: 'hearthnet.vector-index/1',
    seed: null,
    files: [] as { path: string; sha256: string }[],
  };
  let stale = false;
  for (const p of HAND) index.files.push({ path: p, sha256: bytesToHex(sha256(readFileSync(join(DIR, p)))) });
  for (const p of OWNED) {
    const text = JSON.stringify(files[p], null, 2) + '\n';
    index.files.push({ path: p, sha256: bytesToHex(sha256(utf8(text))) });
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

/**
 * The vector-source rule: every vector file records an independent source, its expected values come
 * from that source (checked here against the RFC text / the Wycheproof fixture), and the generator
 * never reaches engine/ or a canonicaliser/signer — a file regenerated from the code under test fails.
 * Python-derived files (x08/, tokens/, evidence/, civdef/, fedlearn/) must be byte for byte what their
 * generator writes; hand-written module files are re-derived here from their rule text (lora duty cycle,
 * moe scorer) or decoded with the Meshtastic project's own schema (lora/meshtastic.json).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { fromBinary } from '@bufbuild/protobuf';
import { Mesh } from '@meshtastic/protobufs';
import { describe, expect, it } from 'vitest';
import { generate } from '../../conformance/tools/gen-vectors.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const VEC = join(ROOT, 'conformance/vectors');
const read = (p: string) => JSON.parse(readFileSync(join(VEC, p), 'utf8'));

/** every module gen-vectors.ts reaches through relative imports */
function importGraph(entry: string, seen = new Set<string>()): Set<string> {
  if (seen.has(entry)) return seen;
  seen.add(entry);
  const src = readFileSync(entry, 'utf8');
  for (const m of src.matchAll(/^\s*import\s[^'"]*['"](\.[^'"]+)['"]/gm)) {
    const p = resolve(dirname(entry), m[1]!).replace(/\.js$/, '.ts');
    if (p.includes('/engine/')) seen.add(p);
    else importGraph(p, seen);
  }
  return seen;
}

describe('vector sources', () => {
  it('gen-vectors reaches neither engine/ nor any canonicaliser / signer / verifier of its own', () => {
    const files = [...importGraph(join(ROOT, 'conformance/tools/gen-vectors.ts'))];
    expect(files.filter((f) => f.includes('/engine/'))).toEqual([]);
    expect(files.filter((f) => /conformance\/lib\/crypto/.test(f))).toEqual([]);
    const src = readFileSync(join(ROOT, 'conformance/tools/gen-vectors.ts'), 'utf8');
    expect(src).not.toMatch(/\b(jcs|canonical|signObj|verifyObj|signBytes|ed25519)\s*\(/);
  });

  it('every vector file in index.json records an independent source', () => {
    const idx = read('index.json');
    expect(idx.files.length).toBeGreaterThanOrEqual(7);
    expect(idx.files.map((f: any) => f.path)).toEqual(
      expect.arrayContaining(['x08/frames.json', 'tokens/tokens.json']),
    );
    // module vector files (lora, civdef, moe, evidence) record theirs in SOURCES.json
    const sources = read('SOURCES.json').files;
    expect(idx.files.map((f: any) => f.path)).toEqual(
      expect.arrayContaining(['lora/frames.json', 'civdef/merkle.json', 'evidence/claim_ids.json']),
    );
    for (const f of idx.files) {
      const own = read(f.path).source;
      const src = own && typeof own === 'object' ? own : sources[f.path];
      expect(src?.kind, f.path).toMatch(/^(rfc8785|rfc8032|rfc9162|wycheproof|hand-derived|independent)/);
      expect(src.ref.length, f.path).toBeGreaterThan(10);
      expect(src.generated_by, f.path).not.toMatch(/engine\//);
    }
  });

  it('every vector file under vectors/ records its independent source (in the file or in SOURCES.json)', () => {
    const sources = read('SOURCES.json').files as Record<
      string,
      { kind: string; ref: string; generated_by: string }
    >;
    const all: string[] = [];
    const walk = (d: string, rel: string) => {
      for (const e of readdirSync(d, { withFileTypes: true }))
        if (e.isDirectory()) walk(join(d, e.name), `${rel}${e.name}/`);
        else if (e.name.endsWith('.json') && rel) all.push(`${rel}${e.name}`);
    };
    walk(VEC, '');
    expect(all.length).toBeGreaterThanOrEqual(17);
    for (const p of all) {
      const own = read(p).source;
      const src = own && typeof own === 'object' ? own : sources[p];
      expect(src?.kind, `${p}: no recorded source`).toBeTruthy();
      expect(src.ref.length, p).toBeGreaterThan(10);
      expect(src.generated_by, p).not.toMatch(/engine\//);
    }
    for (const p of Object.keys(sources)) expect(all, `SOURCES.json names a missing file`).toContain(p);
  });

  it('the Python generators use the standard library only and reproduce the committed files', () => {
    const gens = [
      'conformance/tools/x08_tokens_vectors.py',
      'conformance/tools/evidence_vectors.py',
      'conformance/vectors/civdef/derive.py',
      'conformance/vectors/fedlearn/derive.py',
    ];
    const stdlib = new Set(['base64', 'hashlib', 'json', 'math', 'os', 're', 'struct', 'sys', 'unicodedata']);
    for (const g of gens) {
      const src = readFileSync(join(ROOT, g), 'utf8');
      for (const m of src.matchAll(/^(?:import|from)\s+([\w., ]+?)(?:\s+import\b|$)/gm))
        for (const mod of m[1]!.split(',').map((x) => x.trim().split('.')[0]!))
          expect(stdlib.has(mod), `${g} imports ${mod}`).toBe(true);
      // no string literal naming an engine/ source (a generator that reads or runs the code under test)
      expect(src, g).not.toMatch(/['"][^'"\n]*engine\/[^'"\n]*\.(ts|js)['"]/);
    }
    const py = spawnSync('python3', ['--version']);
    if (py.status !== 0) return; // no Python here: the static checks above still hold
    const x = spawnSync('python3', [join(ROOT, gens[0]!), '--check'], { encoding: 'utf8' });
    expect(x.status, x.stderr).toBe(0);
    const ev = spawnSync('python3', [join(ROOT, gens[1]!)], { encoding: 'utf8' });
    expect(ev.stdout).toBe(readFileSync(join(VEC, 'evidence/claim_ids.json'), 'utf8'));
    // derive.py of civdef/ and fedlearn/ write beside themselves: run a copy elsewhere, compare byte for byte
    for (const [dir, files] of [
      ['civdef', ['merkle.json', 'cert_ids.json']],
      ['fedlearn', ['manifest.json', 'init.json', 'aggregation.json', 'delta_validation.json']],
    ] as const) {
      const tmp = mkdtempSync(join(tmpdir(), `vec-${dir}-`));
      try {
        writeFileSync(join(tmp, 'derive.py'), readFileSync(join(VEC, dir, 'derive.py')));
        const r = spawnSync('python3', [join(tmp, 'derive.py')], { encoding: 'utf8', cwd: tmp });
        expect(r.status, r.stderr).toBe(0);
        for (const f of files)
          expect(readFileSync(join(tmp, f), 'utf8'), `${dir}/${f} is not what derive.py writes`).toBe(
            readFileSync(join(VEC, dir, f), 'utf8'),
          );
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    }
  });

  it('lora duty_cycle: every expected value follows the digest §6 rule, recomputed here from the rule text', () => {
    const v = read('lora/duty_cycle.json');
    const H = 3_600_000;
    const r3 = (x: number) => Math.round(x * 1000) / 1000;
    expect(v.cases.length).toBeGreaterThanOrEqual(7);
    for (const c of v.cases) {
      // a future timestamp counts as now; an entry leaves the window exactly 3600 s after its time
      const live = c.entries
        .map((e: any) => ({ t: Math.min(e.t, c.now), a: e.airtime_ms }))
        .filter((e: any) => e.t > c.now - H)
        .sort((a: any, b: any) => a.t - b.t);
      const used = r3(live.reduce((s: number, e: any) => s + e.a, 0));
      const budget = c.percent === null ? null : r3(c.percent * 36_000);
      let next = c.now;
      if (budget !== null && r3(used + c.frame_ms) > budget) {
        let u = used;
        next = NaN;
        for (const e of live) {
          u -= e.a;
          if (r3(u + c.frame_ms) <= budget) {
            next = e.t + H;
            break;
          }
        }
      }
      expect([c.name, c.budget_ms, c.used_ms, c.fits, c.next_tx_allowed_at]).toEqual([
        c.name,
        budget,
        c.percent === null ? c.used_ms : used,
        next <= c.now,
        next,
      ]);
    }
  });

  it("lora meshtastic: each frame decodes with the Meshtastic project's own protobuf schema (@meshtastic/protobufs) to the fields the file states", () => {
    const v = read('lora/meshtastic.json');
    const unframe = (h: string) => {
      const b = Uint8Array.from(Buffer.from(h, 'hex'));
      expect([b[0], b[1], (b[2]! << 8) | b[3]!]).toEqual([0x94, 0xc3, b.length - 4]);
      return b.subarray(4);
    };
    for (const t of v.to_radio) {
      const m: any = fromBinary(Mesh.ToRadioSchema, unframe(t.hex));
      const pv = m.payloadVariant;
      if (t.message.packet) {
        expect(pv.case, t.name).toBe('packet');
        const p = pv.value as any;
        const want = t.message.packet;
        expect([p.to, p.channel, p.id, p.hopLimit, p.wantAck]).toEqual([
          want.to,
          want.channel,
          want.id,
          want.hop_limit,
          want.want_ack,
        ]);
        const d = p.payloadVariant.value as any;
        expect([d.portnum, Buffer.from(d.payload).toString('hex')]).toEqual([
          want.decoded.portnum,
          want.decoded.payload_hex,
        ]);
      } else if ('want_config_id' in t.message) {
        expect([pv.case, pv.value]).toEqual(['wantConfigId', t.message.want_config_id]);
      } else expect(pv.case, t.name).toBe('heartbeat');
    }
    for (const f of v.from_radio) {
      const m: any = fromBinary(Mesh.FromRadioSchema, unframe(f.hex));
      expect(m.payloadVariant.case).toBe('packet');
      const p = m.payloadVariant.value as any;
      const d = p.payloadVariant.value as any;
      expect([
        `!${p.from.toString(16).padStart(8, '0')}`,
        p.rxRssi,
        p.rxSnr,
        Buffer.from(d.payload).toString('hex'),
      ]).toEqual([f.expect.device_id, f.expect.rssi, f.expect.snr, f.expect.payload_hex]);
    }
  });

  it('moe scorer: each expected score is the §5 formula worked by hand (sim 1, rel ½, rec 1)', () => {
    const v = read('moe/scorer.json');
    for (const c of v.cases) {
      const q = new Set<string>(c.tags);
      const tag = q.size ? [...q].filter((t) => c.topics.includes(t)).length / q.size : 0;
      const raw = q.size ? 0.45 * tag + 0.3 + 0.15 * 0.5 + 0.1 : 0.75 + 0.15 * 0.5 + 0.1;
      const score = Math.min(1, Math.max(0, raw + 0.1 * c.score_bias));
      expect(Math.abs(score - c.expected), c.id).toBeLessThanOrEqual(1e-12);
    }
  });

  it('x08 and token vectors: the A3 frame and RFC 8032 TEST 1 key appear verbatim; verdicts follow core §7.2', () => {
    const x = read('x08/frames.json');
    expect(x.valid.find((v: any) => v.name === 'a3_tensor_data').hex).toBe(
      '0101000000000002000000180000000200010103000000010000000100000004003c00c000380000',
    );
    const t = read('tokens/tokens.json');
    expect(t.keys.issuer).toBe('ed25519:11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo');
    const code = (n: string) => t.verify.find((v: any) => v.name === n).expect;
    expect(code('valid')).toEqual({ local: 'ok', wire: 'ok' });
    expect(code('expired_and_bad_signature')).toEqual({
      local: 'token_signature_bad',
      wire: 'token_invalid',
    });
    expect(code('issuer_revoked')).toEqual({ local: 'token_issuer_revoked', wire: 'revoked' });
  });

  it('the committed generated files are exactly what the generator writes from its sources', () => {
    const gen = generate() as Record<string, unknown>;
    for (const [p, body] of Object.entries(gen)) expect(read(p), p).toEqual(body);
  });

  it('canonical_json holds the RFC 8785 §3.2.3 example output verbatim', () => {
    const v = read('canonical_json/jcs.json');
    const ex = v.cases.find((c: any) => c.name === 'rfc8785_sec3_2_3_example');
    // RFC 8785 §3.2.3, the canonical output as printed in the RFC
    expect(ex.expect.value).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
    const appB = v.cases.filter((c: any) => c.name.startsWith('rfc8785_appendix_b_'));
    expect(appB).toHaveLength(24);
    expect(appB.find((c: any) => c.name.endsWith('44b52d02c7e14af6')).expect.value).toBe('[1e+23]');
  });

  it('signatures: RFC 8032 test 1 verbatim, and every Wycheproof ed25519 test copied with its verdict', () => {
    const v = read('signatures/ed25519.json');
    const t1 = v.cases.find((c: any) => c.name === 'rfc8032_test_1');
    expect(t1.expect.signature_hex).toBe(
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
    );
    const w = JSON.parse(readFileSync(join(ROOT, '../shared/fixtures/wycheproof/ed25519_test.json'), 'utf8'));
    const tests = w.testGroups.flatMap((g: any) => g.tests.map((t: any) => ({ ...t, pk: g.publicKey.pk })));
    expect(v.cases.filter((c: any) => c.op === 'verify')).toHaveLength(tests.length);
    for (const t of tests) {
      const c = v.cases.find((x: any) => x.name === `wycheproof_tc${t.tcId}`);
      expect(c.input).toEqual({ public_key_hex: t.pk, message_hex: t.msg, signature_hex: t.sig });
      expect(c.expect.valid, `tc ${t.tcId}`).toBe(t.result === 'valid');
    }
  });

  it('the rule bites: a generator that takes expected values from engine/ or a suite signer is flagged', () => {
    const dir = mkdtempSync(join(ROOT, 'conformance/tools/.tmp-'));
    try {
      const bad = join(dir, 'gen-bad.ts');
      writeFileSync(
        bad,
        "import { jcs } from '../../../engine/core/canonical.js';\nimport { signObj } from '../../lib/crypto.js';\nexport const x = [jcs, signObj];\n",
      );
      const files = [...importGraph(bad)];
      expect(files.some((f) => f.includes('/engine/'))).toBe(true);
      expect(files.some((f) => /conformance\/lib\/crypto/.test(f))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

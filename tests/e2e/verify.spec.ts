/**
 * The engine's Ed25519 verifier (engine/identity/verify.ts) inside headless Chromium: the module itself is bundled
 * (esbuild, the same source the app ships) and loaded into a page of the relay's origin (a secure context, so
 * WebCrypto is there). Every Project Wycheproof case must give its expected verdict on both paths — BoringSSL's
 * WebCrypto with the strict prechecks, and noble — and the paths must agree on random and tampered signatures
 * and on signatures whose R carries a torsion component (where cofactorless WebCrypto alone would differ).
 */
import { expect, test } from '@playwright/test';
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const ENTRY = `
export * from './engine/identity/verify.ts';
export { ed25519 } from '@noble/curves/ed25519.js';
export { sha512 } from '@noble/hashes/sha2.js';
`;

async function bundle(): Promise<string> {
  const r = await build({
    stdin: { contents: ENTRY, resolveDir: process.cwd(), loader: 'ts' },
    bundle: true,
    format: 'iife',
    globalName: 'HNVerify',
    platform: 'browser',
    write: false,
    logLevel: 'error',
  });
  return `${r.outputFiles[0]!.text};window.HNVerify = HNVerify;`;
}

interface Case {
  tcId: number;
  pk: string;
  msg: string;
  sig: string;
  expected: boolean;
}
function load(file: string): Case[] {
  const j = JSON.parse(readFileSync(`../shared/fixtures/wycheproof/${file}`, 'utf8')) as {
    testGroups: {
      publicKey?: { pk: string };
      key?: { pk: string };
      tests: { tcId: number; msg: string; sig: string; result: string }[];
    }[];
  };
  return j.testGroups.flatMap((g) =>
    g.tests.map((t) => ({
      tcId: t.tcId,
      pk: (g.publicKey ?? g.key)!.pk,
      msg: t.msg,
      sig: t.sig,
      expected: t.result === 'valid',
    })),
  );
}

test('Chromium: the verifier gives every Wycheproof verdict on both paths, and the paths never disagree', async ({
  page,
}) => {
  test.setTimeout(120_000);
  await page.goto('/healthz');
  expect(await page.evaluate(() => window.isSecureContext)).toBe(true);
  await page.evaluate(await bundle());
  const backend = await page.evaluate(() => (window as any).HNVerify.verifierBackend());
  expect(backend).toBe('webcrypto');

  for (const file of ['ed25519_test.json', 'legacy/eddsa_test.json']) {
    const cases = load(file);
    expect(cases.length).toBeGreaterThan(140);
    const wrong: string[] = await page.evaluate(async (cs: Case[]) => {
      const V = (window as any).HNVerify;
      const hx = (s: string) => Uint8Array.from((s.match(/../g) ?? []).map((b) => parseInt(b, 16)));
      const out: string[] = [];
      for (const c of cs) {
        const [pk, msg, sig] = [hx(c.pk), hx(c.msg), hx(c.sig)];
        const n = V.verifyNoble(pk, msg, sig);
        const w = await V.verifyWebCrypto(pk, msg, sig);
        if (n !== c.expected || w !== c.expected) out.push(`${c.tcId}: noble ${n} webcrypto ${w}`);
      }
      const batch: boolean[] = await V.verifyBatch(
        cs.map((c) => ({ publicKey: hx(c.pk), msg: hx(c.msg), sig: hx(c.sig) })),
      );
      cs.forEach((c, i) => batch[i] !== c.expected && out.push(`${c.tcId}: batch ${batch[i]}`));
      return out;
    }, cases);
    expect(wrong, file).toEqual([]);
  }

  // random keys/messages, tampered signatures and torsion-carrying R: both paths equal noble strict
  const disagreements: string[] = await page.evaluate(async () => {
    const V = (window as any).HNVerify;
    const ed = V.ed25519;
    const P = ed.Point;
    const T8 = P.fromHex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05');
    const L = P.Fn.ORDER as bigint;
    const le = (b: Uint8Array) => b.reduceRight((x, v) => (x << 8n) | BigInt(v), 0n);
    const toLe = (x: bigint) =>
      Uint8Array.from({ length: 32 }, (_, i) => Number((x >> BigInt(8 * i)) & 0xffn));
    /** a signature valid under the cofactored rule only: R = r·B + T8, S = r + k·a */
    const torsionSig = (msg: Uint8Array): { pk: Uint8Array; sig: Uint8Array } => {
      const a = (le(crypto.getRandomValues(new Uint8Array(40))) % (L - 1n)) + 1n;
      const r = (le(crypto.getRandomValues(new Uint8Array(40))) % (L - 1n)) + 1n;
      const A = P.BASE.multiply(a).toBytes();
      const R = P.BASE.multiply(r).add(T8).toBytes();
      const k = le(V.sha512(Uint8Array.from([...R, ...A, ...msg]))) % L;
      return { pk: A, sig: Uint8Array.from([...R, ...toLe((r + k * a) % L)]) };
    };
    const out: string[] = [];
    let torsionAccepted = 0;
    for (let i = 0; i < 300; i++) {
      const seed = crypto.getRandomValues(new Uint8Array(32));
      const msg = crypto.getRandomValues(new Uint8Array(i % 97));
      let pk: Uint8Array = ed.getPublicKey(seed);
      let sig: Uint8Array = ed.sign(msg, seed);
      const how = i % 4;
      if (how === 1) sig[i % 64]! ^= 1 + (i % 255);
      if (how === 2) sig = crypto.getRandomValues(new Uint8Array(64));
      if (how === 3) ({ pk, sig } = torsionSig(msg));
      const ref = ed.verify(sig, msg, pk, { zip215: false });
      const n = V.verifyNoble(pk, msg, sig);
      const w = await V.verifyWebCrypto(pk, msg, sig);
      if (n !== ref || w !== ref) out.push(`${i}/${how}: ref ${ref} noble ${n} webcrypto ${w}`);
      if (how === 0 && !ref) out.push(`${i}: honest signature rejected`);
      if (how === 3 && w) torsionAccepted++;
    }
    if (torsionAccepted !== 75) out.push(`torsion R accepted ${torsionAccepted}/75`);
    return out;
  });
  expect(disagreements).toEqual([]);
});

/**
 * "One verifier for the whole engine" (issue #11), held by a source scan: no file under engine/, relay/,
 * app/src/ or workers/ other than engine/identity/verify.ts may verify an Ed25519 signature by itself — no
 * `ed25519.verify` from @noble/curves, no other Ed25519 library, no WebCrypto / node:crypto `verify` — and the
 * only other file that may import noble's `ed25519` is identity.ts (key generation and signing). Everything else
 * goes through identity.ts (`verifyObject`, `verifyObjects`, `verifyObjectAsync`, `verifyBytes`) or verify.ts.
 *
 * conformance/ and tools/ are outside the rule on purpose: the conformance suite carries its own independent
 * Ed25519 so it can judge a node under test without trusting the engine's code.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(__dirname, '../..');
const SCANNED = ['engine', 'relay', 'app/src', 'workers'];
const VERIFIER = 'engine/identity/verify.ts';
/** may import noble's ed25519 for keys and signing, never to verify */
const SIGNER = 'engine/identity/identity.ts';

function sources(dir: string): string[] {
  const out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const n of names) {
    if (n === 'node_modules' || n === 'dist' || n.startsWith('.')) continue;
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.(ts|tsx|mts|js|mjs)$/.test(n) && !n.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Strip comments so prose that names the functions (like this file's header) never trips the scan. */
function code(src: string): string {
  return src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

/** Ways a file could verify an Ed25519 signature on its own. Returns the rules it breaks. */
export function directVerifications(path: string, src: string): string[] {
  const c = code(src);
  const found: string[] = [];
  const importsNobleEd =
    /import\s*\{[^}]*\bed25519\b[^}]*\}\s*from\s*['"]@noble\/curves\/ed25519(\.js)?['"]/.test(c);
  if (importsNobleEd && path !== VERIFIER && path !== SIGNER)
    found.push('imports ed25519 from @noble/curves');
  if (/\bed25519\s*\.\s*verify\b/.test(c) && path !== VERIFIER) found.push('calls ed25519.verify');
  if (/\bed25519\s*\.\s*(Point|ExtendedPoint)\b/.test(c) && path !== VERIFIER && path !== SIGNER)
    found.push('decodes Ed25519 points itself');
  if (
    /from\s*['"](@noble\/ed25519|tweetnacl|tweetnacl-ts|libsodium[\w-]*|elliptic|@stablelib\/ed25519)['"]/.test(
      c,
    )
  )
    found.push('imports another Ed25519 library');
  if (/require\(\s*['"](@noble\/curves[^'"]*|@noble\/ed25519|tweetnacl)['"]\s*\)/.test(c))
    found.push('requires an Ed25519 library');
  if (/import\s*\(\s*['"]@noble\/curves\/ed25519/.test(c) && path !== VERIFIER && path !== SIGNER)
    found.push('imports @noble/curves/ed25519 dynamically');
  if (path !== VERIFIER && /\bsubtle\s*\.\s*verify\s*\(/.test(c)) found.push('calls WebCrypto subtle.verify');
  if (/\bfrom\s*['"](node:)?crypto['"]/.test(c) && /\bverify\s*\(/.test(c) && path !== VERIFIER)
    found.push('verifies with node:crypto');
  return found;
}

describe('one Ed25519 verifier: source scan', () => {
  it('no file outside engine/identity/verify.ts verifies Ed25519 signatures directly', () => {
    const offenders: string[] = [];
    let scanned = 0;
    for (const top of SCANNED)
      for (const file of sources(join(ROOT, top))) {
        const rel = relative(ROOT, file).split('\\').join('/');
        scanned++;
        for (const why of directVerifications(rel, readFileSync(file, 'utf8')))
          offenders.push(`${rel}: ${why}`);
      }
    expect(scanned).toBeGreaterThan(100); // the scan really walked the tree
    expect(offenders).toEqual([]);
  });

  it('the verifier itself is where noble verify lives, and identity.ts only signs', () => {
    const v = code(readFileSync(join(ROOT, VERIFIER), 'utf8'));
    expect(v).toMatch(/\bed25519\s*\.\s*verify\s*\(/);
    const id = code(readFileSync(join(ROOT, SIGNER), 'utf8'));
    expect(id).not.toMatch(/\bed25519\s*\.\s*verify\b/);
    expect(id).toMatch(/from '\.\/verify\.js'/);
  });

  it('the scan catches each way around the verifier (so the first test can fail)', () => {
    const f = 'engine/civdef/x.ts';
    expect(
      directVerifications(
        f,
        `import { ed25519 } from '@noble/curves/ed25519.js';\nconst ok = ed25519.verify(s, m, p);`,
      ),
    ).toEqual(['imports ed25519 from @noble/curves', 'calls ed25519.verify']);
    expect(directVerifications(f, `import { x25519, ed25519 as e } from "@noble/curves/ed25519";`)).toEqual([
      'imports ed25519 from @noble/curves',
    ]);
    expect(directVerifications(f, `const ok = await crypto.subtle.verify('Ed25519', k, s, m);`)).toEqual([
      'calls WebCrypto subtle.verify',
    ]);
    expect(directVerifications(f, `import nacl from 'tweetnacl';`)).toEqual([
      'imports another Ed25519 library',
    ]);
    expect(directVerifications(f, `import * as ed from '@noble/ed25519';`)).toEqual([
      'imports another Ed25519 library',
    ]);
    expect(
      directVerifications('relay/x.ts', `import { verify } from 'node:crypto';\nverify(null, m, k, s);`),
    ).toEqual(['verifies with node:crypto']);
    expect(directVerifications(f, `const P = ed25519.Point.fromBytes(pk);`)).toEqual([
      'decodes Ed25519 points itself',
    ]);
    // identity.ts may import noble for signing, but not verify with it
    expect(
      directVerifications(SIGNER, `import { ed25519 } from '@noble/curves/ed25519.js';\ned25519.sign(m, k);`),
    ).toEqual([]);
    expect(directVerifications(SIGNER, `ed25519.verify(s, m, p)`)).toEqual(['calls ed25519.verify']);
    // x25519 (key agreement) and prose in comments are fine
    expect(
      directVerifications(
        f,
        `import { x25519 } from '@noble/curves/ed25519.js';\n// ed25519.verify is not used here`,
      ),
    ).toEqual([]);
    expect(
      directVerifications(
        VERIFIER,
        `import { ed25519 } from '@noble/curves/ed25519.js';\ned25519.verify(s, m, p);`,
      ),
    ).toEqual([]);
  });
});

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../engine/core/encoding.js';
import { keyPairFromSeed, signBytes } from '../../engine/identity/identity.js';
import {
  addProof,
  claimToCredential,
  credentialToClaim,
  hashData,
  publicKeyFromMultibase,
  publicKeyMultibase,
  seedFromPrivateMultibase,
  verifyProof,
} from '../../engine/evidence/vc.js';
import { actor, newWorld } from './evidence-helpers.js';

const DIR = new URL('../../../shared/fixtures/vc-di-eddsa/TestVectors/', import.meta.url);
const txt = (p: string) => readFileSync(new URL(p, DIR), 'utf8');
const json = (p: string) => JSON.parse(txt(p)) as Record<string, unknown>;

describe('eddsa-jcs-2022: W3C vc-di-eddsa test vectors, byte for byte', () => {
  const keys = json('keyPair.json') as { publicKeyMultibase: string; privateKeyMultibase: string };
  const seed = seedFromPrivateMultibase(keys.privateKeyMultibase);
  const kp = keyPairFromSeed(seed);
  const unsigned = json('unsigned.json');
  const proofConfig = json('eddsa-jcs-2022/proofConfigJCS.json');
  it('key pair: the private multikey derives the public multikey', () => {
    expect(publicKeyMultibase(kp.publicKey)).toBe(keys.publicKeyMultibase);
    expect(publicKeyFromMultibase(keys.publicKeyMultibase)).toEqual(kp.publicKey);
  });
  it('canonical document, proof configuration, hashes and combined hash', () => {
    const h = hashData(unsigned, proofConfig);
    expect(h.canonDoc).toBe(txt('eddsa-jcs-2022/canonDocJCS.txt'));
    expect(h.canonProof).toBe(txt('eddsa-jcs-2022/proofCanonJCS.txt'));
    expect(toHex(h.docHash)).toBe(txt('eddsa-jcs-2022/docHashJCS.txt'));
    expect(toHex(h.proofHash)).toBe(txt('eddsa-jcs-2022/proofHashJCS.txt'));
    expect(toHex(h.combined)).toBe(txt('eddsa-jcs-2022/combinedHashJCS.txt'));
    expect(toHex(signBytes(kp, h.combined))).toBe(txt('eddsa-jcs-2022/sigHexJCS.txt'));
  });
  it('signing reproduces signedJCS.json exactly, and it verifies', () => {
    const signed = addProof(
      unsigned,
      {
        created: proofConfig.created as string,
        verificationMethod: proofConfig.verificationMethod as string,
      },
      (m) => signBytes(kp, m),
    );
    const expected = json('eddsa-jcs-2022/signedJCS.json');
    expect(signed).toEqual(expected);
    // byte for byte, in the fixture's own layout (2-space JSON, same member order)
    expect(JSON.stringify(signed, null, 2)).toBe(txt('eddsa-jcs-2022/signedJCS.json').trimEnd());
    expect((signed.proof as { proofValue: string }).proofValue).toBe(txt('eddsa-jcs-2022/sigBTC58JCS.txt'));
    expect(verifyProof(expected).publicKey).toEqual(kp.publicKey);
  });
  it('negative controls: tampered subject, tampered created, other key, broken proofValue', () => {
    const s = json('eddsa-jcs-2022/signedJCS.json');
    const t1 = structuredClone(s);
    (t1.credentialSubject as Record<string, string>).alumniOf = 'Another School';
    const t2 = structuredClone(s);
    (t2.proof as Record<string, string>).created = '2023-02-24T23:36:39Z';
    const other = keyPairFromSeed(new Uint8Array(32).fill(9));
    const t3 = structuredClone(s);
    const vm = `did:key:${publicKeyMultibase(other.publicKey)}#${publicKeyMultibase(other.publicKey)}`;
    (t3.proof as Record<string, string>).verificationMethod = vm;
    const t4 = structuredClone(s);
    (t4.proof as Record<string, string>).proofValue = 'z111';
    const t5 = structuredClone(s);
    (t5.proof as Record<string, unknown>)['@context'] = ['https://example.org/other'];
    for (const t of [t1, t2, t3, t4, t5])
      expect(() => verifyProof(t)).toThrow(expect.objectContaining({ code: 'claim_signature_invalid' }));
  });
});

describe('claims as Verifiable Credentials', () => {
  it('export → import round-trips with the node key; tampering is refused', async () => {
    const w = newWorld();
    const A = await actor(w, 1);
    const { claim_id } = await A.svc.assert({
      subject: 'Well 3',
      predicate: 'water_quality',
      object: 'safe',
      confidence: 0.9,
    });
    const rec = await A.svc.record(claim_id);
    const vc = claimToCredential(rec, (m) => signBytes(A.kp, m));
    expect(vc.issuer).toMatch(/^did:key:z6Mk/);
    expect(credentialToClaim(structuredClone(vc))).toEqual(rec);
    const t = structuredClone(vc);
    (t.credentialSubject as { claim: { object: string } }).claim.object = 'unsafe';
    expect(() => credentialToClaim(t)).toThrow(expect.objectContaining({ code: 'claim_signature_invalid' }));
    // a proof by another key over a valid claim is refused
    const B = keyPairFromSeed(new Uint8Array(32).fill(2));
    const { proof: _p, ...bare } = vc;
    const pk = B.publicKey;
    const forged = addProof(
      bare,
      {
        created: rec.asserted_at,
        verificationMethod: `did:key:${publicKeyMultibase(pk)}#${publicKeyMultibase(pk)}`,
      },
      (m) => signBytes(B, m),
    );
    expect(() => credentialToClaim(forged)).toThrow(
      expect.objectContaining({ code: 'claim_signature_invalid' }),
    );
  });
});

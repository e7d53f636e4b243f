/**
 * Interop: a claim as a W3C Verifiable Credential 2.0 secured with a Data Integrity proof of the
 * `eddsa-jcs-2022` cryptosuite (W3C vc-di-eddsa §3.3): the same Ed25519 key as the claim, JCS.
 *
 *   proofHash = SHA-256(JCS(proof options, carrying the document's @context))
 *   docHash   = SHA-256(JCS(document without proof))
 *   proofValue = "z" + base58btc(Ed25519(proofHash ‖ docHash))
 *
 * The issuer is the asserter's `did:key` (multicodec 0xed01 + public key, base58btc).
 * Reproduces the W3C test vectors byte for byte (tests/unit/evidence-vc.test.ts).
 */
import { base58 } from '@scure/base';
import { jcs } from '../core/canonical.js';
import { bytesEqual, concatBytes, utf8 } from '../core/encoding.js';
import { HnError } from '../core/errors.js';
import { sha256 } from '../core/hash.js';
import type { NodeID } from '../core/types.js';
import { nodeIdFromPublicKey, publicKeyOf, verifyBytes } from '../identity/identity.js';
import { verifyClaimRecord, type ClaimRecord } from './claim.js';

export const VC_CONTEXT_V2 = 'https://www.w3.org/ns/credentials/v2';
const ED25519_PUB = new Uint8Array([0xed, 0x01]);
const ED25519_PRIV = new Uint8Array([0x80, 0x26]);

const bad = (msg: string): never => {
  throw new HnError('bad_request', msg);
};
const vcInvalid = (msg: string): never => {
  throw new HnError('claim_signature_invalid', `credential rejected: ${msg}`);
};

export const multibase58 = (b: Uint8Array): string => `z${base58.encode(b)}`;
export function fromMultibase58(s: unknown): Uint8Array {
  if (typeof s !== 'string' || !s.startsWith('z')) return bad('not a base58btc multibase value');
  try {
    return base58.decode(s.slice(1));
  } catch {
    return bad('not a base58btc multibase value');
  }
}
export const publicKeyMultibase = (pk: Uint8Array): string => multibase58(concatBytes(ED25519_PUB, pk));
export function publicKeyFromMultibase(s: string): Uint8Array {
  const b = fromMultibase58(s);
  if (b.length !== 34 || !bytesEqual(b.slice(0, 2), ED25519_PUB)) bad('not an Ed25519 multikey');
  return b.slice(2);
}
export function seedFromPrivateMultibase(s: string): Uint8Array {
  const b = fromMultibase58(s);
  if (b.length !== 34 || !bytesEqual(b.slice(0, 2), ED25519_PRIV)) bad('not an Ed25519 private multikey');
  return b.slice(2);
}
export const didKeyOf = (pk: Uint8Array): string => `did:key:${publicKeyMultibase(pk)}`;
export const verificationMethodOf = (pk: Uint8Array): string => `${didKeyOf(pk)}#${publicKeyMultibase(pk)}`;
export const didKeyOfNode = (n: NodeID): string => didKeyOf(publicKeyOf(n));

type Json = Record<string, unknown>;
export interface ProofOptions {
  type: 'DataIntegrityProof';
  cryptosuite: 'eddsa-jcs-2022';
  created: string;
  verificationMethod: string;
  proofPurpose: string;
  '@context'?: unknown;
}

/** hashData = SHA-256(JCS(proof options)) ‖ SHA-256(JCS(document)); also returns the canonical texts. */
export function hashData(unsecured: Json, proofOptions: Json) {
  const canonDoc = jcs(unsecured);
  const canonProof = jcs(proofOptions);
  const docHash = sha256(utf8(canonDoc));
  const proofHash = sha256(utf8(canonProof));
  return { canonDoc, canonProof, docHash, proofHash, combined: concatBytes(proofHash, docHash) };
}

/** Add an `eddsa-jcs-2022` DataIntegrityProof; `signBytes` signs with the key of `verificationMethod`. */
export function addProof(
  unsecured: Json,
  opts: { created: string; verificationMethod: string; proofPurpose?: string },
  signBytes: (msg: Uint8Array) => Uint8Array,
): Json {
  if ('proof' in unsecured) bad('document already has a proof');
  const proofOptions: Json = {
    type: 'DataIntegrityProof',
    cryptosuite: 'eddsa-jcs-2022',
    created: opts.created,
    verificationMethod: opts.verificationMethod,
    proofPurpose: opts.proofPurpose ?? 'assertionMethod',
  };
  if (unsecured['@context'] !== undefined) proofOptions['@context'] = unsecured['@context'];
  const { combined } = hashData(unsecured, proofOptions);
  const proofValue = multibase58(signBytes(combined));
  return { ...unsecured, proof: { ...proofOptions, proofValue } };
}

/** Verify an `eddsa-jcs-2022` proof (did:key verification methods); returns the public key used. */
export function verifyProof(secured: unknown): { publicKey: Uint8Array; unsecured: Json } {
  if (typeof secured !== 'object' || secured === null || Array.isArray(secured))
    return bad('not a credential');
  const { proof, ...doc } = secured as Json;
  if (typeof proof !== 'object' || proof === null || Array.isArray(proof)) return vcInvalid('missing proof');
  const { proofValue, ...options } = proof as Json;
  if (options.type !== 'DataIntegrityProof' || options.cryptosuite !== 'eddsa-jcs-2022')
    vcInvalid('unsupported proof type');
  const vm = options.verificationMethod;
  const m =
    typeof vm === 'string' ? /^did:key:(z[1-9A-HJ-NP-Za-km-z]+)#(z[1-9A-HJ-NP-Za-km-z]+)$/.exec(vm) : null;
  if (!m || m[1] !== m[2]) return vcInvalid('verificationMethod must be a did:key');
  let publicKey: Uint8Array;
  try {
    publicKey = publicKeyFromMultibase(m[1]!);
  } catch {
    return vcInvalid('bad did:key');
  }
  const unsecured: Json = { ...doc };
  if (options['@context'] !== undefined) {
    const pc = options['@context'];
    const dc = doc['@context'];
    const arr = (x: unknown) => (Array.isArray(x) ? x : [x]);
    if (
      dc === undefined ||
      arr(pc).length > arr(dc).length ||
      arr(pc).some((c, i) => jcs(c) !== jcs(arr(dc)[i]))
    )
      vcInvalid('proof @context is not a prefix of the document @context');
    unsecured['@context'] = pc;
  }
  let sig: Uint8Array;
  try {
    sig = fromMultibase58(proofValue);
  } catch {
    return vcInvalid('malformed proofValue');
  }
  if (sig.length !== 64) vcInvalid('malformed proofValue');
  const { combined } = hashData(unsecured, options);
  if (!verifyBytes(publicKey, combined, sig)) vcInvalid('signature does not verify');
  return { publicKey, unsecured: doc };
}

/** Export a claim as a VC 2.0 with an eddsa-jcs-2022 proof by its asserter's key. */
export function claimToCredential(
  r: ClaimRecord,
  signBytes: (msg: Uint8Array) => Uint8Array,
  created = r.asserted_at,
): Json {
  const pk = publicKeyOf(r.asserted_by);
  const until = new Date(Date.parse(r.asserted_at) + r.ttl_days * 86_400_000)
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z');
  const vc: Json = {
    '@context': [VC_CONTEXT_V2],
    id: `urn:hearthnet:claim:${r.claim_id}`,
    type: ['VerifiableCredential', 'HearthNetClaim'],
    issuer: didKeyOf(pk),
    validFrom: r.asserted_at,
    validUntil: until,
    credentialSubject: { claim: r },
  };
  return addProof(vc, { created, verificationMethod: verificationMethodOf(pk) }, signBytes);
}

/** Import: verify the proof, then the embedded claim (§3.3), and that both share one key. */
export function credentialToClaim(vc: unknown): ClaimRecord {
  const { publicKey, unsecured } = verifyProof(vc);
  const types = unsecured.type;
  if (!Array.isArray(types) || !types.includes('VerifiableCredential') || !types.includes('HearthNetClaim'))
    bad('not a HearthNetClaim credential');
  const subject = unsecured.credentialSubject as Json | undefined;
  const r = verifyClaimRecord(subject?.claim);
  if (r.asserted_by !== nodeIdFromPublicKey(publicKey)) vcInvalid('issuer key differs from the asserter');
  if (unsecured.issuer !== didKeyOf(publicKey)) vcInvalid('issuer is not the proof key');
  if (unsecured.id !== `urn:hearthnet:claim:${r.claim_id}`)
    vcInvalid('credential id does not name the claim');
  return r;
}

/**
 * Harness op `vector` (in-process and served by serve-engine.ts): runs one vector through the
 * engine's own function for that family (canonical JSON, identity, signatures, protocol versions, X08
 * frames, M16 tokens), so the vector files' independent expected values are
 * checked against the implementation, not against the suite. Imports engine/ (harness side only).
 */
import { jcs } from '../../engine/core/canonical.js';
import { keyPairFromSeed, signBytes, verifyBytes } from '../../engine/identity/identity.js';
import { decodeFrame, encodeFrame, X08Error, type X08Frame } from '../../engine/transport/tensor/frame.js';
import { encodeToken, tokenWireCode, verifyToken, type TokenPayload } from '../../engine/tokens/token.js';
import { RevocationSet } from '../../engine/tokens/revocation.js';
import { runModuleVector } from './module-vector-ops.js';
import type { ErrorCode } from '../../engine/core/errors.js';
import type { NodeID, TrustLevel } from '../../engine/core/types.js';
import {
  compareVersions,
  formatVersion,
  isCompatible,
  negotiate,
  parseVersion,
} from '../../engine/protocol/version.js';

const hex = (s: unknown): Uint8Array => {
  const t = String(s);
  if (!/^([0-9a-f]{2})*$/i.test(t)) throw Object.assign(new Error('bad hex'), { code: 'bad_request' });
  return Uint8Array.from(t.match(/../g) ?? [], (b) => parseInt(b, 16));
};
const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const bad = (m: string) => Object.assign(new Error(m), { code: 'bad_request' });

/** X08 frames as JSON: byte fields (`data`, `nonce`) as hex, as in vectors/x08/frames.json */
const frameToJson = (f: X08Frame) => {
  const o: Record<string, unknown> = { ...f };
  for (const k of ['data', 'nonce']) if (o[k] instanceof Uint8Array) o[k] = toHex(o[k] as Uint8Array);
  return o;
};
const frameFromJson = (o: Record<string, unknown>) => {
  const f: Record<string, unknown> = { ...o };
  for (const k of ['data', 'nonce']) if (typeof f[k] === 'string') f[k] = hex(f[k]);
  return f as unknown as X08Frame;
};

/** core §7.2 on the engine's verifier: the local code (or 'ok') and its wire code */
function verifyTokenVector(input: any) {
  const rev = new RevocationSet();
  for (const j of (input.revoked_jtis ?? []) as string[]) rev.add(j, 'manual', Number(input.now));
  const members = (input.members ?? {}) as Record<string, TrustLevel | 'revoked'>;
  let local = 'ok';
  try {
    verifyToken(String(input.token), {
      now: Number(input.now),
      communityId: input.community_id as NodeID,
      membership: (id: NodeID) => members[id] ?? null,
      revocations: rev,
      callsUsed: () => Number(input.calls_used ?? 0),
    });
  } catch (e) {
    const code = (e as { code?: unknown })?.code;
    if (typeof code !== 'string') throw e;
    local = code;
  }
  return { local, wire: local === 'ok' ? 'ok' : tokenWireCode(local as ErrorCode) };
}

/** The families and ops of harness op `vector` (conformance/README.md); an async op answers a Promise. */
export function runVector(family: string, op: string, input: any): unknown {
  switch (`${family}/${op}`) {
    case 'canonical_json/jcs':
      return { value: jcs(JSON.parse(String(input.text))) };
    case 'identity/derive': {
      const kp = keyPairFromSeed(hex(input.seed_hex));
      return { public_key_hex: toHex(kp.publicKey), node_id: kp.nodeId };
    }
    case 'signatures/sign': {
      const kp = keyPairFromSeed(hex(input.seed_hex));
      return {
        public_key_hex: toHex(kp.publicKey),
        signature_hex: toHex(signBytes(kp, hex(input.message_hex))),
      };
    }
    case 'signatures/verify':
      return {
        valid: verifyBytes(hex(input.public_key_hex), hex(input.message_hex), hex(input.signature_hex)),
      };
    case 'x08/encode':
      return { hex: toHex(encodeFrame(frameFromJson(input.frame))) };
    case 'x08/decode':
      try {
        return { frame: frameToJson(decodeFrame(hex(input.hex))) };
      } catch (e) {
        // a refused frame answers with the NACK reason the decoder gives
        if (e instanceof X08Error) throw Object.assign(new Error(e.message), { code: e.reason });
        throw e;
      }
    case 'tokens/encode':
      return {
        token: encodeToken(keyPairFromSeed(hex(input.issuer_seed)), input.payload as TokenPayload),
      };
    case 'tokens/verify':
      return verifyTokenVector(input);
    case 'protocol/parse': {
      const v = parseVersion(input.version);
      if (!v) throw bad('not a ProtocolVersion');
      return { value: formatVersion(v) };
    }
    case 'protocol/compare': {
      const a = parseVersion(input.a);
      const b = parseVersion(input.b);
      if (!a || !b) throw bad('not a ProtocolVersion');
      return { value: Math.sign(compareVersions(a, b)), compatible: isCompatible(a, b) };
    }
    case 'protocol/negotiate': {
      const n = negotiate(input.local, input.peer);
      if (!n.ok) throw Object.assign(new Error('no agreement'), { code: n.error });
      return { value: n.agreed };
    }
  }
  const m = runModuleVector(family, op, input);
  if (m !== undefined) return m;
  throw Object.assign(new Error(`no vector op ${family}/${op}`), { code: 'not_found' });
}

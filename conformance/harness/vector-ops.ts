/**
 * Harness op `vector` (in-process and served by serve-engine.ts): runs one vector through the
 * engine's own function for that family, so the vector files' independent expected values are
 * checked against the implementation, not against the suite. Imports engine/ (harness side only).
 */
import { jcs } from '../../engine/core/canonical.js';
import { keyPairFromSeed, signBytes, verifyBytes } from '../../engine/identity/identity.js';
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

/** The families and ops of harness op `vector` (conformance/README.md). */
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
  throw Object.assign(new Error(`no vector op ${family}/${op}`), { code: 'not_found' });
}

/**
 * Deliberately broken builds of the engine for the mutation run (`run.ts`). Each mutant is one or
 * more literal source patches `{file, find, replace}` applied by the loader hook while a fresh child
 * process loads engine/ — the files on disk stay untouched and the product has no fault switch.
 * A patch whose `find` text is no longer in the file makes the mutant STALE (reported, never caught):
 * when engine code moves, update the patch here.
 * `section` is the suite section expected to catch the mutant.
 */
export interface Mutant {
  id: string;
  section: string;
  title: string;
  patches: { file: string; find: string; replace: string }[];
}

const CANON = 'engine/core/canonical.ts';
const IDENT = 'engine/identity/identity.ts';
const LOG = 'engine/events/log.ts';
const BUS = 'engine/bus/bus.ts';
const SESSION = 'engine/net/session.ts';
const PSERV = 'engine/protocol/service.ts';
const PREG = 'engine/protocol/registry.ts';
const PVER = 'engine/protocol/version.ts';
const PDESC = 'engine/protocol/descriptor.ts';
const X08S = 'engine/transport/tensor/session.ts';
const X08F = 'engine/transport/tensor/frame.ts';
const TOKS = 'engine/tokens/session.ts';
const VERIFY = 'engine/identity/verify.ts';
const HANDSHAKE = 'engine/net/handshake.ts';
const RPC = 'engine/net/rpc.ts';
const X08R = 'engine/transport/tensor/reassembly.ts';
const DUTY = 'engine/lora/duty_cycle.ts';
const MESH = 'engine/lora/adapters/meshtastic.ts';
const SCORER = 'engine/moe/scorer.ts';
const FMAN = 'engine/fedlearn/manifest.ts';
const FINIT = 'engine/fedlearn/lora-init.ts';
const FDELTA = 'engine/fedlearn/delta.ts';
const FAGG = 'engine/fedlearn/aggregator.ts';
const CIVREADS = 'engine/civdef/reads.ts';
const LPEERS = 'engine/lora/peer_map.ts';
const FADAPT = 'engine/fedlearn/adapters.ts';

const m = (
  id: string,
  section: string,
  title: string,
  file: string,
  find: string,
  replace: string,
): Mutant => ({
  id,
  section,
  title,
  patches: [{ file, find, replace }],
});

export const MUTANTS: Mutant[] = [
  // ---------- core/identity: canonical JSON, NodeIDs, signatures
  m(
    'jcs-no-key-sort',
    'core/identity',
    'JCS without the key sort',
    CANON,
    'Object.keys(v as object).sort()',
    'Object.keys(v as object)',
  ),
  m(
    'jcs-key-sort-codepoint',
    'core/identity',
    'JCS keys sorted by code point, not UTF-16 units',
    CANON,
    'Object.keys(v as object).sort()',
    'Object.keys(v as object).sort((a, b) => { const x = [...a].map((c) => c.codePointAt(0)!); const y = [...b].map((c) => c.codePointAt(0)!); for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!; return x.length - y.length; })',
  ),
  m(
    'jcs-negative-zero',
    'core/identity',
    'JCS writes -0 as "-0"',
    CANON,
    "out.push(Object.is(v, -0) ? '0' : String(v));",
    "out.push(Object.is(v, -0) ? '-0' : String(v));",
  ),
  m(
    'jcs-exponent-format',
    'core/identity',
    'JCS writes 1e+30 as 1e30',
    CANON,
    "out.push(Object.is(v, -0) ? '0' : String(v));",
    "out.push(Object.is(v, -0) ? '0' : String(v).replace('e+', 'e'));",
  ),
  m(
    'jcs-escape-non-ascii',
    'core/identity',
    'JCS escapes non-ASCII string characters as \\uXXXX',
    CANON,
    'out.push(JSON.stringify(v));',
    "out.push(JSON.stringify(v).replace(/[\\u0080-\\uffff]/g, (c) => '\\\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')));",
  ),
  m(
    'verify-any-signature',
    'core/identity',
    'Ed25519 verification accepts any signature',
    VERIFY,
    'return ed25519.verify(sig, msg, pk, { zip215: false });',
    'return sig.length === 64 || ed25519.verify(sig, msg, pk, { zip215: false });',
  ),
  m(
    'verify-ignores-body',
    'core/identity',
    'object verification leaves the body out of the signed bytes',
    IDENT,
    'msg = canonical(rest);',
    "msg = canonical('body' in rest ? { ...rest, body: null } : rest);",
  ),
  m(
    'sign-non-jcs',
    'core/identity',
    'objects signed over JSON.stringify bytes, not JCS',
    IDENT,
    'const sig = signBytes(kp, canonical(rest));',
    'const sig = signBytes(kp, new TextEncoder().encode(JSON.stringify(rest)));',
  ),
  // ---------- core/events
  m(
    'event-accept-bad-signature',
    'core/events',
    'gossiped events stored without checking the signature',
    LOG,
    'if (!verdict) {',
    'if (!ev.signature) {',
  ),
  m(
    'event-hash-wrong-bytes',
    'core/events',
    'event hash (prev, CID) over JSON.stringify, not JCS',
    LOG,
    'return { size: bytes.length, hash: `blake3:${toHex(blake3(bytes))}` };',
    'return { size: bytes.length, hash: `blake3:${toHex(blake3(new TextEncoder().encode(JSON.stringify(ev))))}` };',
  ),
  m(
    'event-other-community',
    'core/events',
    'events of another community accepted',
    LOG,
    'if (ev.community_id !== this.communityId)\n      throw',
    'if (ev.community_id === "")\n      throw',
  ),
  m(
    'descriptor-cid-wrong-bytes',
    'core/events',
    'descriptor CID hashes the descriptor without its signature',
    PDESC,
    'export const descriptorCid = (d: Record<string, unknown>): string => blake3Cid(d);',
    'export const descriptorCid = (d: Record<string, unknown>): string => blake3Cid(Object.fromEntries(Object.entries(d).filter(([k]) => k !== "signature")));',
  ),
  // ---------- core/bus
  m(
    'bus-wrong-not-found-code',
    'core/bus',
    'unknown capability answers bad_request instead of not_found',
    BUS,
    "throw new HnError('not_found', `capability ${r.name} is not offered here`);",
    "throw new HnError('bad_request', `capability ${r.name} is not offered here`);",
  ),
  m(
    'bus-skip-request-schema',
    'core/bus',
    'request bodies not validated against the schema',
    BUS,
    "assertSchema(d.request_schema, input, 'schema_mismatch', { schema_hash_expected: e.hash });",
    'void 0;',
  ),
  m(
    'bus-disabled-wrong-code',
    'core/bus',
    'a disabled module answers not_found instead of experimental_disabled',
    BUS,
    "throw new HnError('experimental_disabled', `module ${mod} is disabled on this node`);",
    "throw new HnError('not_found', `module ${mod} is disabled on this node`);",
  ),
  {
    id: 'bus-self-only-open',
    section: 'core/bus',
    title: 'self-only capabilities callable by peers (bus and protocol service checks both removed)',
    patches: [
      {
        file: BUS,
        find: 'if (!origin.isLocal) throw new HnError',
        replace: 'if (origin.isLocal === null) throw new HnError',
      },
      {
        file: PSERV,
        find: 'if (!c.isLocal) throw new HnError',
        replace: 'if (c.isLocal === null) throw new HnError',
      },
    ],
  },
  // ---------- core/transport
  m(
    'link-other-community',
    'core/transport',
    'a hello naming another community is accepted',
    HANDSHAKE,
    "if (m.community_id !== d.communityId) return no('other community');",
    "if (m.community_id === '') return no('other community');",
  ),
  m(
    'call-signature-unchecked',
    'core/transport',
    'signed calls run without verifying the signature',
    RPC,
    'verified = m.from === peer && (await verifyObjectAsync(signed, peer));',
    'verified = m.from === peer;',
  ),
  m(
    'link-no-live-gossip',
    'core/transport',
    'own events not pushed to linked peers',
    SESSION,
    "void this.send({ type: 'ev.push', community_id: this.d.communityId, events: [ev] });",
    'void ev;',
  ),
  // ---------- core/protocol
  m(
    'registry-no-rate-limit',
    'core/protocol',
    'announce rate limit never trips',
    PSERV,
    'if (list.length >= this.limit) {',
    'if (list.length >= this.limit * 1000) {',
  ),
  m(
    'registry-foreign-announce',
    'core/protocol',
    "a peer may announce another node's descriptor",
    PSERV,
    'if (!call.isLocal && call.caller !== d.node_id)',
    'if (!call.isLocal && call.caller === "")',
  ),
  m(
    'registry-unchanged-as-updated',
    'core/protocol',
    "an identical announce reports 'updated'",
    PREG,
    "return { entry: old, change: 'unchanged', newTriple };",
    "return { entry: old, change: 'updated', newTriple };",
  ),
  m(
    'negotiate-highest-offer',
    'core/protocol',
    "negotiation agrees on the peer's highest version",
    PVER,
    'agreed: formatVersion(compareVersions(a, b) <= 0 ? a : b)',
    'agreed: formatVersion(compareVersions(a, b) <= 0 ? b : a)',
  ),
  m(
    'negotiate-any-major',
    'core/protocol',
    'negotiation accepts a peer with no common major',
    PVER,
    "if (!common.length) return { ok: false, error: 'protocol_unsupported_capability' };",
    'if (!common.length) return { ok: true, agreed: formatVersion(l[0]!), major: l[0]!.major };',
  ),
  m(
    'suites-passed-empty',
    'core/protocol',
    'version.list never lists a passed suite',
    PSERV,
    'suites_passed: passed,',
    'suites_passed: passed.slice(0, 0),',
  ),
  // ---------- experimental/tensor_transport (X08)
  m(
    'x08-ignore-bye',
    'experimental/tensor_transport',
    'CONTROL_BYE from the peer is ignored',
    X08S,
    "const token = f.reason.split(' ')[0] || 'bye';\n        this.finish(",
    "const token = f.reason.split(' ')[0] || 'bye';\n        if (token) return;\n        this.finish(",
  ),
  m(
    'x08-accept-seq-gap',
    'experimental/tensor_transport',
    'a skipped session_seq is accepted',
    X08S,
    'if (f.seq !== wireSeq(this.recvLogical + 1))',
    'if (f.seq < wireSeq(this.recvLogical + 1))',
  ),
  m(
    'x08-no-pong',
    'experimental/tensor_transport',
    'PING never answered',
    X08S,
    'this.sendControl({ type: FrameType.CONTROL_PONG, seq: 0, flags: 0, nonce: f.nonce.slice() });',
    'void f;',
  ),
  m(
    'x08-pong-wrong-nonce',
    'experimental/tensor_transport',
    'PONG carries a zero nonce',
    X08S,
    'this.sendControl({ type: FrameType.CONTROL_PONG, seq: 0, flags: 0, nonce: f.nonce.slice() });',
    'this.sendControl({ type: FrameType.CONTROL_PONG, seq: 0, flags: 0, nonce: new Uint8Array(8) });',
  ),
  m(
    'x08-wrong-purpose-accepted',
    'experimental/tensor_transport',
    'HELLO for another purpose accepted',
    X08S,
    "if (hello.purpose !== o.expectedPurpose) throw new X08Error('purpose_mismatch', 'unexpected purpose');",
    'void 0;',
  ),
  m(
    'x08-token-unchecked',
    'experimental/tensor_transport',
    'session token never validated',
    X08S,
    'acceptance = await o.validateToken(hello.session_token, hello);',
    'acceptance = undefined as never;',
  ),
  m(
    'x08-token-reuse-accepted',
    'experimental/tensor_transport',
    'a single-use session token accepted again',
    TOKS,
    'if (!ctx.registry.consume(p.jti, p.exp))',
    'if (!ctx.registry.consume(p.jti + Math.random(), p.exp))',
  ),
  m(
    'x08-seq-gap-wrong-code',
    'experimental/tensor_transport',
    'a sequence gap NACKed as bad_frame instead of seq_gap',
    X08S,
    "throw new X08Error('seq_gap', 'sequence number is not last + 1');",
    "throw new X08Error('bad_frame', 'sequence number is not last + 1');",
  ),
  m(
    'x08-too-large-accepted',
    'experimental/tensor_transport',
    'tensors over rx_buffer_bytes_max accepted',
    X08R,
    "throw new X08Error('tensor_too_large', 'tensor exceeds rx_buffer_bytes_max');",
    'void 0;',
  ),
  m(
    'x08-header-swap',
    'experimental/tensor_transport',
    'frame header written with flags and payload_length swapped',
    X08F,
    'dv.setUint32(8, n);\n  dv.setUint32(12, flags >>> 0);',
    'dv.setUint32(12, n);\n  dv.setUint32(8, flags >>> 0);',
  ),
  // ---------- module families run through harness op vector (core/vectors VEC-12..VEC-15; the module
  // sections' bus cases catch some too, but core/vectors runs first)
  m(
    'lora-duty-window-inclusive',
    'core/vectors',
    'M29 duty cycle: an entry still counts exactly 3600 s after its time',
    DUTY,
    '.filter((e) => e.t > now - DUTY_WINDOW_MS)',
    '.filter((e) => e.t >= now - DUTY_WINDOW_MS)',
  ),
  m(
    'lora-duty-future-unclamped',
    'core/vectors',
    'M29 duty cycle: a future timestamp is kept as it is instead of counting as now',
    DUTY,
    '.map((e) => (e.t > now ? { ...e, t: now } : e))',
    '.map((e) => e)',
  ),
  m(
    'lora-duty-budget-tenth',
    'core/vectors',
    'M29 duty cycle: budget = percent · 3 600 ms instead of · 36 000 ms',
    DUTY,
    'round3(this.percent * 36_000)',
    'round3(this.percent * 3_600)',
  ),
  m(
    'lora-meshtastic-length-le',
    'core/vectors',
    'M29 Meshtastic: serial frame length written little-endian',
    MESH,
    'out[2] = pb.length >> 8;\n  out[3] = pb.length & 0xff;',
    'out[2] = pb.length & 0xff;\n  out[3] = pb.length >> 8;',
  ),
  m(
    'lora-meshtastic-tx-want-ack',
    'core/vectors',
    'M29 Meshtastic: beacons sent with want_ack (the radio would retry a broadcast)',
    MESH,
    'want_ack: false,',
    'want_ack: true,',
  ),
  m(
    'lora-meshtastic-rx-no-snr',
    'core/vectors',
    'M29 Meshtastic: a received frame loses its SNR',
    MESH,
    'snr: p.rx_snr ?? null,',
    'snr: null,',
  ),
  m(
    'moe-score-no-clamp',
    'core/vectors',
    'M27 scorer: raw + 0.1·score_bias not clamped to [0, 1]',
    SCORER,
    'return clamp01(raw + 0.1 * scoreBias);',
    'return raw + 0.1 * scoreBias;',
  ),
  m(
    'moe-score-weights-swapped',
    'core/vectors',
    'M27 scorer: tag and similarity weights swapped (0.30·tag + 0.45·sim)',
    SCORER,
    '0.45 * p.tag + 0.3 * p.sim',
    '0.3 * p.tag + 0.45 * p.sim',
  ),
  m(
    'moe-reliability-no-prior',
    'core/vectors',
    'M27 scorer: reliability without the Laplace prior ((helpful+1)/(rated+1))',
    SCORER,
    '(helpful + 1) / (rated + 2)',
    '(helpful + 1) / (rated + 1)',
  ),
  m(
    'fedlearn-manifest-unsorted',
    'core/vectors',
    'M28: manifest_sha over JSON.stringify (keys unsorted) instead of JCS',
    FMAN,
    'export const manifestBytes = (m: RoundManifest): Uint8Array => canonical(unsigned(m));',
    'export const manifestBytes = (m: RoundManifest): Uint8Array => new TextEncoder().encode(JSON.stringify(unsigned(m)));',
  ),
  m(
    'fedlearn-init-bound-rank',
    'core/vectors',
    'M28 LoRA init: A scaled by 1/√rank instead of 1/√d_in',
    FINIT,
    'const bound = 1 / Math.sqrt(shape[1]!);',
    'const bound = 1 / Math.sqrt(shape[0]!);',
  ),
  m(
    'fedlearn-delta-nan-accepted',
    'core/vectors',
    'M28 delta check 11: non-finite values accepted',
    FDELTA,
    "for (const v of t.data) if (!Number.isFinite(v)) throw bad('non_finite', { tensor: name });",
    'void 0;',
  ),
  m(
    'fedlearn-delta-base-wrong-code',
    'core/vectors',
    'M28 delta check 9: another base model refused as delta_invalid, not base_model_mismatch',
    FDELTA,
    "throw new HnError('base_model_mismatch', 'delta base model differs from the round', {",
    "throw new HnError('delta_invalid', 'delta base model differs from the round', {",
  ),
  m(
    'fedlearn-trim-ceil',
    'core/vectors',
    'M28 trimmed mean drops ⌈β·n⌉ at each end instead of ⌊β·n⌋',
    FAGG,
    'const k = Math.floor(beta * n);',
    'const k = Math.ceil(beta * n);',
  ),
  // ---------- module sections over the bus (the module switched on by the runner)
  m(
    'civdef-get-unknown-not-found',
    'experimental/civdef',
    'civdef alert.get of an unknown alert answers not_found instead of civdef_alert_not_found',
    CIVREADS,
    "(input as { alert_id: string }).alert_id);\n    if (!r) throw new HnError('civdef_alert_not_found', 'unknown alert');",
    "(input as { alert_id: string }).alert_id);\n    if (!r) throw new HnError('not_found', 'unknown alert');",
  ),
  m(
    'lora-verify-unknown-not-found',
    'experimental/lora',
    'lora peer.verify of a never-heard sender answers not_found instead of lora_peer_unknown',
    LPEERS,
    "throw new HnError('lora_peer_unknown',",
    "throw new HnError('not_found',",
  ),
  m(
    'fedlearn-adapter-unknown-not-found',
    'experimental/fedlearn',
    'fedlearn adapter.fetch of an unknown SHA answers not_found instead of adapter_not_found',
    FADAPT,
    "if (!a) throw new HnError('adapter_not_found', 'no adapter with that SHA');",
    "if (!a) throw new HnError('not_found', 'no adapter with that SHA');",
  ),
];

/**
 * M31 audit chain (digest §3.4, §4.8): hash-chained, signed entries; checkpoints that are RFC 9162
 * Merkle tree heads (with a consistency proof to the previous checkpoint); `verifyChain`, which names
 * the first bad sequence number; the JSONL export and its offline verification (`verifyExport`).
 * Pure apart from the signer passed in: the service owns the storage.
 */
import { canonical } from '../core/canonical.js';
import { fromHex, toHex } from '../core/encoding.js';
import { sha256Hex } from '../core/hash.js';
import type { NodeID } from '../core/types.js';
import { isNodeId, verifyObject, verifyObjects } from '../identity/identity.js';
import {
  consistencyProof,
  inclusionPath,
  leafHash,
  rootOf,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';
import type { Signer } from './role.js';
import { headsOf, verifyStatement, type WitnessStatement } from './witness.js';

export const AUDIT_EVENTS = [
  'genesis',
  'published',
  'forwarded',
  'acked',
  'mirrored',
  'cancelled',
  'dropped_revoked',
  'role_registered',
  'role_revoked',
  'checkpoint',
  'recheckpoint',
] as const;
export type AuditEvent = (typeof AUDIT_EVENTS)[number];
export const ZERO = '0'.repeat(64);
export const CHECKPOINT_EVERY = 1000;
export const EXPORT_FORMAT = 'hearthnet.civdef.audit/1';

export interface AuditEntry {
  seq: number;
  chain: NodeID;
  alert_id: string | null;
  event: AuditEvent;
  actor: NodeID;
  at: string;
  payload_sha: string;
  prev_sha: string;
  signature: string;
}
export interface CheckpointBody {
  upto_seq: number;
  head_hash: string;
  count: number;
  /** RFC 9162 tree head over entries 0..upto_seq (leaf = JCS bytes of the entry) */
  tree_size: number;
  tree_root: string;
  /** consistency proof from the previous checkpoint's tree (null for the first) */
  consistency: { from_size: number; from_root: string; path: string[] } | null;
  /** recheckpoint only */
  broken_at_seq?: number;
  reason?: string;
  operator_note?: string;
}
export interface VerifyReport {
  ok: boolean;
  checked: number;
  head_seq: number;
  head_hash: string;
  first_bad_seq?: number;
  reason?: string;
}
export interface Witness {
  chain: NodeID;
  seq: number;
  head_hash: string;
}

export const entryHash = (e: AuditEntry): string => sha256Hex(canonical(e));
export const payloadSha = (p: unknown): string => sha256Hex(canonical(p));
export const leafOf = (e: AuditEntry): Uint8Array => leafHash(canonical(e));

export function makeEntry(
  sign: Signer,
  f: {
    seq: number;
    chain: NodeID;
    alert_id: string | null;
    event: AuditEvent;
    actor: NodeID;
    at: string;
    prev_sha: string;
  },
  payload: unknown,
): AuditEntry {
  return sign({ ...f, payload_sha: payloadSha(payload) }) as AuditEntry;
}

/** Checkpoint body for entries[0..upto] (all leaves known), with consistency to `prev`. */
export function checkpointBody(
  entries: readonly AuditEntry[],
  prev: { tree_size: number; tree_root: string } | null,
): CheckpointBody {
  const leaves = entries.map(leafOf);
  const last = entries[entries.length - 1]!;
  return {
    upto_seq: last.seq,
    head_hash: entryHash(last),
    count: entries.length,
    tree_size: leaves.length,
    tree_root: toHex(rootOf(leaves)),
    consistency:
      prev && prev.tree_size > 0 && prev.tree_size <= leaves.length
        ? {
            from_size: prev.tree_size,
            from_root: prev.tree_root,
            path: consistencyProof(leaves, prev.tree_size).map(toHex),
          }
        : null,
  };
}

const isEntry = (e: unknown): e is AuditEntry => {
  if (typeof e !== 'object' || e === null) return false;
  const x = e as Record<string, unknown>;
  return (
    Number.isSafeInteger(x.seq) &&
    isNodeId(x.chain) &&
    (x.alert_id === null || typeof x.alert_id === 'string') &&
    (AUDIT_EVENTS as readonly string[]).includes(x.event as string) &&
    isNodeId(x.actor) &&
    typeof x.at === 'string' &&
    typeof x.payload_sha === 'string' &&
    typeof x.prev_sha === 'string' &&
    typeof x.signature === 'string' &&
    Object.keys(x).length === 9
  );
};

/**
 * §4.8 verify_chain over consecutive entries (the first may be an anchor at seq > 0, whose prev_sha is
 * then `anchorPrev` when known). Payloads (by seq) are checked where present; checkpoint payloads
 * are checked against the entries and, where possible, their Merkle roots and consistency proofs.
 */
export function verifyChain(
  entries: readonly unknown[],
  opts: {
    chain?: NodeID;
    payloads?: ReadonlyMap<number, unknown>;
    witnesses?: readonly Witness[];
    anchorPrev?: string | null;
    /** precomputed signature results by index (from `verifyChainBatch`) */
    sigOk?: readonly boolean[];
  } = {},
): VerifyReport {
  let headSeq = -1;
  let headHash = ZERO;
  const bad = (seq: number, reason: string, checked: number): VerifyReport => ({
    ok: false,
    checked,
    head_seq: headSeq,
    head_hash: headHash,
    first_bad_seq: seq,
    reason,
  });
  const hashes = new Map<number, string>();
  const leaves: Uint8Array[] = [];
  const fromZero = entries.length > 0 && (entries[0] as AuditEntry)?.seq === 0;
  const chain = opts.chain ?? (entries[0] as AuditEntry | undefined)?.chain;
  for (let i = 0; i < entries.length; i++) {
    const raw = entries[i];
    const expectSeq = i === 0 ? ((raw as AuditEntry)?.seq ?? 0) : headSeq + 1;
    if (!isEntry(raw)) return bad(expectSeq, 'malformed entry', i);
    const e = raw;
    if (e.seq !== expectSeq || (i === 0 && e.seq < 0))
      return bad(expectSeq, `sequence gap: expected ${expectSeq}, got ${e.seq}`, i);
    if (e.chain !== chain) return bad(e.seq, 'entry of another chain', i);
    if (i === 0) {
      if (e.seq === 0 && (e.prev_sha !== ZERO || e.event !== 'genesis')) return bad(0, 'bad genesis', i);
      if (e.seq > 0 && opts.anchorPrev && e.prev_sha !== opts.anchorPrev) return bad(e.seq, 'anchor link', i);
    } else if (e.prev_sha !== headHash) return bad(e.seq, 'prev_sha does not link', i);
    if (!(opts.sigOk ? opts.sigOk[i] === true : verifyObject(e as never, e.chain)))
      return bad(e.seq, 'bad signature', i);
    const p = opts.payloads?.get(e.seq);
    if (p !== undefined && p !== null) {
      let ps: string;
      try {
        ps = payloadSha(p);
      } catch {
        return bad(e.seq, 'payload not canonicalisable', i);
      }
      if (ps !== e.payload_sha) return bad(e.seq, 'payload_sha mismatch', i);
      if (e.event === 'checkpoint' || e.event === 'recheckpoint') {
        const cp = p as CheckpointBody;
        if (e.event === 'checkpoint' && hashes.has(cp.upto_seq) && hashes.get(cp.upto_seq) !== cp.head_hash)
          return bad(e.seq, 'checkpoint head_hash mismatch', i);
        if (e.event === 'recheckpoint' && cp.head_hash !== headHash)
          return bad(e.seq, 'recheckpoint head_hash mismatch', i);
        if (fromZero && e.event === 'checkpoint' && cp.tree_size === leaves.length && cp.tree_size > 0) {
          if (toHex(rootOf(leaves)) !== cp.tree_root) return bad(e.seq, 'checkpoint tree_root mismatch', i);
          if (cp.consistency) {
            const ok = verifyConsistency(
              cp.consistency.from_size,
              cp.tree_size,
              fromHex(cp.consistency.from_root),
              fromHex(cp.tree_root),
              cp.consistency.path.map(fromHex),
            );
            if (!ok) return bad(e.seq, 'consistency proof fails', i);
          }
        }
      }
    }
    headSeq = e.seq;
    headHash = entryHash(e);
    hashes.set(e.seq, headHash);
    if (fromZero) leaves.push(leafOf(e));
  }
  for (const w of opts.witnesses ?? []) {
    if (w.chain !== chain) continue;
    const h = hashes.get(w.seq);
    if (h !== undefined && h !== w.head_hash)
      return bad(w.seq, 'does not match a witnessed head (rewritten chain)', entries.length);
    if (h === undefined && w.seq > headSeq && fromZero)
      return bad(headSeq + 1, 'chain is shorter than a witnessed head (truncated)', entries.length);
  }
  return { ok: true, checked: entries.length, head_seq: headSeq, head_hash: headHash };
}

/** `verifyChain` with the Ed25519 checks done first as one batch on the platform's fastest verifier. */
export async function verifyChainBatch(
  entries: readonly unknown[],
  opts: Parameters<typeof verifyChain>[1] = {},
): Promise<VerifyReport> {
  const items = entries.map((e) =>
    isEntry(e) ? { obj: e as unknown as Record<string, unknown>, signer: e.chain } : null,
  );
  const ok = await verifyObjects(
    items.filter((x) => x !== null) as { obj: Record<string, unknown>; signer: NodeID }[],
  );
  let j = 0;
  const sigOk = items.map((x) => (x === null ? false : ok[j++] === true));
  return verifyChain(entries, { ...opts, sigOk });
}

export interface ExportFrame {
  type: 'header' | 'entry' | 'witness' | 'trailer';
  [k: string]: unknown;
}

/** Build the export frames for entries (seq-ordered, from the anchor) and their payloads. */
export function buildExport(
  sign: Signer,
  args: {
    chain: NodeID;
    entries: readonly AuditEntry[];
    payloadOf: (e: AuditEntry) => unknown;
    include: (e: AuditEntry) => boolean;
    filter: Record<string, unknown>;
    exported_at: string;
    verify: VerifyReport;
    /** all leaves of the chain from seq 0 (for inclusion proofs) */
    allLeaves: readonly Uint8Array[];
  },
): ExportFrame[] {
  const { entries } = args;
  const first = entries[0];
  const header = {
    type: 'header' as const,
    format: EXPORT_FORMAT,
    chain: args.chain,
    from_seq: first?.seq ?? 0,
    to_seq: entries.length ? entries[entries.length - 1]!.seq : -1,
    exported_at: args.exported_at,
    filter: args.filter,
    anchor: first && first.seq > 0 ? { seq: first.seq, prev_sha: first.prev_sha } : null,
  };
  const size = args.allLeaves.length;
  const frames: ExportFrame[] = [header];
  for (const e of entries) {
    const inc = args.include(e);
    frames.push({
      type: 'entry',
      entry: e,
      payload: inc ? args.payloadOf(e) : null,
      inclusion:
        inc && e.seq < size
          ? { leaf_index: e.seq, path: inclusionPath(args.allLeaves, e.seq).map(toHex) }
          : null,
    });
  }
  const last = entries[entries.length - 1];
  frames.push(
    sign({
      type: 'trailer' as const,
      count: entries.length,
      head_seq: last?.seq ?? -1,
      head_hash: last ? entryHash(last) : ZERO,
      tree: { size, root: toHex(rootOf(args.allLeaves)) },
      verify: args.verify,
    }) as ExportFrame,
  );
  return frames;
}

export const toJsonl = (frames: readonly ExportFrame[]): string =>
  frames.map((f) => JSON.stringify(f)).join('\n') + '\n';

/**
 * Offline verification of a JSONL export (the CLI and the app's "verify file"). Needs only the text,
 * optionally trusted chain owners and witnessed heads. A bad line names the seq where it can.
 */
export function verifyExport(
  text: string,
  opts: {
    trustedChains?: readonly string[];
    witnesses?: readonly Witness[];
    /** signed witness statements from elsewhere (gossip, a witness's own store) */
    statements?: readonly unknown[];
  } = {},
): VerifyReport & { line?: number; witness_statements?: number } {
  const lines = text.split('\n').filter((l) => l.length > 0);
  const fail = (seq: number, reason: string, line?: number) => ({
    ok: false,
    checked: 0,
    head_seq: -1,
    head_hash: ZERO,
    first_bad_seq: seq,
    reason,
    ...(line !== undefined ? { line } : {}),
  });
  const frames: ExportFrame[] = [];
  for (let i = 0; i < lines.length; i++) {
    try {
      frames.push(JSON.parse(lines[i]!) as ExportFrame);
    } catch {
      // name the seq of the line: the entry before + 1
      const prev = frames.filter((f) => f.type === 'entry').pop() as { entry?: AuditEntry } | undefined;
      return fail((prev?.entry?.seq ?? -1) + 1, 'line is not JSON', i + 1);
    }
  }
  const header = frames[0] as Record<string, any> | undefined;
  const trailer = frames[frames.length - 1] as Record<string, any> | undefined;
  if (!header || header.type !== 'header' || header.format !== EXPORT_FORMAT)
    return fail(0, 'missing header', 1);
  const chain = header.chain as NodeID;
  if (!isNodeId(chain)) return fail(0, 'bad chain id', 1);
  if (opts.trustedChains && opts.trustedChains.length && !opts.trustedChains.includes(chain))
    return fail(0, 'chain owner is not trusted', 1);
  const body = frames.slice(1, -1);
  const entries: unknown[] = [];
  const payloads = new Map<number, unknown>();
  const statements: WitnessStatement[] = [];
  for (let i = 0; i < body.length; i++) {
    const f = body[i] as Record<string, any>;
    if (f.type === 'witness') {
      if (!verifyStatement(f.statement) || f.statement.chain !== chain)
        return fail(f.statement?.seq ?? header.from_seq, 'witness statement invalid', i + 2);
      statements.push(f.statement);
      continue;
    }
    if (f.type !== 'entry') return fail(header.from_seq + i, 'unexpected frame', i + 2);
    entries.push(f.entry);
    if (f.payload !== null && f.payload !== undefined && typeof f.entry?.seq === 'number')
      payloads.set(f.entry.seq, f.payload);
  }
  const rep = verifyChain(entries, {
    chain,
    payloads,
    witnesses: [...(opts.witnesses ?? []), ...headsOf(statements), ...headsOf(opts.statements ?? [])],
    anchorPrev: header.anchor?.prev_sha ?? null,
  });
  if (!rep.ok) return rep;
  if (entries.length && (entries[0] as AuditEntry).seq !== header.from_seq)
    return fail(header.from_seq, 'first entry is not from_seq', 2);
  if (!trailer || trailer.type !== 'trailer')
    return { ...fail(rep.head_seq + 1, 'missing trailer (truncated export)'), checked: rep.checked };
  if (!verifyObject(trailer, chain)) return fail(rep.head_seq, 'trailer signature');
  if (
    trailer.count !== entries.length ||
    trailer.head_seq !== rep.head_seq ||
    trailer.head_hash !== rep.head_hash
  )
    return fail(rep.head_seq + 1, 'trailer does not match the entries (lines removed)');
  // inclusion proofs against the trailer's tree head
  const root = fromHex(trailer.tree.root);
  for (const f of body as Record<string, any>[]) {
    if (!f.inclusion) continue;
    const ok = verifyInclusion(
      leafOf(f.entry),
      f.inclusion.leaf_index,
      trailer.tree.size,
      f.inclusion.path.map(fromHex),
      root,
    );
    if (!ok || f.inclusion.leaf_index !== f.entry.seq) return fail(f.entry.seq, 'inclusion proof fails');
  }
  return { ...rep, witness_statements: statements.length };
}

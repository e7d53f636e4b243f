/**
 * M31 signed witness statements (beyond the digest, issue #14): a peer that receives a chain owner's
 * `civdef.audit.checkpointed` head signs `{chain, seq, head_hash, tree_size, tree_root, witness,
 * witnessed_at}` and gossips it as a `civdef.audit.checkpointed` event of its own carrying `statement`.
 * The owner keeps the statements about its chain and puts them into its audit export (`witness` frames);
 * any verifier — also one that never saw the old chain — checks the chain against every statement whose
 * signature holds: a rewritten or truncated chain disagrees with what its witnesses signed.
 */
import type { NodeID } from '../core/types.js';
import { isNodeId, verifyObject } from '../identity/identity.js';
import { TIME_RE, type Signer } from './role.js';

export const WITNESS_FORMAT = 'hearthnet.civdef.witness/1';
/** statements kept per chain (newest last) */
export const WITNESS_KEEP = 64;

export interface WitnessStatement {
  t: typeof WITNESS_FORMAT;
  chain: NodeID;
  seq: number;
  head_hash: string;
  tree_size: number;
  tree_root: string;
  witness: NodeID;
  witnessed_at: string;
  signature: string;
}
export type CheckpointHead = Pick<
  WitnessStatement,
  'chain' | 'seq' | 'head_hash' | 'tree_size' | 'tree_root'
>;

const HEX64 = /^[0-9a-f]{64}$/;
const FIELDS = [
  't',
  'chain',
  'seq',
  'head_hash',
  'tree_size',
  'tree_root',
  'witness',
  'witnessed_at',
  'signature',
];

/** A checkpointed event's head, or null when any field is malformed. */
export function headOf(d: Record<string, unknown>): CheckpointHead | null {
  const { chain, seq, head_hash, tree_size, tree_root } = d;
  if (!isNodeId(chain) || !Number.isSafeInteger(seq) || (seq as number) < 0) return null;
  if (typeof head_hash !== 'string' || !HEX64.test(head_hash)) return null;
  if (!Number.isSafeInteger(tree_size) || (tree_size as number) < 0) return null;
  if (typeof tree_root !== 'string' || !HEX64.test(tree_root)) return null;
  return { chain: chain as NodeID, seq: seq as number, head_hash, tree_size: tree_size as number, tree_root };
}

export function signStatement(
  sign: Signer,
  head: CheckpointHead,
  witness: NodeID,
  at: string,
): WitnessStatement {
  return sign({
    t: WITNESS_FORMAT,
    chain: head.chain,
    seq: head.seq,
    head_hash: head.head_hash,
    tree_size: head.tree_size,
    tree_root: head.tree_root,
    witness,
    witnessed_at: at,
  }) as WitnessStatement;
}

/** Shape (exactly the statement's fields) and the witness's Ed25519 signature. */
export function verifyStatement(s: unknown): s is WitnessStatement {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) return false;
  const o = s as Record<string, unknown>;
  if (Object.keys(o).length !== FIELDS.length || !FIELDS.every((k) => k in o)) return false;
  if (o.t !== WITNESS_FORMAT || !headOf(o) || !isNodeId(o.witness)) return false;
  if (o.witness === o.chain || typeof o.witnessed_at !== 'string' || !TIME_RE.test(o.witnessed_at))
    return false;
  if (typeof o.signature !== 'string') return false;
  try {
    return verifyObject(o, o.witness as NodeID);
  } catch {
    return false; // a malformed signature encoding is a failed verification
  }
}

/** The witnessed heads that statements vouch for (only those whose signature holds). */
export const headsOf = (
  statements: readonly unknown[],
): { chain: NodeID; seq: number; head_hash: string }[] =>
  statements.filter(verifyStatement).map((s) => ({ chain: s.chain, seq: s.seq, head_hash: s.head_hash }));

/** Add a statement to a chain's list: one per (witness, seq), newest kept. */
export function mergeStatements(prev: readonly WitnessStatement[], s: WitnessStatement): WitnessStatement[] {
  return [...prev.filter((x) => !(x.witness === s.witness && x.seq === s.seq)), s]
    .sort((a, b) => a.seq - b.seq)
    .slice(-WITNESS_KEEP);
}

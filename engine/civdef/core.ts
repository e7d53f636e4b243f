/**
 * M31 service, layer 1: state, start-up, the chain context for cert checks, and the node's own audit
 * chain (append in one transaction with the state change, checkpoints, re-checkpoint, verification,
 * export). Layers: core → receive (peers' events) → reads (list/get/acks/subscribe) → service (calls).
 */
import { HnError, toHnError } from '../core/errors.js';
import type { NodeID } from '../core/types.js';
import { ulidGenerator } from '../core/ulid.js';
import { queueTail } from '../core/vocab.js';
import type { Tx } from '../store/types.js';
import { SlidingLimiter } from './ack.js';
import { isoS, text } from './alert.js';
import {
  buildExport,
  checkpointBody,
  CHECKPOINT_EVERY,
  entryHash,
  leafOf,
  makeEntry,
  verifyChain,
  verifyChainBatch,
  ZERO,
  type AuditEntry,
  type AuditEvent,
  type CheckpointBody,
  type VerifyReport,
  type Witness,
} from './audit.js';
import { nrwAdapter, type RegionAdapter } from './regions/nrw.js';
import { certState, type ChainCtx, type RoleCertificate, type Revocation } from './role.js';
import { segmentPrefix } from './target.js';
import { STORES, bad, isObj, type CivDefDeps, type MetaRow, type Notice } from './records.js';
import {
  headOf,
  headsOf,
  mergeStatements,
  signStatement,
  verifyStatement,
  WITNESS_KEEP,
  type WitnessStatement,
} from './witness.js';

/** one head per (chain, seq, head_hash): this node's own sighting and peers' statements often agree */
const distinctHeads = (hs: Witness[]): Witness[] => [
  ...new Map(hs.map((h) => [`${h.chain}|${h.seq}|${h.head_hash}`, h])).values(),
];

/** a `civdef_audit_witness` row: heads this node saw, and signed statements about the chain */
type WitnessRow = { chain: NodeID; heads?: Witness[]; statements?: WitnessStatement[] };

const S = STORES;

export class CivDefCore {
  protected readonly now: () => number;
  protected readonly ulid;
  protected certs = new Map<string, RoleCertificate>();
  protected revs = new Map<string, Revocation>();
  protected head = { seq: -1, hash: ZERO };
  protected lastCheckpoint: { seq: number; tree_size: number; tree_root: string } | null = null;
  protected degraded: { first_bad_seq: number; reason: string } | null = null;
  protected queue: Promise<unknown> = Promise.resolve();
  protected publishLimiter = new SlidingLimiter(10, 60_000);
  protected registerLimiter = new SlidingLimiter(20, 60_000);
  protected inboundLimiter = new SlidingLimiter(30, 60_000);
  protected ackLimiter: SlidingLimiter;
  protected inboundAckLimiter: SlidingLimiter;
  protected listeners = new Set<(n: Notice) => void>();
  protected streams = new Map<string, number>();
  protected pending: Promise<unknown> = Promise.resolve();
  protected loraSent = new Set<string>();
  protected loraLast = -Infinity;
  /** in-memory one-off position (never stored) */
  position: { lon: number; lat: number } | null = null;

  constructor(protected readonly d: CivDefDeps) {
    this.now = d.now ?? Date.now;
    this.ulid = ulidGenerator(this.now);
    this.ackLimiter = new SlidingLimiter(d.settings().ack_max_per_minute_per_node);
    this.inboundAckLimiter = new SlidingLimiter(d.settings().ack_max_per_minute_per_node);
  }

  // ---------------------------------------------------------------- setup
  async start(): Promise<void> {
    for (const c of await this.d.db.getAll<RoleCertificate>(S.certs)) this.certs.set(c.cert_id, c);
    for (const r of await this.d.db.getAll<Revocation>(S.revocations)) this.revs.set(r.cert_id, r);
    const meta = await this.d.db.get<MetaRow>(S.meta, 'state');
    this.degraded = meta?.degraded ?? null;
    this.lastCheckpoint = meta?.last_checkpoint ?? null;
    const last = (
      await this.d.db.getAll<{ seq: number; entry: AuditEntry }>(S.audit, { reverse: true, limit: 1 })
    )[0];
    if (last) this.head = { seq: last.entry.seq, hash: entryHash(last.entry) };
    else
      await this.appendAudit('genesis', null, this.d.self, {
        chain: this.d.self,
        created_at: isoS(this.now()),
      });
    // startup verification (digest §4.8)
    await this.verifyAudit();
  }

  /** settle background work (receipt of peer events) */
  async idle(): Promise<void> {
    let p: Promise<unknown>;
    do {
      p = this.pending;
      await p;
      await this.queue;
    } while (p !== this.pending);
  }
  protected bg(f: () => Promise<unknown>): void {
    this.pending = this.pending
      .then(f)
      .catch((e) => this.d.log?.warn('civdef background', { code: toHnError(e).code }));
  }

  onNotice(cb: (n: Notice) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }
  protected emit(n: Notice) {
    for (const l of this.listeners) l(n);
  }

  adapterFor(region: string): RegionAdapter | null {
    return segmentPrefix('DE.NRW', region) ? nrwAdapter(this.d.settings().trust_roots as NodeID[]) : null;
  }
  protected roots(): Set<string> {
    return new Set(this.d.settings().trust_roots);
  }
  protected ctx(cert: { region: string }, bundle: RoleCertificate[] = []): ChainCtx {
    const byHolder = (h: NodeID) => [
      ...[...this.certs.values()].filter((c) => c.holder === h),
      ...bundle.filter((c) => c.holder === h),
    ];
    return {
      roots: this.roots(),
      adapter: this.adapterFor(cert.region),
      revoked: (id) => this.revs.has(id),
      certsOf: byHolder,
    };
  }
  protected myActiveCerts(): RoleCertificate[] {
    const now = this.now();
    return [...this.certs.values()].filter(
      (c) => c.holder === this.d.self && certState(c, now, this.ctx(c)) === 'active',
    );
  }

  // ---------------------------------------------------------------- audit
  /** Append one audit entry (and optional state writes) in one transaction; serialised. */
  protected appendAudit(
    event: AuditEvent,
    alert_id: string | null,
    actor: NodeID,
    payload: unknown,
    writes?: (tx: Tx) => Promise<void>,
    extraStores: string[] = [],
  ): Promise<AuditEntry> {
    const run = async () => {
      const entry = makeEntry(
        this.d.sign,
        {
          seq: this.head.seq + 1,
          chain: this.d.self,
          alert_id,
          event,
          actor,
          at: isoS(this.now()),
          prev_sha: this.head.hash,
        },
        payload,
      );
      await this.d.db.transaction([S.audit, ...extraStores], 'readwrite', async (tx) => {
        if (writes) await writes(tx);
        await tx.put(S.audit, { seq: entry.seq, alert_id, event, at: entry.at, entry, payload });
      });
      this.head = { seq: entry.seq, hash: entryHash(entry) };
      if (event !== 'checkpoint' && event !== 'recheckpoint' && (entry.seq + 1) % CHECKPOINT_EVERY === 0)
        await this.writeCheckpoint('checkpoint');
      return entry;
    };
    const p = this.queue.then(run, run);
    this.queue = queueTail(p); // the caller receives p's error
    return p;
  }

  protected async writeCheckpoint(
    kind: 'checkpoint' | 'recheckpoint',
    extra: Partial<CheckpointBody> = {},
  ): Promise<AuditEntry> {
    const rows = await this.d.db.getAll<{ entry: AuditEntry }>(S.audit);
    const body = {
      ...checkpointBody(
        rows.map((r) => r.entry),
        this.lastCheckpoint,
      ),
      ...extra,
    };
    const entry = makeEntry(
      this.d.sign,
      {
        seq: this.head.seq + 1,
        chain: this.d.self,
        alert_id: null,
        event: kind,
        actor: this.d.self,
        at: isoS(this.now()),
        prev_sha: this.head.hash,
      },
      body,
    );
    const cp = { seq: entry.seq, tree_size: body.tree_size, tree_root: body.tree_root };
    await this.d.db.transaction([S.audit, S.meta], 'readwrite', async (tx) => {
      await tx.put(S.audit, {
        seq: entry.seq,
        alert_id: null,
        event: kind,
        at: entry.at,
        entry,
        payload: body,
      });
      await tx.put(S.meta, {
        key: 'state',
        degraded: kind === 'recheckpoint' ? null : this.degraded,
        last_checkpoint: cp,
      });
    });
    this.head = { seq: entry.seq, hash: entryHash(entry) };
    this.lastCheckpoint = cp;
    if (kind === 'recheckpoint') this.degraded = null;
    await this.d.append('civdef.audit.checkpointed', {
      chain: this.d.self,
      seq: body.upto_seq,
      head_hash: body.head_hash,
      tree_size: body.tree_size,
      tree_root: body.tree_root,
    });
    return entry;
  }

  /** On-demand checkpoint (engine action). */
  checkpoint(): Promise<AuditEntry> {
    const p = this.queue.then(() => this.writeCheckpoint('checkpoint'));
    this.queue = queueTail(p); // the caller receives p's error
    return p;
  }

  /** Operator's re-checkpoint after a break (engine action, not a capability; §4.8). */
  recheckpoint(operator_note: string): Promise<AuditEntry> {
    const note = text(operator_note, 'operator_note', 1, 280);
    const broken = this.degraded;
    const p = this.queue.then(async () => {
      const last = (await this.d.db.getAll<{ entry: AuditEntry }>(S.audit, { reverse: true, limit: 1 }))[0]!;
      this.head = { seq: last.entry.seq, hash: entryHash(last.entry) };
      return this.writeCheckpoint('recheckpoint', {
        broken_at_seq: broken?.first_bad_seq ?? -1,
        reason: broken?.reason ?? 'operator',
        operator_note: note,
        head_hash: this.head.hash,
      });
    });
    this.queue = queueTail(p); // the caller receives p's error
    return p;
  }

  get isDegraded(): boolean {
    return this.degraded !== null;
  }

  /** every witnessed head: heads this node saw itself, and heads vouched for by signed statements */
  protected async witnesses(): Promise<Witness[]> {
    return distinctHeads(
      (await this.d.db.getAll<WitnessRow>(S.witness)).flatMap((w) => [
        ...(w.heads ?? []),
        ...headsOf(w.statements ?? []),
      ]),
    );
  }

  // ---------------------------------------------------------------- witnessing
  /** A `civdef.audit.checkpointed` event of a peer: an owner's head, or a witness's signed statement. */
  protected async receiveCheckpointed(d: Record<string, unknown>, author: NodeID): Promise<void> {
    if (d.statement !== undefined) {
      const s = d.statement;
      if (!verifyStatement(s) || s.witness !== author) {
        this.d.metrics?.inc('hearthnet_civdef_dropped_total', { reason: 'witness' });
        this.d.log?.warn('civdef witness statement dropped', { chain: (d as { chain?: string }).chain });
        return;
      }
      return this.storeWitness(s.chain, (row) => ({ statements: mergeStatements(row.statements ?? [], s) }));
    }
    const head = headOf(d);
    // only the chain's owner announces its heads; this node's own chain is not witnessed by itself
    if (!head || head.chain !== author || head.chain === this.d.self) return;
    const row = await this.d.db.get<WitnessRow>(S.witness, head.chain);
    if (row?.statements?.some((x) => x.witness === this.d.self && x.seq === head.seq)) return;
    const s = signStatement(this.d.sign, head, this.d.self, isoS(this.now()));
    await this.storeWitness(head.chain, (r) => ({
      heads: [
        ...(r.heads ?? []).filter((h) => h.seq !== head.seq),
        { chain: head.chain, seq: head.seq, head_hash: head.head_hash },
      ].slice(-WITNESS_KEEP),
      statements: mergeStatements(r.statements ?? [], s),
    }));
    await this.d.append('civdef.audit.checkpointed', { ...head, statement: s } as never);
  }

  private storeWitness(chain: NodeID, f: (row: WitnessRow) => Partial<WitnessRow>): Promise<void> {
    const run = async () => {
      const row = (await this.d.db.get<WitnessRow>(S.witness, chain)) ?? { chain };
      await this.d.db.put(S.witness, { ...row, ...f(row), chain });
    };
    // serialised with the audit queue so two statements for one chain never overwrite each other
    const p = this.queue.then(run, run);
    this.queue = queueTail(p); // the caller receives p's error
    return p;
  }

  /** heads this node witnessed for a chain, its own and those in signed statements */
  async witnessedHeads(chain: NodeID): Promise<Witness[]> {
    const row = await this.d.db.get<WitnessRow>(S.witness, chain);
    return distinctHeads([...(row?.heads ?? []), ...headsOf(row?.statements ?? [])]);
  }

  /** signed statements this node holds about a chain (its own chain: what its peers witnessed) */
  async witnessStatements(chain: NodeID = this.d.self): Promise<WitnessStatement[]> {
    return (await this.d.db.get<WitnessRow>(S.witness, chain))?.statements ?? [];
  }

  /** Full verification (startup, export, daily, the app's "verify"). A break sets degraded mode. */
  async verifyAudit(): Promise<VerifyReport> {
    await this.queue;
    const rows = await this.d.db.getAll<{ seq: number; entry: AuditEntry; payload: unknown }>(S.audit);
    const payloads = new Map(rows.map((r) => [r.seq, r.payload] as [number, unknown]));
    const entries = rows.map((r) => r.entry);
    let rep = await verifyChainBatch(entries, {
      chain: this.d.self,
      payloads,
      witnesses: await this.witnesses(),
    });
    // a recheckpoint acknowledges an earlier break: verify the part after it on its own
    if (!rep.ok && rep.first_bad_seq !== undefined) {
      const rc = rows.filter((r) => r.entry.event === 'recheckpoint' && r.seq > rep.first_bad_seq!).pop();
      if (rc) {
        const tail = rows.filter((r) => r.seq >= rc.seq);
        const r2 = verifyChain(
          tail.map((r) => r.entry),
          { chain: this.d.self, payloads },
        );
        if (r2.ok)
          rep = { ...r2, checked: rows.length, reason: `break at ${rep.first_bad_seq} re-checkpointed` };
        else rep = r2;
      }
    }
    if (!rep.ok && !this.degraded) {
      this.degraded = { first_bad_seq: rep.first_bad_seq!, reason: rep.reason ?? 'broken' };
      await this.d.db.put(S.meta, {
        key: 'state',
        degraded: this.degraded,
        last_checkpoint: this.lastCheckpoint,
      });
      await this.d.append('civdef.audit.broken', {
        chain: this.d.self,
        first_bad_seq: rep.first_bad_seq!,
        reason: rep.reason ?? '',
      });
      this.d.log?.warn('civdef audit chain broken', { first_bad_seq: rep.first_bad_seq });
    }
    return rep;
  }

  /** The last link before a publish (§4.8). */
  protected async verifyLastLink(): Promise<void> {
    await this.queue;
    const rows = await this.d.db.getAll<{ entry: AuditEntry }>(S.audit, { reverse: true, limit: 2 });
    if (rows.length === 0) return;
    const es = rows.map((r) => r.entry).reverse();
    const rep = verifyChain(es, { chain: this.d.self, anchorPrev: null });
    if (!rep.ok || entryHash(es[es.length - 1]!) !== this.head.hash) {
      const seq = rep.first_bad_seq ?? es[es.length - 1]!.seq;
      this.degraded = { first_bad_seq: seq, reason: rep.reason ?? 'head mismatch' };
      await this.d.db.put(S.meta, {
        key: 'state',
        degraded: this.degraded,
        last_checkpoint: this.lastCheckpoint,
      });
      await this.d.append('civdef.audit.broken', {
        chain: this.d.self,
        first_bad_seq: seq,
        reason: this.degraded.reason,
      });
    }
  }

  /** audit.export frames (§4.8). `alert_id` / `since` filter payloads; every entry is present. */
  async exportFrames(input: unknown) {
    const q = (isObj(input) ? input : {}) as Record<string, any>;
    const format = q.format ?? 'jsonl';
    if (format === 'pdf') throw new HnError('not_implemented', 'pdf export is not in v1');
    if (format !== 'jsonl') bad('format must be jsonl or pdf');
    if (q.alert_id !== undefined && typeof q.alert_id !== 'string') bad('alert_id');
    if (q.since !== undefined && (typeof q.since !== 'string' || Number.isNaN(Date.parse(q.since))))
      bad('since');
    const rep = await this.verifyAudit();
    const rows = await this.d.db.getAll<{ seq: number; entry: AuditEntry; payload: unknown }>(S.audit);
    let from = 0;
    if (q.since) {
      const cps = rows.filter(
        (r) => (r.entry.event === 'checkpoint' || r.entry.event === 'recheckpoint') && r.entry.at <= q.since,
      );
      from = cps.length ? cps[cps.length - 1]!.seq : 0;
    }
    const inRange = rows.filter((r) => r.seq >= from);
    const payloads = new Map(rows.map((r) => [r.seq, r.payload]));
    const frames = buildExport(this.d.sign, {
      chain: this.d.self,
      entries: inRange.map((r) => r.entry),
      payloadOf: (e) => payloads.get(e.seq) ?? null,
      include: (e) =>
        (q.alert_id === undefined ||
          e.alert_id === q.alert_id ||
          e.event === 'checkpoint' ||
          e.event === 'recheckpoint' ||
          e.event === 'genesis') &&
        (q.since === undefined || e.at >= q.since || e.seq === from),
      filter: { ...(q.alert_id ? { alert_id: q.alert_id } : {}), ...(q.since ? { since: q.since } : {}) },
      exported_at: isoS(this.now()),
      verify: rep,
      allLeaves: rows.map((r) => leafOf(r.entry)),
    });
    // peers' signed statements about this chain travel with the export (before the trailer)
    const statements = (await this.witnessStatements()).map((statement) => ({
      type: 'witness' as const,
      statement,
    }));
    frames.splice(frames.length - 1, 0, ...statements);
    return { frames, report: rep };
  }

  /** Test and admin hook: the raw audit rows (seq, entry, payload). */
  async auditRows() {
    return this.d.db.getAll<{ seq: number; entry: AuditEntry; payload: unknown }>(S.audit);
  }
}

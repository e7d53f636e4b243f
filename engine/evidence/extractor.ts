/**
 * M30 extraction (digest §4.7): other modules' events → ClaimDraft suggestions. Drafts stay local,
 * are never gossiped and become claims only when the operator asserts them (no auto-assert).
 * LoRa beacons are never extracted.
 */
import { isNodeId } from '../identity/identity.js';
import type { EventEnvelope } from '../events/log.js';

export interface DraftInput {
  subject: string;
  predicate: string;
  object: string;
  sources?: { source_id: string; content_sha?: string | null; excerpt?: string | null }[];
  claim_type?: string;
}
export type Matcher = (
  ev: Pick<EventEnvelope, 'event_type' | 'event_id' | 'author' | 'data'>,
) => DraftInput[];

const str = (v: unknown, max = 2048): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;
const SHA_RE = /^(sha256|blake3):[0-9a-f]{64}$/;
const HEX64 = /^[0-9a-f]{64}$/;
const shaOf = (v: unknown): string | null =>
  typeof v === 'string' ? (SHA_RE.test(v) ? v : HEX64.test(v) ? `sha256:${v}` : null) : null;

/** The built-in `extract_patterns`, keyed by pattern name. */
export const BUILTIN_PATTERNS: Record<string, { trigger: string | null; matcher: Matcher }> = {
  kb_ingest: {
    trigger: 'rag.document.ingested',
    matcher: (ev) => {
      const d = ev.data;
      const doc = shaOf(d.doc_sha ?? d.document_sha ?? d.sha);
      const text = shaOf(d.text_hash ?? d.text_sha);
      if (!doc || !text) return [];
      return [
        {
          subject: doc,
          predicate: 'contains_text',
          object: text,
          sources: [{ source_id: `doc:${doc.startsWith('blake3:') ? doc : doc.replace(/^sha256:/, '')}` }],
        },
      ];
    },
  },
  tool_fetch: {
    trigger: null, // in-process hook: no event type exists
    matcher: (ev) => {
      const d = ev.data;
      const sha = shaOf(d.content_sha);
      if (!str(d.url) || !/^https?:\/\//.test(d.url) || !sha) return [];
      return [
        {
          subject: d.url,
          predicate: 'served',
          object: sha,
          sources: [{ source_id: `url:${d.url}`, content_sha: sha }],
        },
      ];
    },
  },
  federation_manifest: {
    trigger: 'federation.peer.added',
    matcher: (ev) => {
      const d = ev.data;
      const node = d.node_id ?? d.peer;
      const caps = Array.isArray(d.capabilities) ? d.capabilities : [];
      if (!isNodeId(node)) return [];
      return caps
        .filter((c): c is string => str(c, 256))
        .slice(0, 64)
        .map((cap) => ({
          subject: `node:${node}`,
          predicate: 'advertises_capability',
          object: cap,
          sources: [{ source_id: `event:${ev.event_id}` }],
        }));
    },
  },
  protocol_descriptor: {
    trigger: 'protocol.descriptor.announced',
    matcher: (ev) => {
      const d = ev.data;
      if (!isNodeId(d.node_id)) return [];
      const versions = Array.isArray(d.protocol_versions) ? d.protocol_versions : [];
      const src: DraftInput['sources'] = [{ source_id: `event:${ev.event_id}` }];
      if (typeof d.descriptor_cid === 'string' && /^blake3:[0-9a-f]{64}$/.test(d.descriptor_cid))
        src.push({ source_id: `doc:${d.descriptor_cid}` });
      return versions
        .filter((v): v is string => str(v, 70))
        .slice(0, 16)
        .map((v) => ({
          subject: `node:${d.node_id as string}`,
          predicate: 'advertises_capability',
          object: `hearthnet-protocol/${v}`,
          sources: src,
        }));
    },
  },
  shard_advert: {
    trigger: 'distributed_llm.shard.advertised',
    matcher: (ev) => {
      const d = ev.data;
      const node = d.node_id ?? ev.author;
      const id = d.shard_id ?? d.id;
      if (!isNodeId(node) || !str(id, 512)) return [];
      return [
        {
          subject: `node:${node}`,
          predicate: 'serves_shard',
          object: id,
          sources: [{ source_id: `event:${ev.event_id}` }],
        },
      ];
    },
  },
};

export class Extractor {
  private patterns = new Map<string, { trigger: string | null; matcher: Matcher }>();
  constructor(enabled = true) {
    if (enabled) for (const [k, v] of Object.entries(BUILTIN_PATTERNS)) this.patterns.set(k, v);
  }
  /** Add (or replace) a pattern: `trigger` is the event type it listens to (null: in-process only). */
  register_pattern(name: string, matcher: Matcher, trigger: string | null = null): void {
    this.patterns.set(name, { trigger, matcher });
  }
  /** Drafts suggested by one event (never throws; a matcher that fails suggests nothing). */
  consume(
    ev: Pick<EventEnvelope, 'event_type' | 'event_id' | 'author' | 'data'>,
  ): { pattern: string; draft: DraftInput }[] {
    if (ev.event_type.startsWith('lora.')) return [];
    const out: { pattern: string; draft: DraftInput }[] = [];
    for (const [name, p] of this.patterns) {
      if (p.trigger !== ev.event_type) continue;
      try {
        for (const draft of p.matcher(ev)) out.push({ pattern: name, draft });
      } catch {
        /* a broken matcher suggests nothing */
      }
    }
    return out;
  }
  /** The in-process `tool_fetch` hook. */
  toolFetch(url: string, content_sha: string): DraftInput[] {
    return (
      this.patterns.get('tool_fetch')?.matcher({
        event_type: 'tool.fetch',
        event_id: '',
        author: '' as never,
        data: { url, content_sha },
      }) ?? []
    );
  }
}

/**
 * M28 Federated learning — module definition. Capabilities registered only while on; rounds, consent,
 * submissions, aggregation and adapters live in participant.ts / coordinator.ts; this file wires them to
 * the host: the community view (announce level), the event subscription (announced/completed/aborted
 * from peers), the module's stores, and the local engine API (FEDLEARN_SERVICES) the app uses for
 * consent records, training texts, the trainer and the base model.
 */
import * as C from '../core/constants.js';
import { bool, fieldError, int, num, oneOf } from '../core/config-fields.js';
import type { NodeID } from '../core/types.js';
import type { Capability } from '../bus/types.js';
import { COMMUNITY_EVENT_TYPES, CommunityView } from '../identity/community.js';
import type { ModuleDefinition } from '../modules/module.js';
import { descriptor } from '../modules/registry.js';
import { FedLearnService } from './participant.js';

/** [fedlearn] config section (seed §8; field list owned by the module digest). */
export const config = {
  enabled: bool(false),
  max_lora_rank: int(C.FEDLEARN_MAX_LORA_RANK, 1, C.FEDLEARN_MAX_LORA_RANK),
  max_lora_target_modules: int(C.FEDLEARN_MAX_LORA_TARGET_MODULES, 1, C.FEDLEARN_MAX_LORA_TARGET_MODULES),
  max_train_steps: int(C.FEDLEARN_MAX_TRAIN_STEPS, 1, C.FEDLEARN_MAX_TRAIN_STEPS),
  min_participants: int(
    C.FEDLEARN_MIN_PARTICIPANTS,
    C.FEDLEARN_MIN_PARTICIPANTS,
    C.FEDLEARN_MAX_PARTICIPANTS,
  ),
  max_participants: int(
    C.FEDLEARN_MAX_PARTICIPANTS,
    C.FEDLEARN_MIN_PARTICIPANTS,
    C.FEDLEARN_MAX_PARTICIPANTS,
  ),
  dp_noise_scale: num(C.FEDLEARN_DP_NOISE_SCALE_DEFAULT, 0, 100),
  clip_norm: num(C.FEDLEARN_CLIP_NORM_DEFAULT, 0, 1e6),
  submission_max_bytes: int(C.FEDLEARN_SUBMISSION_MAX_BYTES, 1, C.FEDLEARN_SUBMISSION_MAX_BYTES),
  require_secure_aggregation: bool(false),
  auto_apply_aggregated: bool(false),
  training_vram_budget_mb: int(8192, 0, 1 << 20),
  training_disk_budget_mb: int(4096, 0, 1 << 24),
  max_round_minutes: int(120, 1, 7 * 24 * 60),
  takeover_grace_seconds: int(600, 1, 86400),
  announce_min_level: oneOf('anchor', ['member', 'trusted', 'anchor']),
  submission_retention_hours: int(24, 1, 24 * 365),
};

export const CAPABILITIES = [
  'experimental.fedlearn.round.announce',
  'experimental.fedlearn.round.list',
  'experimental.fedlearn.round.join',
  'experimental.fedlearn.round.submit',
  'experimental.fedlearn.round.status',
  'experimental.fedlearn.round.finalize',
  'experimental.fedlearn.adapter.fetch',
  'experimental.fedlearn.adapter.apply',
] as const;

export const EVENT_TYPES = [
  'fedlearn.round.announced',
  'fedlearn.round.joined',
  'fedlearn.round.consent.granted',
  'fedlearn.round.submitted',
  'fedlearn.round.aggregated',
  'fedlearn.round.completed',
  'fedlearn.round.aborted',
  'fedlearn.round.takeover',
  'fedlearn.adapter.published',
  'fedlearn.adapter.applied',
] as const;

export const fedlearn: ModuleDefinition<'fedlearn', typeof config> = {
  name: 'fedlearn',
  seedId: 'M28',
  config,
  checkConfig(s) {
    if (s.min_participants > s.max_participants)
      throw fieldError('fedlearn.min_participants', 'must not exceed fedlearn.max_participants');
  },
  capabilityNames: CAPABILITIES,
  events: EVENT_TYPES.map((type) => ({ type })),
  view: {
    title: 'Federated learning',
    blurb: 'LoRA fine-tuning on local data, merged with FedAvg (M28).',
    icon: '🎓',
    load: () => import('./View.svelte'),
  },
  stores: [
    { name: 'consents', keyPath: 'round_id' },
    { name: 'adapters', keyPath: 'sha' },
    { name: 'training_data', keyPath: 'id' },
  ],
  storesVersion: 1,
  create(c) {
    let svc: FedLearnService | null = null;
    const admission = (c.configOf('community')?.admission as 'open' | 'invite' | undefined) ?? 'open';
    const community = new CommunityView(c.communityId, admission);
    const communityTypes = new Set<string>(COMMUNITY_EVENT_TYPES);
    const need = () => {
      if (!svc) throw new Error('fedlearn module not started');
      return svc;
    };
    const self = { trust_required: 'self' as const };
    const member = { trust_required: 'member' as const };
    const cap = (n: string, over: object, h: Capability['handler']): Capability => ({
      descriptor: descriptor(`experimental.fedlearn.${n}`, 'fedlearn', over),
      handler: h,
    });
    return {
      capabilities: () => [
        cap('round.announce', self, async (i) => need().announce(i)),
        cap('round.list', { ...member, idempotent: true }, async (i) => need().list(i ?? {})),
        cap('round.join', member, async (i, ctx) => need().join(i ?? {}, ctx)),
        cap('round.submit', { ...member, timeout_seconds: 300 }, async (i, ctx) =>
          need().submit(i ?? {}, ctx),
        ),
        cap('round.status', { ...member, idempotent: true }, async (i, ctx) => need().status(i ?? {}, ctx)),
        cap('round.finalize', { ...self, timeout_seconds: 120 }, async (i) => need().finalize(i ?? {})),
        cap('adapter.fetch', { ...member, idempotent: true }, async (i, ctx) => need().fetch(i ?? {}, ctx)),
        cap('adapter.apply', self, async (i) => need().apply(i ?? {})),
      ],
      async start() {
        const db = await c.openStore();
        for (const t of COMMUNITY_EVENT_TYPES)
          for (const ev of await c.events.list({ type: t })) community.apply(ev as never);
        const s = new FedLearnService({
          self: c.self,
          sign: (o) => c.sign(o),
          append: (t, d) => c.events.append(t, d),
          now: () => c.clock.now(),
          setTimeout: (fn, ms) => c.clock.setTimeout(fn, ms),
          call: (capName, input, peer) => c.bus.call(capName, input, { peer: peer as NodeID }),
          levelOf: (n) => community.levelOf(n as NodeID),
          settings: () => c.config(),
          db: {
            get: (st, k) => db.get(st, k),
            put: (st, v) => db.put(st, v as never),
            getAll: (st) => db.getAll(st),
          },
          log: c.log,
        });
        svc = s;
        FEDLEARN_SERVICES.set(c.self, s);
        const onEvent = (ev: { event_type: string; data: Record<string, unknown>; author: string }) => {
          if (communityTypes.has(ev.event_type)) community.apply(ev as never);
          if (ev.event_type === 'fedlearn.round.announced') s.ingestAnnounced(ev.data);
          if (ev.event_type === 'fedlearn.round.completed') s.ingestEnded('completed', ev.data, ev.author);
          if (ev.event_type === 'fedlearn.round.aborted') s.ingestEnded('aborted', ev.data, ev.author);
          if (ev.event_type === 'fedlearn.round.joined') s.ingestParticipant('joined', ev.data, ev.author);
          if (ev.event_type === 'fedlearn.round.submitted')
            s.ingestParticipant('submitted', ev.data, ev.author);
        };
        for (const t of [
          'fedlearn.round.announced',
          'fedlearn.round.joined',
          'fedlearn.round.submitted',
          'fedlearn.round.completed',
          'fedlearn.round.aborted',
        ])
          for (const ev of await c.events.list({ type: t })) onEvent(ev);
        c.events.subscribe((ev) => onEvent(ev));
      },
      stop() {
        if (svc && FEDLEARN_SERVICES.get(c.self) === svc) FEDLEARN_SERVICES.delete(c.self);
        svc = null;
      },
    };
  },
};

/**
 * The inference model this page serves (the app sets it when a model is loaded, clears it on unload):
 * where "try it in chat" (with `sessionId`: that chat session only) and "apply" (without: the node's
 * model, what peers get too) put an adapter (`null` removes it).
 */
export interface InferenceTarget {
  model_id: string;
  setAdapter(adapter: Uint8Array | null, sessionId?: string): Promise<unknown>;
}
export const FEDLEARN_INFERENCE: { target: InferenceTarget | null } = { target: null };

/**
 * This tab's Local chat session id (sent as `llm.chat` input.session_id): created by the first of the
 * chat panel or "Try it in chat" that asks, then shared, so the adapter tried lands in that chat.
 */
export const CHAT_SESSION: { id: string | null } = { id: null };
export function chatSessionId(): string {
  if (!CHAT_SESSION.id) {
    const b = globalThis.crypto.getRandomValues(new Uint8Array(8));
    CHAT_SESSION.id = `chat-${[...b].map((x) => x.toString(16).padStart(2, '0')).join('')}`;
  }
  return CHAT_SESSION.id;
}

/** Running services by node id: the app's local engine API (consent records, training texts, trainer, base model). */
export const FEDLEARN_SERVICES = new Map<string, FedLearnService>();

export default fedlearn;

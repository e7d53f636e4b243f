/**
 * M27 Mixture of experts — module definition. Wires the router service (registry view, routing,
 * feedback, learned scorer) and the human handoff manager to the module host: six capabilities while
 * on, eight event types, the module's own stores, the handoff link messages (chat lines and close
 * notices, never in the event log), peer-link retries and the retrain timer.
 */
import * as C from '../core/constants.js';
import { HnError } from '../core/errors.js';
import { bool, int, num, oneOf } from '../core/config-fields.js';
import type { ModuleDefinition } from '../modules/module.js';
import { descriptor } from '../modules/registry.js';
import { COMMUNITY_EVENT_TYPES, CommunityView } from '../identity/community.js';
import type { NodeID } from '../core/types.js';
import { HandoffManager } from './human_in_the_loop.js';
import { askModelExpert, type ModelAnswer } from './model_expert.js';
import { MoeService, type MoeSettings } from './router.js';

/** [moe] config section (seed §8; field list owned by the module digest). */
export const config = {
  enabled: bool(false),
  top_k_default: int(C.MOE_TOP_K_DEFAULT, 1, 64),
  scorer: oneOf('auto', ['auto', 'rule_based', 'learned']),
  learned_min_samples: int(C.MOE_LEARNED_SCORER_MIN_FEEDBACK_SAMPLES, 1, 1_000_000),
  retrain_every_hours: int(24, 1, 24 * 365),
  auto_route_threshold: num(0.85, 0, 1),
  requests_per_user_per_hour: int(60, 1, 100_000),
  publish_route_events: bool(false),
  handoff_enabled: bool(true),
  handoff_default_timeout_hours: int(C.MOE_HUMAN_HANDOFF_DEFAULT_TIMEOUT_HOURS, 1, 24 * 30),
  handoff_cooldown_hours: int(C.MOE_HUMAN_HANDOFF_COOLDOWN_HOURS, 0, 24 * 30),
  handoff_max_per_day: int(C.MOE_HUMAN_RATE_LIMIT_PER_DAY, 0, 1000),
  allow_external: bool(false),
  share_feedback: bool(true),
};

export const CAPABILITIES = [
  'experimental.moe.expert.register',
  'experimental.moe.expert.list',
  'experimental.moe.expert.unregister',
  'experimental.moe.route.query',
  'experimental.moe.route.handoff',
  'experimental.moe.feedback.record',
] as const;

export const EVENT_TYPES = [
  'moe.expert.registered',
  'moe.expert.unregistered',
  'moe.route.computed',
  'moe.handoff.initiated',
  'moe.handoff.accepted',
  'moe.handoff.declined',
  'moe.handoff.timed_out',
  'moe.feedback.recorded',
] as const;

const LINK_MESSAGES = [
  {
    type: 'moe.message',
    schema: {
      type: 'object',
      required: ['handoff_id', 'text'],
      properties: {
        handoff_id: { type: 'string', minLength: 1, maxLength: 64 },
        text: { type: 'string', minLength: 1, maxLength: 4000 },
      },
      additionalProperties: false,
    },
  },
  {
    type: 'moe.closed',
    schema: {
      type: 'object',
      required: ['handoff_id', 'state'],
      properties: {
        handoff_id: { type: 'string', minLength: 1, maxLength: 64 },
        state: { enum: ['completed', 'cancelled', 'timed_out'] },
      },
      additionalProperties: false,
    },
  },
];

export const STORES = [
  { name: 'routes', keyPath: 'route_id' },
  { name: 'handoffs', keyPath: 'handoff_id' },
  { name: 'offers', keyPath: 'handoff_id' },
  { name: 'conversations', keyPath: 'handoff_id' },
  { name: 'sent', keyPath: 'id' },
  { name: 'feedback', keyPath: 'feedback_id' },
  { name: 'state', keyPath: 'key' },
];

/** Running instances by node id: the app's Ask / Experts views (inbox, conversation, listeners). */
export interface MoeInstance {
  svc: MoeService;
  handoffs: HandoffManager;
  /** run a model expert through `llm.chat` on the bus (its host's, or this node's); see model_expert.ts */
  askModel(input: unknown): Promise<ModelAnswer>;
}
export const MOE_INSTANCES = new Map<string, MoeInstance>();

export const moe: ModuleDefinition<'moe', typeof config> = {
  name: 'moe',
  seedId: 'M27',
  config,
  capabilityNames: CAPABILITIES,
  events: EVENT_TYPES.map((type) => ({ type })),
  stores: STORES,
  storesVersion: 1,
  linkMessages: LINK_MESSAGES,
  view: {
    title: 'Mixture of experts',
    blurb: 'Route a question to the best models, services or people (M27).',
    icon: '🧭',
    load: () => import('./View.svelte'),
  },
  create(c) {
    let svc: MoeService | null = null;
    let hm: HandoffManager | null = null;
    const admission = (c.configOf('community')?.admission as 'open' | 'invite' | undefined) ?? 'open';
    const community = new CommunityView(c.communityId, admission);
    const communityTypes = new Set<string>(COMMUNITY_EVENT_TYPES);
    const need = () => {
      if (!svc || !hm) throw new Error('moe module not started');
      return { svc, hm };
    };
    const self = { trust_required: 'self' as const };
    return {
      capabilities: () => [
        {
          descriptor: descriptor('experimental.moe.expert.register', 'moe', self),
          handler: async (i, ctx) => need().svc.register(i, ctx.caller),
        },
        {
          descriptor: descriptor('experimental.moe.expert.list', 'moe', {
            trust_required: 'member',
            idempotent: true,
          }),
          handler: async (i) => need().svc.list(i),
        },
        {
          descriptor: descriptor('experimental.moe.expert.unregister', 'moe', self),
          handler: async (i, ctx) => {
            const n = need();
            return n.svc.unregister(i, ctx.caller, (id, reason) => n.hm.expertRemoved(id, reason));
          },
        },
        {
          descriptor: descriptor('experimental.moe.route.query', 'moe', self),
          handler: async (i, ctx) => need().svc.query(i, ctx.caller),
        },
        {
          descriptor: descriptor('experimental.moe.route.handoff', 'moe', { trust_required: 'member' }),
          handler: async (i, ctx) => need().hm.handle(i, ctx),
        },
        {
          descriptor: descriptor('experimental.moe.feedback.record', 'moe', self),
          handler: async (i, ctx) => {
            const n = need();
            return n.svc.recordFeedback(i, ctx.caller, async (id) => {
              const h = (await n.hm.mine()).find((x) => x.handoff_id === id);
              return h as { route_id: string; expert_id: string; tried: string[] } | undefined;
            });
          },
        },
      ],
      async start() {
        const db = await c.openStore();
        for (const t of COMMUNITY_EVENT_TYPES)
          for (const ev of await c.events.list({ type: t })) community.apply(ev as never);
        const open = () =>
          new Set(
            c.peers
              .list()
              .filter((p) => p.state === 'open')
              .map((p) => p.id),
          );
        let openPeers = open();
        const s = new MoeService({
          self: c.self,
          db,
          settings: () => c.config() as MoeSettings,
          now: () => c.clock.now(),
          append: (t, d) => c.events.append(t, d),
          levelOf: (n: NodeID) => community.levelOf(n),
          verify: (o, n) => c.verify(o, n),
          reachable: (n) => openPeers.has(n),
          warn: (msg, data) => c.log.warn(msg, data),
        });
        const h = new HandoffManager({
          self: c.self,
          db,
          svc: s,
          now: () => c.clock.now(),
          setTimeout: (fn, ms) => c.clock.setTimeout(fn, ms),
          append: (t, d) => c.events.append(t, d),
          callPeer: (peer, input) => c.bus.call('experimental.moe.route.handoff', input, { peer }),
          sendLink: (peer, type, payload) => c.link.send(peer, type, payload),
          warn: (msg, data) => c.log.warn(msg, data),
        });
        const registryEvents = [
          ...(await c.events.list({ type: 'moe.expert.registered' })),
          ...(await c.events.list({ type: 'moe.expert.unregistered' })),
          ...(await c.events.list({ type: 'moe.feedback.recorded' })),
        ];
        await s.start(registryEvents);
        await h.start();
        svc = s;
        hm = h;
        MOE_INSTANCES.set(c.self, {
          svc: s,
          handoffs: h,
          askModel: (input) =>
            askModelExpert(
              {
                self: c.self,
                lookup: (id) => s.registry.get(id, c.clock.now()),
                stream: (cap, inp, o) => c.bus.stream(cap, inp, o),
              },
              input,
            ),
        });
        c.events.subscribe((ev) => {
          if (communityTypes.has(ev.event_type)) community.apply(ev as never);
          if (ev.event_type.startsWith('moe.')) s.ingest(ev);
        });
        // background steps log their error code (never content) instead of failing silently
        const warn = (what: string) => (e: unknown) =>
          c.log.warn(`moe: ${what} failed`, { code: e instanceof HnError ? e.code : 'internal_error' });
        c.link.on('moe.message', (peer, p) => void h.onMessage(peer, p).catch(warn('chat line')));
        c.link.on('moe.closed', (peer, p) => void h.onClosed(peer, p).catch(warn('close notice')));
        c.peers.onChange(() => {
          openPeers = open();
          void h.retryUndelivered().catch(warn('offer retry'));
        });
        // offers are re-sent at once when a link comes up; this sweep covers links that never flap
        c.clock.setInterval(() => void h.retryUndelivered().catch(warn('offer retry')), 120_000);
        await h.sweepQuiet();
        c.clock.setInterval(() => void h.sweepQuiet().catch(warn('quiet sweep')), 3_600_000);
        c.clock.setInterval(
          () => void s.maybeTrain().catch(warn('retrain')),
          c.config().retrain_every_hours * 3_600_000,
        );
      },
      stop() {
        hm?.stop();
        if (svc && MOE_INSTANCES.get(c.self)?.svc === svc) MOE_INSTANCES.delete(c.self);
        svc = null;
        hm = null;
      },
    };
  },
};

export default moe;

/**
 * experimental/moe (M27): topic normalisation and rule-based scorer vectors (conformance/vectors/moe,
 * hand-derived from the digest's formulas), registry rules and error cases, over ordinary capability
 * calls on SUT peer 0. Runs when the target has `moe` on and built (probe: expert.list).
 */
import norm from '../../vectors/moe/normalisation.json' with { type: 'json' };
import scorer from '../../vectors/moe/scorer.json' with { type: 'json' };
import { SEED_MODULE_CAPABILITIES } from './seed-names.js';
import {
  expectError,
  expectOk,
  fail,
  pass,
  type CaseCtx,
  type CaseDef,
  type SectionDef,
  flagOffCase,
} from '../../runner/case.js';

const REG = 'experimental.moe.expert.register';
const LIST = 'experimental.moe.expert.list';
const QUERY = 'experimental.moe.route.query';
const ALWAYS = { tz: 'UTC', always: true, slots: [] };
const uid = (ctx: CaseCtx) => Array.from(ctx.bytes('id', 6), (b) => b.toString(16).padStart(2, '0')).join('');

const errorCase = (
  id: string,
  ref: string,
  title: string,
  cap: string,
  input: unknown,
  code: string,
): CaseDef => ({
  id,
  spec_ref: ref,
  title,
  async run(ctx) {
    return expectError(await ctx.call(cap, input), code, { capability: cap, input }) ?? pass();
  },
});

export const section: SectionDef = {
  name: 'experimental/moe',
  required: false,
  module: 'moe',
  probe: { capability: LIST, input: {} },
  cases: [
    flagOffCase({
      id: 'M27-01',
      spec_ref: 'M27 §flags; seed §2',
      title: 'module off → every moe seed capability answers experimental_disabled',
      module: 'moe',
      capabilities: SEED_MODULE_CAPABILITIES.moe!,
    }),
    {
      id: 'MOE-01',
      spec_ref: 'moe §5 topic normalisation',
      title: 'registered topics are normalised per the vectors; invalid topics → bad_request',
      async run(ctx) {
        const model_id = `conf-norm-${uid(ctx)}`;
        for (const v of norm.valid) {
          const r = expectOk(await ctx.call(REG, { kind: 'model', model_id, topics: [v.in] }), { in: v.in });
          if ('bad' in r) return r.bad;
          const l = expectOk(await ctx.call(LIST, { kind: 'model', limit: 200 }), {});
          if ('bad' in l) return l.bad;
          const e = (l.out.experts as { expert_id: string; topics: string[] }[]).find(
            (x) => x.expert_id === r.out.expert_id,
          );
          if (!e || e.topics.length !== 1 || e.topics[0] !== v.out)
            return fail(
              JSON.stringify([v.out]),
              e?.topics ?? null,
              `normalisation of ${JSON.stringify(v.in)}`,
              { in: v.in },
            );
        }
        for (const t of norm.invalid) {
          const o = expectError(
            await ctx.call(REG, { kind: 'model', model_id, topics: [t] }),
            'bad_request',
            { topic: t },
          );
          if (o) return o;
        }
        return pass();
      },
    },
    {
      id: 'MOE-02',
      spec_ref: 'moe §5 rule-based scorer',
      title: 'route.query scores match the hand-derived scorer vectors',
      async run(ctx) {
        const u = uid(ctx);
        for (const c of scorer.cases) {
          const topic = `${c.topics[0]}-${u}`;
          const r = expectOk(
            await ctx.call(REG, {
              kind: 'model',
              model_id: `conf-score-${c.id}-${u}`,
              topics: [topic],
              score_bias: c.score_bias,
            }),
            { case: c.id },
          );
          if ('bad' in r) return r.bad;
          const tags = c.tags.map((t) => (t === c.topics[0] ? topic : t));
          const q = expectOk(
            await ctx.call(QUERY, {
              request_summary: `${c.summary} ${u}`,
              tags,
              top_k: 10,
              kinds: ['model'],
            }),
            { case: c.id },
          );
          if ('bad' in q) return q.bad;
          const cand = (q.out.candidates as { expert_id: string; score: number }[]).find(
            (x) => x.expert_id === r.out.expert_id,
          );
          if (q.out.scorer !== 'rule_based') return pass(); // a learned scorer is legitimately in use
          if (!cand || Math.abs(cand.score - c.expected) > scorer.tolerance)
            return fail(String(c.expected), cand?.score ?? null, `scorer vector ${c.id} (${c.arith})`, {
              case: c.id,
            });
        }
        return pass();
      },
    },
    {
      id: 'MOE-03',
      spec_ref: 'moe §3 expert.register',
      title: 'expert ids are derived by the node; latest registration wins',
      async run(ctx) {
        const u = uid(ctx);
        const a = expectOk(
          await ctx.call(REG, { kind: 'model', model_id: `conf-m-${u}`, topics: ['first'] }),
          {},
        );
        if ('bad' in a) return a.bad;
        if (!String(a.out.expert_id).startsWith(`model:conf-m-${u}@`))
          return fail('model:<id>@<host>', a.out.expert_id, 'expert_id form');
        await ctx.call(REG, { kind: 'model', model_id: `conf-m-${u}`, topics: ['second'] });
        const l = expectOk(await ctx.call(LIST, { topic: 'second', limit: 200 }), {});
        if ('bad' in l) return l.bad;
        const e = (l.out.experts as { expert_id: string; topics: string[] }[]).find(
          (x) => x.expert_id === a.out.expert_id,
        );
        return e && e.topics.join() === 'second'
          ? pass()
          : fail('topics [second]', e ?? null, 'latest registration wins');
      },
    },
    errorCase(
      'MOE-10',
      'moe §7 score injection',
      'score_bias 999 → unauthorized',
      REG,
      { kind: 'model', model_id: 'conf-x', topics: ['a'], score_bias: 999 },
      'unauthorized',
    ),
    errorCase(
      'MOE-11',
      'moe §3 consent',
      'human without consent → bad_request',
      REG,
      { kind: 'human', topics: ['a'], availability: ALWAYS, consent_to_route: false },
      'bad_request',
    ),
    errorCase(
      'MOE-12',
      'moe §4 AvailabilityWindow',
      'the illustrative weekdays_19_21_local window → bad_request',
      REG,
      { kind: 'human', topics: ['a'], availability: { weekdays_19_21_local: true }, consent_to_route: true },
      'bad_request',
    ),
    errorCase(
      'MOE-13',
      'moe §3 route.query',
      'empty summary → bad_request',
      QUERY,
      { request_summary: '   ' },
      'bad_request',
    ),
    errorCase(
      'MOE-14',
      'moe §3 route.query',
      'top_k 11 → bad_request',
      QUERY,
      { request_summary: 'x', top_k: 11 },
      'bad_request',
    ),
    errorCase(
      'MOE-15',
      'moe §3 expert.unregister',
      'unknown (foreign) expert → expert_unknown',
      'experimental.moe.expert.unregister',
      { expert_id: 'human:ed25519:foreign-community' },
      'expert_unknown',
    ),
    errorCase(
      'MOE-16',
      'moe §3 route.handoff',
      'status of an unknown handoff → not_found',
      'experimental.moe.route.handoff',
      { mode: 'status', handoff_id: '01ARZ3NDEKTSV4RRFFQ69G5FAV' },
      'not_found',
    ),
    errorCase(
      'MOE-17',
      'moe §3 feedback.record',
      'feedback without any signal → bad_request',
      'experimental.moe.feedback.record',
      { route_id: '01ARZ3NDEKTSV4RRFFQ69G5FAV', expert_id: 'model:x@y' },
      'bad_request',
    ),
    errorCase(
      'MOE-18',
      'moe §3 expert.register',
      'max_handoffs_per_day 9 (bound 1..5) → bad_request',
      REG,
      { kind: 'human', topics: ['a'], availability: ALWAYS, consent_to_route: true, max_handoffs_per_day: 9 },
      'bad_request',
    ),
  ],
};

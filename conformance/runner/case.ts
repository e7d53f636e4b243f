/**
 * Case and section shape. A section is one file under suites/ exporting `section`; adding a module's
 * section is adding a file. Each case tests one requirement and returns pass / fail / skip.
 */
import { drbg, drbgIdentity } from '../lib/drbg.js';
import type { SuiteKey } from '../lib/crypto.js';
import type { CallResult, Target, TargetInfo } from '../harness/target.js';
import type { VectorTally } from '../lib/vectors.js';

export interface FailureDetail {
  expected: string;
  observed: string;
  message: string;
  repro: Record<string, unknown>;
}
export type Outcome =
  { status: 'pass' } | { status: 'fail'; failure: FailureDetail } | { status: 'skipped'; reason: string };

export interface CaseRequires {
  /** harness ops the target must offer */
  ops?: string[];
  /** SUT peers needed */
  peers?: number;
}

export interface CaseDef {
  id: string;
  spec_ref: string;
  title: string;
  requires?: CaseRequires;
  timeout_ms?: number;
  run(ctx: CaseCtx): Promise<Outcome>;
}

export interface SectionDef {
  /** path, e.g. `core/protocol` */
  name: string;
  required: boolean;
  /** experimental sections: the seed module whose flag must be on (and built) for the section to run */
  module?: string;
  /**
   * a stand-in for a module whose own section file has not landed yet (suites/experimental/modules.ts):
   * a real section of the same name from any other file replaces it, so adding a module's section is
   * adding one file
   */
  placeholder?: boolean;
  /** capability that proves the module is built (answers something other than not_implemented) */
  probe?: { capability: string; input: unknown };
  cases: CaseDef[];
}

export interface CaseCtx {
  target: Target;
  info: TargetInfo;
  seed: number;
  caseId: string;
  /** per-case DRBG: label `<case_id>/<purpose>` */
  bytes(purpose: string, n: number): Uint8Array;
  identity(name: string): SuiteKey;
  call(capability: string, input: unknown, peer?: number): Promise<CallResult>;
  /** the SUT's signed self descriptor (peer 0 unless given) */
  describe(peer?: number): Promise<any>;
  /** record what this case ran of a vector family (report.wire_vectors counts only what was recorded) */
  vectors(family: string, tally: VectorTally): void;
}

export function makeCtx(
  target: Target,
  info: TargetInfo,
  seed: number,
  caseId: string,
  record: (caseId: string, family: string, tally: VectorTally) => void = () => undefined,
): CaseCtx {
  return {
    vectors: (family, tally) => record(caseId, family, tally),
    target,
    info,
    seed,
    caseId,
    bytes: (p, n) => drbg(seed, `${caseId}/${p}`, n),
    identity: (name) => drbgIdentity(seed, `${caseId}/${name}`),
    call: (cap, input, peer = 0) => target.call(peer, cap, input),
    async describe(peer = 0) {
      const r = await target.call(peer, 'protocol.self.describe', {});
      if ('error' in r) throw new Error(`protocol.self.describe failed: ${r.error.code}`);
      return r.output;
    },
  };
}

// ---------- assertion helpers: every failure names expected, observed and a repro ----------

export const pass = (): Outcome => ({ status: 'pass' });
export const skip = (reason: string): Outcome => ({ status: 'skipped', reason });
export function fail(
  expected: string,
  observed: unknown,
  message: string,
  repro: Record<string, unknown> = {},
): Outcome {
  return {
    status: 'fail',
    failure: {
      expected,
      observed: (typeof observed === 'string'
        ? observed
        : (JSON.stringify(observed) ?? String(observed))
      ).slice(0, 4096),
      message: message.slice(0, 4096),
      repro,
    },
  };
}

/** Expect an error code from a call result. */
export function expectError(r: CallResult, code: string, repro: Record<string, unknown>): Outcome | null {
  if ('error' in r && r.error.code === code) return null;
  return fail(
    `error ${code}`,
    'error' in r ? `error ${r.error.code}: ${r.error.message}` : r.output,
    `expected ${code}`,
    repro,
  );
}

/** Expect success from a call result; returns the output or a failing outcome. */
export function expectOk(r: CallResult, repro: Record<string, unknown>): { out: any } | { bad: Outcome } {
  if ('error' in r)
    return {
      bad: fail('a successful result', `error ${r.error.code}: ${r.error.message}`, 'call failed', repro),
    };
  return { out: r.output };
}

/** Run checks in order; the first failing one is the outcome. */
export async function all(...checks: (() => Outcome | null | Promise<Outcome | null>)[]): Promise<Outcome> {
  for (const c of checks) {
    const r = await c();
    if (r) return r;
  }
  return pass();
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll until `fn` returns a truthy value or the time is up. */
export async function eventually<T>(
  fn: () => Promise<T | null | undefined | false>,
  ms = 3000,
): Promise<T | null> {
  const t0 = Date.now();
  while (true) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) return null;
    await sleep(20);
  }
}

/**
 * The gating case every module section starts with: with the module's flag off, each of its
 * capabilities answers `experimental_disabled`; the flag is switched back on afterwards.
 */
export function flagOffCase(o: {
  id: string;
  spec_ref: string;
  title: string;
  module: string;
  capabilities: readonly string[];
}): CaseDef {
  return {
    id: o.id,
    spec_ref: o.spec_ref,
    title: o.title,
    requires: { ops: ['config'] },
    async run(ctx) {
      await ctx.target.config!(0, { [o.module]: false });
      try {
        for (const cap of o.capabilities) {
          const bad = expectError(await ctx.call(cap, {}), 'experimental_disabled', { capability: cap });
          if (bad) return bad;
        }
        return pass();
      } finally {
        await ctx.target.config!(0, { [o.module]: true });
      }
    },
  };
}

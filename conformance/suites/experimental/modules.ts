/**
 * Sections of the experimental modules that are not built yet. Each runs only when its module is
 * enabled on the SUT *and* built (the probe answers something other than not_implemented); until then
 * the runner reports the whole section `skipped`, never passed. A module's real section replaces its
 * entry here with its own file (suites/experimental/<module>.ts) when it lands.
 */
import { expectError, pass, type SectionDef } from '../../runner/case.js';
import { SEED_MODULE_CAPABILITIES } from './seed-names.js';

function moduleSection(module: string, dir: string, prefix: string, probe: string): SectionDef {
  return {
    name: `experimental/${dir}`,
    required: false,
    placeholder: true,
    module,
    probe: { capability: probe, input: {} },
    cases: [
      {
        id: `${prefix}-01`,
        spec_ref: `${prefix} §flags; seed §2`,
        title: `module off → every ${module} seed capability answers experimental_disabled`,
        requires: { ops: ['config'] },
        async run(ctx) {
          await ctx.target.config!(0, { [module]: false });
          try {
            for (const cap of SEED_MODULE_CAPABILITIES[module]!) {
              const bad = expectError(await ctx.call(cap, {}), 'experimental_disabled', {
                capability: cap,
                input: {},
              });
              if (bad) return bad;
            }
            return pass();
          } finally {
            await ctx.target.config!(0, { [module]: true });
          }
        },
      },
    ],
  };
}

export const sections: SectionDef[] = [
  moduleSection('fedlearn', 'fedlearn', 'M28', 'experimental.fedlearn.round.list'),
  // M26, M27, M29, M30 and M31 have their own sections (suites/experimental/<module>.ts)
];

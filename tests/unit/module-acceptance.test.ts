/** The module acceptance suite over every built-in module and the test-only example module. */
import 'fake-indexeddb/auto';
import { BUILTIN_MODULES } from '../../engine/modules/builtin.js';
import { moduleAcceptanceSuite } from '../suites/module-suite.js';
import { example } from '../example-module/index.js';

for (const def of BUILTIN_MODULES) moduleAcceptanceSuite(def);
moduleAcceptanceSuite(example);

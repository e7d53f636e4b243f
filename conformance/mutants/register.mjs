import { register } from 'node:module';
const patches = JSON.parse(process.env.HN_MUTANT_PATCHES ?? '[]');
register('./hook.mjs', import.meta.url, { data: { patches } });

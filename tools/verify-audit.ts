/**
 * Offline verifier for an M31 audit export (JSONL, digest §4.8).
 * Usage: npm run verify-audit -- FILE [--roots ed25519:…,ed25519:…] [--witness SEQ:HEAD_HASH …]
 *                                [--statements FILE.jsonl]
 *   --roots    chain owners (NodeIDs) whose exports are trusted; default: any chain, self-consistent
 *   --witness  a checkpoint head witnessed by a peer (`civdef.audit.checkpointed`), checked against the file
 *   --statements  signed witness statements (one JSON object per line) from another source, e.g. a
 *              witness's own store; each one whose signature holds is checked against the file
 * Prints the JSON report; exit 0 when ok, 1 when the chain fails (the first bad seq is named), 2 on usage.
 */
import { readFileSync } from 'node:fs';
import { verifyExport, type Witness } from '../engine/civdef/audit.js';

const args = process.argv.slice(2);
const file = args.find(
  (a, i) => !a.startsWith('--') && !['--roots', '--witness', '--statements'].includes(args[i - 1] ?? ''),
);
if (!file) {
  console.error('usage: npm run verify-audit -- FILE [--roots ID,ID] [--witness SEQ:HASH]');
  process.exit(2);
}
const roots: string[] = [];
const heads: { seq: number; head_hash: string }[] = [];
const statements: unknown[] = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--roots') roots.push(...(args[++i] ?? '').split(',').filter(Boolean));
  if (args[i] === '--witness') {
    const [seq, hash] = (args[++i] ?? '').split(':');
    heads.push({ seq: Number(seq), head_hash: hash ?? '' });
  }
  if (args[i] === '--statements')
    for (const line of readFileSync(args[++i] ?? '', 'utf8').split('\n'))
      if (line.trim()) statements.push(JSON.parse(line));
}
const text = readFileSync(file, 'utf8');
let chain = '';
try {
  chain = JSON.parse(text.split('\n')[0] ?? '{}').chain ?? '';
} catch {
  /* reported by verifyExport */
}
const witnesses: Witness[] = heads.map((h) => ({ chain: chain as Witness['chain'], ...h }));
const report = verifyExport(text, { trustedChains: roots, witnesses, statements });
console.log(JSON.stringify(report, null, 2));
process.exit(report.ok ? 0 : 1);

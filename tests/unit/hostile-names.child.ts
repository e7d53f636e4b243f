/**
 * Child process of node-hostile.test.ts (run with --expose-gc, so the heap figure is this
 * process's alone): a victim node linked in memory to an attacker that sends signed calls with
 * 100 KiB capability names and with many distinct valid names. Prints one JSON line.
 */
import { HnError } from '../../engine/core/errors.js';
import { linkedPair } from './helpers.js';

const gc = (globalThis as { gc?: () => void }).gc!;
const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

const [victim, attacker] = await linkedPair();
const s = attacker.session(victim.id)!;
const codes: Record<string, number> = {};
const fire = async (names: string[]) => {
  for (let i = 0; i < names.length; i += 50) {
    const rs = await Promise.allSettled(
      names.slice(i, i + 50).map((name) => s.call({ name, version: '1.0' }, {}, { timeout_ms: 20_000 })),
    );
    for (const r of rs) {
      const code = r.status === 'rejected' && r.reason instanceof HnError ? r.reason.code : 'other';
      codes[code] = (codes[code] ?? 0) + 1;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
};
// warm-up: the same code paths once, so the baseline includes compiled code and pools
await fire(Array.from({ length: 100 }, (_, i) => `warm.up${i}`));
await new Promise((r) => setTimeout(r, 1500));
const base = heap();
const rounds: number[] = [];
for (let round = 0; round < 2; round++) {
  await fire(
    Array.from({ length: 300 }, (_, i) => `x.${String(round)}${String(i)}${'a'.repeat(100 * 1024)}`),
  );
  await fire(Array.from({ length: 500 }, (_, i) => `n${round}.${'b'.repeat(100)}${i}`));
  await new Promise((r) => setTimeout(r, 1200)); // let the budgets refill
  rounds.push(heap());
}
const metricsText = victim.metrics.render();
process.stdout.write(
  JSON.stringify({
    base,
    rounds,
    codes,
    metricsBytes: metricsText.length,
    longestLine: Math.max(...metricsText.split('\n').map((l) => l.length)),
    linkOpen: victim.peers().every((p) => p.state === 'open'),
  }) + '\n',
);
await attacker.close();
await victim.close();
process.exit(0);

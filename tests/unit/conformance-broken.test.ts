/**
 * "A deliberately broken build fails the matching case": defects injected through the harness
 * interface (the engine itself is untouched), each caught by exactly the case that claims to check it.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { base64urlnopad } from '@scure/base';
import { describe, expect, it } from 'vitest';
import { EngineTarget } from '../../conformance/harness/targets/engine.js';
import type { RawPort } from '../../conformance/harness/target.js';
import { drbg } from '../../conformance/lib/drbg.js';
import { runSuite } from '../../conformance/runner/execute.js';

const SEED = 0xc0ffee;
const failedIds = (r: Awaited<ReturnType<typeof runSuite>>) =>
  Object.values(r.report.sections).flatMap((s: any) =>
    s.cases.filter((c: any) => c.status === 'fail').map((c: any) => c.id),
  );

describe('broken builds are caught', () => {
  it('an event signer that signs the wrong bytes (plain JSON.stringify, not JCS) fails EV-02', async () => {
    const target = new EngineTarget({
      seed: SEED,
      tamper: {
        events: (ev, peer) => {
          if (ev.author === undefined) return ev;
          const seed = drbg(SEED, `identity/sut-${peer}`, 32);
          if (base64urlnopad.encode(ed25519.getPublicKey(seed)) !== ev.author.slice(8)) return ev; // only own events
          const { signature: _s, ...rest } = ev;
          const wrong = new TextEncoder().encode(JSON.stringify(rest)); // insertion order, not JCS
          return { ...rest, signature: `ed25519:${base64urlnopad.encode(ed25519.sign(wrong, seed))}` };
        },
      },
    });
    const r = await runSuite(target, { seed: SEED, suites: ['core/events'] });
    await target.close();
    expect(failedIds(r)).toContain('EV-02');
    expect(r.report.overall).toBe('fail');
    expect(r.report.level).toBe('none');
  }, 90_000);

  it('an X08 receiver that accepts a sequence gap fails X08-11 (and only the gap case)', async () => {
    // the defect: frames are renumbered in front of the SUT's decoder, so a skipped seq is never seen
    const gapBlind = (port: RawPort): RawPort => {
      let next = 1;
      return {
        ...port,
        get closed() {
          return port.closed;
        },
        maxMessageBytes: port.maxMessageBytes,
        onMessage: (cb) => port.onMessage(cb),
        onClose: (cb) => port.onClose(cb),
        close: (r) => port.close(r),
        send(msg) {
          const b = msg.slice();
          if (b.length >= 16 && b[1] !== 3) new DataView(b.buffer).setUint32(4, next++);
          return port.send(b);
        },
      };
    };
    const target = new EngineTarget({ seed: SEED, tamper: { x08Port: gapBlind } });
    const r = await runSuite(target, { seed: SEED, suites: ['experimental/tensor_transport'] });
    await target.close();
    expect(failedIds(r)).toEqual(['X08-11']);
    // experimental failures do not change overall (X09 B7.2 rule 4)
    expect(r.report.sections['experimental/tensor_transport'].status).toBe('fail');
  }, 90_000);

  it('a descriptor signed by the wrong bytes/key is refused at pre-flight: overall skipped, exit 3', async () => {
    const other = drbg(SEED, 'identity/not-the-node', 32);
    const target = new EngineTarget({ seed: SEED });
    const call = target.call.bind(target);
    target.call = async (peer, cap, input) => {
      const r = await call(peer, cap, input);
      if (cap === 'protocol.self.describe' && 'output' in r) {
        const { signature: _s, ...rest } = r.output;
        const msg = new TextEncoder().encode(JSON.stringify(rest));
        r.output.signature = `ed25519:${base64urlnopad.encode(ed25519.sign(msg, other))}`;
      }
      return r;
    };
    const r = await runSuite(target, { seed: SEED, suites: ['core/identity', 'core/protocol'] });
    await target.close();
    // pre-flight verifies the descriptor first: the run is refused, nothing passes
    expect(r.report.preflight).toEqual({ ok: false, reason: 'descriptor_signature_invalid' });
    expect(r.report.overall).toBe('skipped');
    expect(r.exitCode).toBe(3);
  }, 90_000);
});

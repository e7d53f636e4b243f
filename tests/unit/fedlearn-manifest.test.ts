/** M28 manifests (digest §4, §10.1–10.2): canonical bytes, SHA vector, signatures, every validation rule. */
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { keyPairFromSeed, signObject } from '../../engine/identity/identity.js';
import {
  completeManifest,
  manifestBytes,
  manifestSha,
  parseManifest,
  signManifest,
  validateManifest,
  verifyManifest,
  type ManifestDraft,
} from '../../engine/fedlearn/manifest.js';
import type { HnError } from '../../engine/core/errors.js';
import { BASE_SHA, TINY_CARD } from './fedlearn-helpers.js';

const kp = keyPairFromSeed(new Uint8Array(32).fill(1));
const other = keyPairFromSeed(new Uint8Array(32).fill(2));
const NOW = Date.parse('2026-03-01T12:00:00Z');
export const DRAFT: ManifestDraft = {
  base_model_id: 'hn-tiny-decoder',
  lora_target_modules: ['q_proj', 'v_proj'],
  lora_rank: 4,
  lora_alpha: 8,
  lora_dropout: 0,
  train_steps: 60,
  learning_rate: 0.01,
  batch_size: 8,
  seed: 7,
  dp_noise_scale: 0,
  min_participants: 3,
  max_participants: 32,
  deadline: '2026-03-01T13:00:00Z',
  topic: 'gardening',
  consent_text: 'Train on my notes.',
};
const m0 = () =>
  completeManifest(DRAFT, {
    round_id: '01JNKZ3C0000000000000000R1',
    coordinator: kp.nodeId,
    base_model_sha: BASE_SHA,
  });
const codeOf = (f: () => unknown) => {
  try {
    f();
    return 'ok';
  } catch (e) {
    return `${(e as HnError).code}${(e as HnError).field ? ':' + (e as HnError).field : ''}`;
  }
};

describe('M28 manifest', () => {
  it('§10.1 vector: canonical bytes written by hand; manifest_sha = SHA-256 of them; parse → re-encode is stable', () => {
    const m = m0();
    const hand =
      '{"aggregator":"fedavg","base_model_id":"hn-tiny-decoder","base_model_sha":"' +
      BASE_SHA +
      '","batch_size":8,"clip_norm":1,"consent_text":"Train on my notes.","coordinator":"' +
      kp.nodeId +
      '","deadline":"2026-03-01T13:00:00Z","dp_noise_scale":0,"freeze_a":false,"learning_rate":0.01,' +
      '"lora_alpha":8,"lora_dropout":0,"lora_rank":4,"lora_target_modules":["q_proj","v_proj"],' +
      '"max_participants":32,"min_participants":3,"objective":"next_token_loss","round_id":"01JNKZ3C0000000000000000R1",' +
      '"secure":false,"seed":7,"t":"hn.fedlearn.manifest/1","topic":"gardening","train_steps":60,"trim_fraction":0.1}';
    expect(new TextDecoder().decode(manifestBytes(m))).toBe(hand);
    expect(manifestSha(m)).toBe(createHash('sha256').update(hand).digest('hex'));
    const s = signManifest(m, (o) => signObject(kp, o));
    const again = parseManifest(JSON.parse(JSON.stringify(s)));
    expect(manifestSha(again)).toBe(manifestSha(m));
    expect(manifestSha(s)).toBe(manifestSha(m)); // the signature is outside the hashed bytes
  });

  it('§10.2 signatures round-trip; tampering or another signer → invalid_signature', () => {
    const s = signManifest(m0(), (o) => signObject(kp, o));
    expect(verifyManifest(s)).toBe(true);
    expect(codeOf(() => parseManifest({ ...s, train_steps: 61 }))).toBe('invalid_signature');
    const forged = signManifest(m0(), (o) => signObject(other, o));
    expect(codeOf(() => parseManifest(forged))).toBe('invalid_signature');
    expect(codeOf(() => parseManifest(m0()))).toBe('invalid_signature');
    fc.assert(
      fc.property(fc.nat({ max: 85 }), fc.integer({ min: 1, max: 255 }), (i, x) => {
        const b = Buffer.from(s.coordinator_sig!.slice(8), 'base64url');
        b[i % 64] = b[i % 64]! ^ x;
        expect(verifyManifest({ ...s, coordinator_sig: 'ed25519:' + b.toString('base64url') })).toBe(false);
      }),
      { numRuns: 50 },
    );
  });

  it('every §4 rule refuses with bad_request and the field; secure:true → not_implemented', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ round_id: 'x' }, 'round_id'],
      [{ coordinator: 'nope' }, 'coordinator'],
      [{ base_model_id: 'x'.repeat(129) }, 'base_model_id'],
      [{ base_model_sha: 'A'.repeat(64) }, 'base_model_sha'],
      [{ lora_target_modules: [] }, 'lora_target_modules'],
      [{ lora_target_modules: ['q_proj', 'q_proj'] }, 'lora_target_modules'],
      [{ lora_target_modules: 'abcdefghi'.split('') }, 'lora_target_modules'],
      [{ lora_rank: 3 }, 'lora_rank'],
      [{ lora_rank: 65 }, 'lora_rank'],
      [{ lora_alpha: 0.5 }, 'lora_alpha'],
      [{ lora_dropout: 0.6 }, 'lora_dropout'],
      [{ train_steps: 1001 }, 'train_steps'],
      [{ learning_rate: 0 }, 'learning_rate'],
      [{ batch_size: 257 }, 'batch_size'],
      [{ seed: 2 ** 32 }, 'seed'],
      [{ dp_noise_scale: 11 }, 'dp_noise_scale'],
      [{ clip_norm: 0 }, 'clip_norm'],
      [{ min_participants: 2 }, 'min_participants'],
      [{ max_participants: 33 }, 'max_participants'],
      [{ min_participants: 5, max_participants: 4 }, 'max_participants'],
      [{ deadline: '2026-03-01 13:00' }, 'deadline'],
      [{ topic: 'Bad Topic' }, 'topic'],
      [{ consent_text: 'x'.repeat(4001) }, 'consent_text'],
      [{ aggregator: 'krum' }, 'aggregator'],
      [{ trim_fraction: 0.5 }, 'trim_fraction'],
      [{ objective: 'mse' }, 'objective'],
      [{ extra: 1 }, 'extra'],
    ];
    for (const [patch, field] of cases)
      expect(codeOf(() => validateManifest({ ...m0(), ...patch }))).toBe(`bad_request:${field}`);
    expect(codeOf(() => validateManifest({ ...m0(), secure: true }))).toBe('not_implemented');
    // deadline window at announce time
    expect(codeOf(() => validateManifest(m0(), { now: NOW }))).toBe('ok');
    expect(codeOf(() => validateManifest(m0(), { now: NOW + 56 * 60_000 }))).toBe('bad_request:deadline');
    expect(codeOf(() => validateManifest(m0(), { now: NOW - 121 * 60_000 }))).toBe('bad_request:deadline');
    // the model card: modules must exist; the delta bound must fit the submission limit
    expect(
      codeOf(() => validateManifest({ ...m0(), lora_target_modules: ['gate_proj'] }, { card: TINY_CARD })),
    ).toBe('bad_request:lora_target_modules');
    expect(codeOf(() => validateManifest(m0(), { card: TINY_CARD, max_bytes: 70_000 }))).toBe(
      'bad_request:lora_rank',
    );
    expect(
      codeOf(() => validateManifest({ ...m0(), dp_noise_scale: 0.1 }, { dp_noise_scale_min: 0.5 })),
    ).toBe('bad_request:dp_noise_scale');
  });
});

/**
 * Harness op `vector`, the module families that need more than one pure function: M29 duty-cycle
 * accounting (the async DutyCycle API over a key/value store), the M29 Meshtastic serial codec
 * (ToRadio encoder, the adapter's TX framing and its FromRadio receive path), the M27 rule-based scorer
 * (HashedEmbedder similarity + the scorer's parts, as the router composes them) and M28 manifest
 * bytes/SHA, LoRA init and delta validation. The vector files' independent expected values are checked
 * against what these engine functions compute. Imports engine/ (harness side only); reached from
 * runVector (vector-ops.ts). `lora/duty_cycle` answers a Promise (every target awaits the op).
 */
import { HnError } from '../../engine/core/errors.js';
import { AIRTIME_KEY, DutyCycle, type LoraKv } from '../../engine/lora/duty_cycle.js';
import { encodeToRadio, type ToRadioMsg } from '../../engine/lora/meshtastic_pb.js';
import { frameSerial, MeshtasticAdapter } from '../../engine/lora/adapters/meshtastic.js';
import { cosine, HashedEmbedder } from '../../engine/moe/embedder.js';
import { recency, reliability, ruleScore, tagScore } from '../../engine/moe/scorer.js';
import { manifestBytes, manifestSha, type RoundManifest } from '../../engine/fedlearn/manifest.js';
import { loraInit } from '../../engine/fedlearn/lora-init.js';
import { xoshiro128ss } from '../../engine/fedlearn/rng.js';
import { validateDelta, type ModelCard } from '../../engine/fedlearn/delta.js';

const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const hex = (s: unknown): Uint8Array => {
  const t = String(s);
  if (!/^([0-9a-f]{2})*$/i.test(t)) throw new HnError('bad_request', 'bad hex');
  return Uint8Array.from(t.match(/../g) ?? [], (b) => parseInt(b, 16));
};
const b64 = (s: unknown) => Uint8Array.from(atob(String(s)), (c) => c.charCodeAt(0));
const card = (c: any): ModelCard => ({
  base_model_id: 'vector',
  layers: Number(c.layers),
  modules: c.modules,
});

/** a ToRadio message as in vectors/lora/meshtastic.json (payload as `payload_hex`) */
function toRadio(m: any): ToRadioMsg {
  if (!m?.packet) return m as ToRadioMsg;
  const { payload_hex, ...d } = m.packet.decoded ?? {};
  return { packet: { ...m.packet, decoded: { ...d, payload: hex(payload_hex) } } } as ToRadioMsg;
}

async function dutyCycle(input: any) {
  // the module's LoraKv contract over a Map (the node passes its IndexedDB store here)
  const m = new Map<string, unknown>();
  const kv: LoraKv = {
    get: async <T>(k: string) => structuredClone(m.get(k)) as T | undefined,
    put: async (k, v) => void m.set(k, structuredClone(v)),
  };
  await kv.put(AIRTIME_KEY, input.entries);
  const dc = await DutyCycle.open(kv, input.percent === null ? null : Number(input.percent));
  const now = Number(input.now);
  const frame = Number(input.frame_ms);
  const next = dc.nextTxAllowedAt(now, frame);
  return {
    budget_ms: dc.budgetMs,
    used_ms: dc.usedMs(now),
    fits: dc.fits(now, frame),
    next_tx_allowed_at: Number.isFinite(next) ? next : null,
  };
}

/** the module vector ops of this file; undefined when `family/op` is not one of them */
export function runModuleVector2(family: string, op: string, input: any): unknown {
  switch (`${family}/${op}`) {
    case 'lora/duty_cycle':
      return dutyCycle(input);
    case 'lora/meshtastic_to_radio':
      return { hex: toHex(frameSerial(encodeToRadio(toRadio(input.message)))) };
    case 'lora/meshtastic_tx':
      return {
        hex: toHex(
          new MeshtasticAdapter({ channel: Number(input.channel ?? 0) }).encodeTx(
            hex(input.payload_hex),
            Number(input.packet_id),
          ),
        ),
      };
    case 'lora/meshtastic_rx':
      return {
        events: new MeshtasticAdapter()
          .feed(hex(input.hex))
          .map((e) => (e.kind === 'frame' ? { ...e, payload: toHex(e.payload) } : e)),
      };
    case 'moe/score': {
      // as the router scores a freshly registered expert without feedback: sim = max cosine(summary, topic)
      const emb = new HashedEmbedder();
      const q = emb.embedOne(String(input.summary));
      const topics = (input.topics as string[]).map(String);
      let sim = 0;
      for (const t of topics) sim = Math.max(sim, cosine(q, emb.embedOne(t.replace(/-/g, ' '))));
      sim = Math.min(1, Math.max(0, sim));
      const tags = (input.tags as string[]).map(String);
      const parts = { tag: tagScore(tags, topics), sim, rel: reliability(0, 0), rec: recency(0) };
      return { score: ruleScore(parts, tags.length > 0, Number(input.score_bias)), parts };
    }
    case 'fedlearn/manifest': {
      const m = input.manifest as RoundManifest;
      return { jcs: new TextDecoder().decode(manifestBytes(m)), manifest_sha: manifestSha(m) };
    }
    case 'fedlearn/init': {
      const r = xoshiro128ss(Number(input.seed));
      const first_u32 = [r.u32(), r.u32(), r.u32(), r.u32()];
      const c = card(input.card);
      const t = loraInit(c, Object.keys(c.modules), Number(input.rank), Number(input.seed));
      return {
        first_u32,
        names: [...t.keys()],
        tensors: Object.fromEntries(
          [...t].map(([n, x]) => [n, { shape: x.shape, values: Array.from(x.data) }]),
        ),
      };
    }
    case 'fedlearn/validate_delta': {
      const e = input.expectation;
      const st = validateDelta(b64(input.bytes_b64), { ...e, card: card(e.card) });
      return { ok: true, tensors: [...st.tensors.keys()] };
    }
  }
  return undefined;
}

/** What each module switch means, in one line (seed ids in brackets). */
import type { ModuleName } from '../../engine/index.js';

export const MODULE_INFO: Record<ModuleName, { title: string; blurb: string }> = {
  distributed_llm: { title: 'Distributed LLM', blurb: 'An LLM split into layer ranges across tabs (M26).' },
  moe: {
    title: 'Mixture of experts',
    blurb: 'Route a question to the best models, services or people (M27).',
  },
  fedlearn: {
    title: 'Federated learning',
    blurb: 'LoRA fine-tuning on local data, merged with FedAvg (M28).',
  },
  lora: { title: 'LoRa radio', blurb: 'Beacons through a USB LoRa stick over Web Serial (M29).' },
  evidence: {
    title: 'Evidence graph',
    blurb: 'Signed claims with provenance, attestations and disputes (M30).',
  },
  civdef: { title: 'Civil defence', blurb: 'Role-gated alerts with a tamper-evident audit (M31).' },
  tensor_transport: {
    title: 'Tensor transport',
    blurb: 'Binary tensor frames over data channels (X08); carries traffic for the other modules.',
  },
  protocol: { title: 'Protocol', blurb: 'Versions, self-description and the implementation registry (M32).' },
};

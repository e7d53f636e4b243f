/**
 * X08 tensor transport as a module: its config section and switch. The transport itself
 * (engine/transport/tensor/) is wired by the node and reached by modules as `components.tensors`;
 * it registers no capabilities of its own.
 */
import * as C from '../core/constants.js';
import { bool, int, oneOf } from '../core/config-fields.js';
import type { ModuleDefinition } from '../modules/module.js';

/** [tensor_transport] config section (seed §8, X08 digest). */
export const config = {
  enabled: bool(false),
  default_dtype: oneOf('fp16', ['fp32', 'fp16', 'bf16', 'int8']),
  chunk_bytes: int(262144, 1024, C.TENSOR_CHUNK_BYTES),
  flow_control_window: int(C.TENSOR_FLOW_CONTROL_WINDOW, 1, 1024),
  compression_threshold_bytes: int(C.TENSOR_COMPRESSION_THRESHOLD_BYTES, 0, 1 << 30),
  compression_level: int(3, 1, 19),
  keepalive_seconds: int(C.TENSOR_KEEPALIVE_SECONDS, 1, 3600),
  max_session_lifetime_seconds: int(
    C.TENSOR_MAX_SESSION_LIFETIME_SECONDS,
    1,
    C.TENSOR_MAX_SESSION_LIFETIME_SECONDS,
  ),
  max_concurrent_sessions: int(64, 1, 4096),
  rx_buffer_bytes_max: int(64 * 1024 * 1024, 1024, 2 ** 31),
  allow_relayed: bool(false),
};

export const tensorTransport: ModuleDefinition<'tensor_transport', typeof config> = {
  name: 'tensor_transport',
  seedId: 'X08',
  config,
  namespace: null,
  capabilityNames: [],
  view: {
    title: 'Tensor transport',
    blurb: 'Binary tensor frames over data channels (X08); carries traffic for the other modules.',
    icon: '🔀',
  },
  create: (c) => ({
    capabilities: () => [],
    // switching X08 off closes every open tensor session
    stop: () => c.tensors.closeAll('disabled'),
  }),
};

export default tensorTransport;

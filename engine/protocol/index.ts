/** M32 protocol — the built-in module definition (capabilities, events and hello hook in service.ts). */
import { createProtocolModule } from './service.js';

export { config, CAPABILITIES, PROTOCOL_EVENT_TYPES } from './config.js';
export { createProtocolModule };

export const protocol = createProtocolModule();
export default protocol;

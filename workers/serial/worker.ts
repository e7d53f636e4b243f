/**
 * The serial worker (digest §10): Web Serial driven off the main thread, exposed through comlink.
 * Chromium exposes `navigator.serial` in dedicated workers; where it does not, `supported()` answers
 * false and the page drives the port itself.
 */
import * as Comlink from 'comlink';
import type { PortProvider } from '../../engine/lora/serial_bridge.js';
import { SerialWorkerCore } from './core.js';

const serial = (self as unknown as { navigator?: { serial?: PortProvider } }).navigator?.serial ?? null;
Comlink.expose(new SerialWorkerCore(serial));

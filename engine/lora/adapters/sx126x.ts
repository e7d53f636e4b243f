/** SX126x (Semtech SX1262) behind HNLORA/1 gateway firmware: SF 5..12. */
import { HnloraAdapter, type HnloraOptions } from './hnlora.js';

export const createSx126xAdapter = (o: HnloraOptions): HnloraAdapter =>
  new HnloraAdapter('sx126x', 'sx1262', o);

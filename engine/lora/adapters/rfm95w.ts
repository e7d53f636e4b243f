/** RFM95W (Semtech SX1276) behind HNLORA/1 gateway firmware: SF 6..12. */
import { HnloraAdapter, type HnloraOptions } from './hnlora.js';

export const createRfm95wAdapter = (o: HnloraOptions): HnloraAdapter =>
  new HnloraAdapter('rfm95w', 'sx1276', o);

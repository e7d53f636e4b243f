/** X08 tensor transport: frame codec, flow control, zstd, dtype conversion, sessions. */
export * from './frame.js';
export * from './flow.js';
export * from './compress.js';
export * from './dtype.js';
export * from './session.js';

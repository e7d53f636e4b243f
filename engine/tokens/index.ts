/** M16 capability tokens and the X08 session-token profile (core digest §7). */
export * from './token.js';
export * from './revocation.js';
export * from './session.js';

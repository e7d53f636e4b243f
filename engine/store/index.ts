export * from './types.js';
export { openMemoryStorage, deleteMemoryDatabase } from './memory.js';
export { openIndexedDbStorage } from './indexeddb.js';

/** @meshtastic/protobufs 2.7.18 names a types file it does not ship (dist/mod.d.ts); test-only, so untyped. */
declare module '@meshtastic/protobufs';

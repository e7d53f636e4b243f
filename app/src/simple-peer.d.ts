/** simple-peer's self-contained browser bundle (its own Buffer/stream shims, no Node polyfills needed). */
declare module 'simple-peer/simplepeer.min.js' {
  const SimplePeer: unknown;
  export default SimplePeer;
}

/** Import rules checked by `npm run lint` (dependency-cruiser): no cycles; engine/ stays free of app/ and relay/. */
module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      severity: 'error',
      comment:
        'Import cycles tangle modules; break them by moving the shared part down a layer. A module view loaded lazily (import()) may import its own module: that is no load-time cycle.',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only', 'dynamic-import'] } },
    },
    {
      name: 'engine-not-to-relay',
      severity: 'error',
      from: { path: '^engine/' },
      to: { path: '^relay/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|dist|app/dist|models)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.json'] },
  },
};

/**
 * The SPA's layering, checked by `npm run lint` (`depcruise src`). Dependencies point one way:
 *
 *   views → components → composables → stores → api → lib
 *
 * with lib/ (plain TypeScript: no Vue, no app state) at the bottom and the generated client in api/.
 * Type-only imports count for the layering rules (they are still a design dependency) but not for
 * cycles (they vanish at compile time).
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Circular dependencies make load order matter and split nothing: break the cycle.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'components-not-to-views',
      severity: 'error',
      comment: 'Views compose components; a component that imports a view turns the tree upside down.',
      from: { path: '^src/components/' },
      to: { path: '^src/views/' },
    },
    {
      name: 'api-not-to-app',
      severity: 'error',
      comment: 'api/ talks to the server only: no stores, composables, components or views.',
      from: { path: '^src/api/' },
      to: { path: '^src/(stores|composables|components|views|layouts|router)/' },
    },
    {
      name: 'api-resources-independent',
      severity: 'error',
      comment:
        'One api module per resource; resource modules share only the transport (client, http, errors, sse, xhr, the generated schema) and lib/.',
      from: { path: '^src/api/', pathNot: '^src/api/(client|http|errors|sse|xhr|schema)(\\.d)?\\.ts$' },
      to: { path: '^src/api/', pathNot: '^src/api/(client|http|errors|sse|xhr|schema)(\\.d)?\\.ts$' },
    },
    {
      name: 'stores-not-to-ui',
      severity: 'error',
      comment: 'Stores hold state; they do not reach up into composables, components or views.',
      from: { path: '^src/stores/' },
      to: { path: '^src/(composables|components|views|layouts)/' },
    },
    {
      name: 'composables-not-to-ui',
      severity: 'error',
      comment: 'Composables are reusable logic; components and views use them, not the other way round.',
      from: { path: '^src/composables/' },
      to: { path: '^src/(components|views|layouts)/' },
    },
    {
      name: 'lib-is-plain',
      severity: 'error',
      comment:
        'lib/ is framework-free helpers: no Vue-land (components, views, stores, composables, layouts, router) and no API calls. It may name the API error type (api/errors.ts, a plain class) that its callers report failures with.',
      from: { path: '^src/lib/' },
      to: { path: '^src/(components|views|stores|composables|layouts|router|api)/', pathNot: '^src/api/errors\\.ts$' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that does not resolve is a typo or a missing package.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.d\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.app.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.d.ts', '.vue', '.js', '.mjs', '.json'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
}

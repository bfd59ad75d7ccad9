import { fileURLToPath, URL } from 'node:url'

import vue from '@vitejs/plugin-vue'
import { defineConfig } from 'vitest/config'

// The Python package serves the built SPA (with a history-mode fallback), so the build lands
// inside it rather than in frontend/dist.
const outDir = fileURLToPath(new URL('../src/loraforge/web/dist', import.meta.url))

export default defineConfig({
  plugins: [vue()],
  // vue-i18n's esm-bundler build reads these flags; setting them drops the legacy API and
  // devtools hooks from the bundle and silences its start-up warning.
  define: {
    __VUE_I18N_FULL_INSTALL__: true,
    __VUE_I18N_LEGACY_API__: false,
    __INTLIFY_PROD_DEVTOOLS__: false,
  },
  resolve: {
    alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) },
  },
  build: {
    outDir,
    emptyOutDir: true,
    // Element Plus is one large vendor chunk by design (full install keeps templates simple).
    chunkSizeWarningLimit: 1500,
  },
  server: {
    // `npm run dev` against `loraforge serve` on the default port.
    proxy: {
      '/api': 'http://127.0.0.1:8000',
      '/v1': 'http://127.0.0.1:8000',
      '/ws': { target: 'ws://127.0.0.1:8000', ws: true },
    },
  },
  test: {
    environment: 'happy-dom',
    environmentOptions: { happyDOM: { url: 'http://localhost/' } },
    include: ['tests/**/*.spec.ts'],
    restoreMocks: true,
    unstubGlobals: true,
    // Some specs mount whole lazily loaded views; on a busy 2-core machine the first transform of a view
    // (Element Plus, ECharts, markdown-it) can take longer than the 5 s default.
    testTimeout: 20_000,
  },
})

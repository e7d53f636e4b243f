/**
 * Vite build of the HearthNet PWA: root `app/`, output `app/dist` (served by the relay),
 * static assets (icons) from `public/`. The service worker (Workbox generateSW) precaches the
 * shell only; heavy runtimes (.wasm, models) are never precached: the .wasm files are cached
 * on first use, model files are the engine's business (content-addressed store).
 */
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { VitePWA } from 'vite-plugin-pwa';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/** Cross-origin isolation (SharedArrayBuffer for WASM threads); the relay sends the same. */
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  root: here('./app'),
  publicDir: here('./public'),
  build: {
    outDir: here('./app/dist'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    chunkSizeWarningLimit: 1024,
  },
  server: { headers: isolation },
  preview: { headers: isolation },
  worker: { format: 'es' },
  plugins: [
    svelte({ configFile: false }),
    VitePWA({
      registerType: 'autoUpdate',
      // the app registers the worker itself (virtual:pwa-register) to show "ready offline"
      injectRegister: false,
      includeAssets: ['favicon-32.png', 'apple-touch-icon.png'],
      manifest: {
        name: 'HearthNet',
        short_name: 'HearthNet',
        description: 'A community AI mesh: every tab is a full peer.',
        id: '/',
        start_url: '/',
        scope: '/',
        display: 'standalone',
        orientation: 'any',
        background_color: '#1d1a2b',
        theme_color: '#1d1a2b',
        icons: [
          { src: 'icon-192.png', sizes: '192x192', type: 'image/png', purpose: 'any' },
          { src: 'icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'any' },
          { src: 'icon-maskable-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
        ],
      },
      workbox: {
        // the shell: code, styles, page, icons, manifest. Not: .wasm runtimes, models, source maps.
        globPatterns: ['**/*.{js,css,html,png,svg,ico,webmanifest}'],
        // (web-llm's library chunk is a runtime too: fetched when a WebLLM model is loaded, never precached)
        globIgnores: [
          '**/*.map',
          '**/*.wasm',
          '**/*.onnx',
          '**/*.safetensors',
          '**/models/**',
          '**/web-llm-lib-*.js',
        ],
        // a shell file above this is a build mistake (a runtime that slipped onto the first-paint path)
        maximumFileSizeToCacheInBytes: 3 * 1024 * 1024,
        // M31: notificationclick opens the app at the alert (public/civdef-sw.js)
        importScripts: ['civdef-sw.js'],
        cleanupOutdatedCaches: true,
        clientsClaim: true,
        skipWaiting: true,
        navigateFallback: 'index.html',
        navigateFallbackDenylist: [/^\/ws/, /^\/healthz/, /^\/metrics/, /^\/models\//, /^\/config\.json/],
        runtimeCaching: [
          {
            // lazily loaded runtimes (onnxruntime-web, web-llm): cached after first use, bounded
            urlPattern: ({ url, sameOrigin }) => sameOrigin && url.pathname.endsWith('.wasm'),
            handler: 'CacheFirst',
            options: {
              cacheName: 'hearthnet-wasm',
              expiration: { maxEntries: 8 },
              cacheableResponse: { statuses: [200] },
            },
          },
        ],
      },
      devOptions: { enabled: false },
    }),
  ],
});

import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// The service serves dist/ at / (app/web.py); during `npm run dev` the API is proxied to it.
export default defineConfig({
  plugins: [vue()],
  build: {
    outDir: 'dist',
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:8000',
    },
  },
  test: {
    environment: 'happy-dom',
    include: ['src/**/*.test.ts'],
  },
})

// The web app: bundled from npm packages (firebase, qrcode) into web/dist, which Firebase Hosting serves
// (firebase.json "hosting.public") and `keeper web` serves locally. Nothing is loaded from a CDN.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/",
  logLevel: "warn",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // one file per page load is plenty for this app; no inline scripts (the CSP allows 'self' only)
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 2000,
    sourcemap: false,
  },
});

// Builds the dashboard into dist/ (committed; embedded by web.go):
// dist/index.html, dist/app.js (ES2020, minified, ECharts tree-shaken),
// dist/app.css. Run with `npm run build` (after `npm ci`).
import { build } from "esbuild";
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";

await rm("dist", { recursive: true, force: true });
await mkdir("dist", { recursive: true });
const result = await build({
  entryPoints: { app: "src/main.ts" },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020", "chrome120", "firefox120"],
  outdir: "dist",
  legalComments: "linked",
  metafile: true,
  logLevel: "info",
});
await copyFile("src/index.html", "dist/index.html");
await copyFile("src/app.css", "dist/app.css");
// Precompressed copies, served when the browser accepts gzip (web.go).
for (const f of ["app.js", "app.css", "index.html"]) {
  const raw = await readFile("dist/" + f);
  const gz = gzipSync(raw, { level: 9, mtime: 0 });
  await writeFile("dist/" + f + ".gz", gz);
  console.log(`dist/${f}: ${(raw.length / 1024).toFixed(0)} KiB, gzip ${(gz.length / 1024).toFixed(0)} KiB`);
}

// The one static file server: `./build.sh` serves the demo with it
// (`node serve.mjs www 8080`), and the page tests and the benchmark import
// `serve`. Node alone, no packages. Files below `root`, only under the given
// URL prefixes, cross-origin isolated (COOP/COEP, see coepFor):
// SharedArrayBuffer for the threaded build, and a 5 µs performance.now()
// instead of 100 µs (the inspector's per-token timings).
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
};

/**
 * The COEP value for a browser: "credentialless", which lets the page fetch
 * other origins in no-cors mode (an opaque answer tells a server that
 * refuses CORS from one that cannot be reached; "require-corp" blocks such
 * fetches), except for Safari, which isolates a page only with
 * "require-corp". Safari's user agent says "Safari" but neither "Chrome"/
 * "Chromium" (Chromium browsers say "Safari" too) nor "Firefox"/"Edg/";
 * Chrome, Firefox and Edge on iOS (CriOS, FxiOS, EdgiOS) are WebKit and get
 * "require-corp" with it. (www/offline.js makes the same choice for the
 * service worker of the dist copy.)
 */
export function coepFor(userAgent) {
  const safari = /Safari/.test(userAgent) && !/Chrome|Chromium|Firefox|Edg\//.test(userAgent);
  return safari ? "require-corp" : "credentialless";
}

/**
 * Start serving on 127.0.0.1 (`port` 0: any free one); resolves to
 * { url, close() }. `isolated: false` leaves out the COOP/COEP headers, as a
 * plain static host would.
 */
export async function serve(root, prefixes = ["/"], { isolated = true, port = 0 } = {}) {
  root = path.resolve(root);
  const server = http.createServer((req, res) => {
    const pathname = decodeURIComponent(new URL(req.url, "http://x").pathname);
    const file = path.join(root, pathname.endsWith("/") ? pathname + "index.html" : pathname);
    const allowed = prefixes.some((p) => pathname.startsWith(p)) && file.startsWith(root + path.sep);
    if (!allowed || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end("not found");
      return;
    }
    const headers = {
      "Content-Type": TYPES[path.extname(file)] ?? "application/octet-stream",
      "Content-Length": fs.statSync(file).size,
      "Cache-Control": "no-store",
    };
    if (isolated) {
      headers["Cross-Origin-Opener-Policy"] = "same-origin";
      headers["Cross-Origin-Embedder-Policy"] = coepFor(req.headers["user-agent"] ?? "");
    }
    res.writeHead(200, headers);
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

// `node serve.mjs [dir] [port]`: serve dir (www) until Ctrl-C
if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [dir = "www", port = "8080"] = process.argv.slice(2);
  const { url } = await serve(dir, ["/"], { port: Number(port) });
  console.log(`serving ${dir}/ at ${url}`);
}

// A static file server on 127.0.0.1 for the page tests and the benchmark:
// serves files below `root`, only under the given URL prefixes.
import http from "node:http";
import fs from "node:fs";
import path from "node:path";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
};

/**
 * Start serving; resolves to { url, close() }. `isolated: false` leaves out
 * the COOP/COEP headers, as a plain static host would.
 */
export async function serve(root, prefixes = ["/"], { isolated = true } = {}) {
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
      // cross-origin isolated, as ./build.sh serves it: SharedArrayBuffer for
      // the threaded build, and a 5 µs performance.now()
      headers["Cross-Origin-Opener-Policy"] = "same-origin";
      headers["Cross-Origin-Embedder-Policy"] = "require-corp";
    }
    res.writeHead(200, headers);
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** Chromium as these tests run it: Debian's, headless, no network chatter. */
export const CHROMIUM_OPTIONS = {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync"],
};

/**
 * The page tests' setup: serve `www`, launch Chromium, open the page and
 * collect uncaught page errors. Returns { server, browser, page, pageErrors }.
 */
export async function openPage(www, viewport) {
  const { chromium } = await import("playwright-core");
  const server = await serve(www);
  const browser = await chromium.launch(CHROMIUM_OPTIONS);
  const page = await browser.newPage({ viewport });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e));
  await page.goto(server.url + "/");
  return { server, browser, page, pageErrors };
}

/** run.c's recorded cases (tests/golden/runc_parity.jsonl, copied by build.sh). */
export function goldenCases(root) {
  return fs
    .readFileSync(path.join(root, "tests/golden/runc_parity.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

/**
 * Make a random-weight checkpoint of the stories15M shape (61 MB) inside the
 * page and drop it there as `name`, as a person dropping a file would;
 * resolves once the page's card shows it.
 */
export async function dropRandom15M(page, name, seed) {
  await page.evaluate(
    ([name, seed]) => {
      const [dim, hidden, layers, heads, kvHeads, vocab, seqLen] = [288, 768, 6, 6, 6, 32000, 256];
      const floats = vocab * dim + layers * (2 * dim + 4 * dim * dim + 3 * dim * hidden) + dim + seqLen * (dim / heads);
      const weights = new Float32Array(floats);
      let s = seed;
      for (let i = 0; i < floats; i++) {
        s = (s * 1103515245 + 12345) >>> 0;
        weights[i] = (s / 2 ** 32 - 0.5) * 0.1;
      }
      const header = new Int32Array([dim, hidden, layers, heads, kvHeads, vocab, seqLen]);
      const dt = new DataTransfer();
      dt.items.add(new File([header, weights], name));
      document.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    },
    [name, seed],
  );
  await page.waitForFunction((n) => document.querySelector('#card [data-field="name"]').textContent === n, name,
    { timeout: 60_000 });
}

// The static copy (`./build.sh dist`) on a host that sends no special
// headers: its service worker (www/sw.js) makes the page cross-origin
// isolated after one reload, stores it for offline use, leaves cross-origin
// requests alone, and replaces its cache when a new deploy comes.
//
// dist/ is assembled by build.sh itself (`DIST_ONLY=1 ./build.sh dist`: the
// one implementation, no wasm build), from a copy of build.sh and www/ in a
// temporary folder, so that the last test can change a file and deploy
// again. Chromium runs with a profile of its own (service workers and
// their caches live in a profile). Screenshot: tests/e2e/out/dist.png.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve } from "../../serve.mjs";
import { checkpointPath, makeCheckpoint } from "../../bench/make-checkpoints.mjs";
import { CHROMIUM_OPTIONS, generateThroughPage, goldenCases } from "./harness.mjs";
import { serveModels } from "./model-server.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const out = path.join(here, "out");
const greedy = goldenCases(root).find(
  (c) => c.kind === "generate" && c.model === "stories260K.bin" && c.prompt === "Once upon a time" && c.temperature === 0,
);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "llama2-dist-"));
const src = path.join(tmp, "src"); // build.sh and www/, copied
const dist = path.join(tmp, "dist");

/** `./build.sh dist` without setup or build (DIST_ONLY); returns the version written into sw.js. */
function assemble() {
  execFileSync("bash", [path.join(src, "build.sh"), "dist"], {
    env: { ...process.env, DIST_ONLY: "1", DIST: dist },
    stdio: ["ignore", "ignore", "pipe"],
  });
  return /version: "([0-9a-f]{16})"/.exec(fs.readFileSync(path.join(dist, "sw.js"), "utf8"))[1];
}

let server, other, context, page, version, pageErrors;
/** The requests the second origin saw: { method, url, range, closedAfterMs } */
const otherLog = [];

before(async () => {
  fs.mkdirSync(out, { recursive: true });
  fs.mkdirSync(src);
  fs.copyFileSync(path.join(root, "build.sh"), path.join(src, "build.sh"));
  fs.cpSync(path.join(root, "www"), path.join(src, "www"), {
    recursive: true,
    filter: (f) => !/pkg-scalar|_v1\.bin|_q80\.bin/.test(f), // what dist does not take anyway
  });
  version = assemble();
  server = await serve(dist, ["/"], { isolated: false });
  other = await crossOriginServer();
  context = await chromium.launchPersistentContext(path.join(tmp, "profile"), CHROMIUM_OPTIONS);
  page = context.pages()[0] ?? (await context.newPage());
  pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e));
});

after(async () => {
  await context?.close();
  await server?.close();
  await other?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/**
 * A second origin, as huggingface.co answers: CORS for everyone, Range
 * requests (206), and /slow, a body that never ends (one chunk every 20 ms)
 * to see how soon an aborted download lets go of the server.
 */
async function crossOriginServer() {
  const body = fs.readFileSync(path.join(dist, "models/stories260K.bin"));
  const s = http.createServer((req, res) => {
    const entry = { method: req.method, url: req.url, range: req.headers.range ?? null };
    otherLog.push(entry);
    const cors = {
      "Access-Control-Allow-Origin": "*",
      "Access-Control-Allow-Headers": "range",
      "Access-Control-Expose-Headers": "content-range, content-length",
    };
    if (req.method === "OPTIONS") return res.writeHead(204, cors).end();
    if (req.url === "/slow") {
      const started = performance.now();
      res.writeHead(200, { ...cors, "Content-Type": "application/octet-stream" });
      const timer = setInterval(() => res.write(Buffer.alloc(4096)), 20);
      res.on("close", () => {
        clearInterval(timer);
        entry.closedAfterMs = performance.now() - started;
      });
      return;
    }
    const m = /^bytes=(\d+)-(\d+)$/.exec(entry.range ?? "");
    if (!m) return res.writeHead(200, { ...cors, "Content-Length": body.length }).end(body);
    const [from, to] = [Number(m[1]), Math.min(Number(m[2]), body.length - 1)];
    res.writeHead(206, { ...cors, "Content-Range": `bytes ${from}-${to}/${body.length}`, "Content-Length": to - from + 1 });
    res.end(body.subarray(from, to + 1));
  });
  await new Promise((resolve) => s.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${s.address().port}`,
    close: () => new Promise((resolve) => s.close(resolve)),
  };
}

/** Poll `fn` in `p` until it returns something truthy (across the page's own reloads). */
async function until(fn, p = page, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await p.evaluate(fn).catch(() => null); // (a reload in progress)
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${fn}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const modelLoaded = () => document.querySelector('#card [data-field="dim"]').textContent !== "–" && window.llama2Debug;
const card = (field, p = page) => p.locator(`#card [data-field="${field}"]`).textContent();

/** A browser profile of its own (service workers and caches live in it) and its first page. */
async function freshBrowser(name) {
  const ctx = await chromium.launchPersistentContext(path.join(tmp, name), CHROMIUM_OPTIONS);
  const p = ctx.pages()[0] ?? (await ctx.newPage());
  let navigations = 0;
  p.on("framenavigated", (frame) => frame === p.mainFrame() && navigations++);
  return { ctx, page: p, navigations: () => navigations };
}

/**
 * Reload `p` while the page may be reloading itself (www/offline.js does
 * when the worker it finds is being removed): that race is not an error.
 * (Seen once on a loaded machine: "Not attached to an active page".)
 */
async function reloadRacing(p) {
  try {
    await p.reload();
  } catch (e) {
    if (!/Not attached|interrupted|detached|ERR_ABORTED/i.test(e.message)) throw e;
    await p.waitForLoadState("load");
  }
}

/** Greedy "Once upon a time" with the Generate button; the text must be run.c's. */
async function generateGreedy() {
  assert.equal(await generateThroughPage(page, greedy), greedy.stdout);
}

test("first visit: the service worker stores the page, the page reloads once and is cross-origin isolated, with threads", async () => {
  let navigations = 0;
  const documents = [];
  page.on("framenavigated", (frame) => frame === page.mainFrame() && navigations++);
  page.on("response", (r) => r.request().isNavigationRequest() && documents.push(r));
  const started = performance.now();
  await page.goto(`${server.url}/?threads=2`);
  await until(() => globalThis.crossOriginIsolated);
  const isolatedAfterMs = performance.now() - started;
  await until(modelLoaded);
  console.log(`# isolated ${isolatedAfterMs.toFixed(0)} ms after the first navigation (one reload)`);
  assert.equal(navigations, 2, "one reload by www/offline.js");
  assert.equal(await page.evaluate(() => navigator.serviceWorker.controller?.scriptURL), `${server.url}/sw.js`);
  // the host sent no COOP/COEP; the worker's answer to the second navigation has them
  const [first, second] = documents;
  assert.equal(first.headers()["cross-origin-embedder-policy"], undefined);
  assert.equal(first.fromServiceWorker(), false);
  assert.equal(second.fromServiceWorker(), true);
  assert.equal(second.headers()["cross-origin-opener-policy"], "same-origin");
  assert.equal(second.headers()["cross-origin-embedder-policy"], "credentialless");
  // the threaded build, two threads
  assert.equal(await card("kernels"), "simd128, 2 threads");
  assert.equal(await page.evaluate(() => window.llama2Debug.threads()), 2);
  await generateGreedy();
  // the cache holds every file of the build, under this build's version
  const cached = await page.evaluate(async () => {
    const names = await caches.keys();
    const keys = await (await caches.open(names[0])).keys();
    return { names, files: keys.map((r) => new URL(r.url).pathname.slice(1)).sort() };
  });
  assert.deepEqual(cached.names, [`llama2-wasm ${server.url}/ ${version}`]);
  for (const f of ["index.html", "offline.js", "thread-helper.js", "pkg/llama2_wasm_bg.wasm", "pkg-threads/llama2_wasm_bg.wasm",
    "models/stories260K.bin", "models/tok512.bin", "models/tokenizer.bin"]) {
    assert.ok(cached.files.includes(f), `${f} is stored`);
  }
  assert.ok(!cached.files.includes("sw.js"));
  await page.screenshot({ path: path.join(out, "dist.png"), fullPage: true });
  assert.deepEqual(pageErrors, []);
});

test("cross-origin requests go past the service worker: a Range request gets the server's 206, an abort closes the download at once", async () => {
  const passedBy = [];
  const onResponse = (r) => passedBy.push({ url: r.url(), fromWorker: r.fromServiceWorker() });
  page.on("response", onResponse);
  const got = await page.evaluate(async (other) => {
    const ranged = await fetch(`${other}/stories260K.bin`, { headers: { Range: "bytes=28-127" } });
    const bytes = new Uint8Array(await ranged.arrayBuffer());
    // the same origin: from the worker's cache
    const own = await fetch("models/tok512.bin");
    await own.arrayBuffer();
    // a download that never ends, aborted after its first chunk
    const abort = new AbortController();
    const slow = await fetch(`${other}/slow`, { signal: abort.signal });
    await slow.body.getReader().read();
    abort.abort();
    return { status: ranged.status, range: ranged.headers.get("content-range"), length: bytes.length, ownStatus: own.status };
  }, other.url);
  page.off("response", onResponse);
  assert.deepEqual(got, { status: 206, range: "bytes 28-127/1056540", length: 100, ownStatus: 200 });
  const seen = (suffix) => passedBy.find((r) => r.url.endsWith(suffix));
  assert.equal(seen("/stories260K.bin").fromWorker, false, "the Range request was not answered by the worker");
  assert.equal(seen("/models/tok512.bin").fromWorker, true, "a file of the build was");
  // the server saw the Range header itself, and the aborted body was let go within a moment
  assert.ok(otherLog.some((e) => e.method === "GET" && e.url === "/stories260K.bin" && e.range === "bytes=28-127"));
  const slow = otherLog.find((e) => e.url === "/slow");
  for (let i = 0; i < 50 && slow.closedAfterMs === undefined; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(slow.closedAfterMs < 2000, `the aborted download was closed after ${slow.closedAfterMs} ms`);
});

/** Run `fn` with the browser offline (Playwright's network emulation), online again afterwards. */
async function offline(fn) {
  await context.setOffline(true);
  try {
    return await fn();
  } finally {
    await context.setOffline(false);
  }
}

test("offline: a reload opens the page from the cache, isolated, and generates with the default model", async () => {
  await offline(async () => {
    const started = performance.now();
    await page.reload();
    await until(modelLoaded);
    const openedMs = performance.now() - started;
    console.log(`# offline reload: the model card filled in ${openedMs.toFixed(0)} ms`);
    assert.equal(await page.evaluate(() => globalThis.crossOriginIsolated), true);
    assert.equal(await page.evaluate(() => navigator.onLine), false);
    assert.equal(await card("name"), "stories260K.bin");
    assert.equal(await card("kernels"), "simd128, 2 threads");
    await generateGreedy();
    // a file the build does not have fails as it would without a worker
    assert.equal(await page.evaluate(() => fetch("models/stories260K_v1.bin").then(() => "ok", () => "network error")),
      "network error");
  });
  assert.deepEqual(pageErrors, []);
});

test("offline: a model downloaded from the menu (stored in OPFS) loads by itself on an offline reload and generates", async () => {
  const BASE = "/karpathy/tinyllamas/resolve/main/";
  if (!fs.existsSync(checkpointPath("15M"))) makeCheckpoint("15M");
  const models = await serveModels({
    [`${BASE}stories15M.bin`]: checkpointPath("15M"),
    [`${BASE}tokenizer.bin`]: path.join(root, "www/models/tokenizer.bin"),
  });
  try {
    await page.goto(`${server.url}/?models=${encodeURIComponent(models.url + BASE)}`);
    await until(modelLoaded);
    await page.click('[data-model="stories15M"]');
    await until(() => document.querySelector('#card [data-field="name"]').textContent === "stories15M.bin");
    const requests = models.requests.length;
    await offline(async () => {
      const started = performance.now();
      await page.reload();
      await until(() => document.querySelector('#card [data-field="name"]').textContent === "stories15M.bin");
      console.log(`# offline reload with stories15M's shape stored: loaded in ${(performance.now() - started).toFixed(0)} ms`);
      assert.equal(await page.evaluate(() => globalThis.crossOriginIsolated), true);
      await page.evaluate(() => document.querySelector("#stop-button:enabled")?.click());
      await page.fill("#steps", "16");
      await page.click("#generate-button");
      await page.waitForFunction(() => document.querySelector("#stop-button").disabled, null, { timeout: 60_000 });
      const [generated, total] = (await page.locator("#stat-tokens").textContent()).split(" / ").map(Number);
      assert.ok(generated > 0 && total <= 17, `generated / total: ${generated} / ${total}`);
    });
    assert.equal(models.requests.length, requests, "nothing asked of the model host");
  } finally {
    await models.close();
  }
  assert.deepEqual(pageErrors, []);
});

test("a new deploy: the page offers it, and taking it replaces the old build's cache", async () => {
  const oldVersion = version;
  fs.appendFileSync(path.join(src, "www/style.css"), "\n/* deploy 2 */\n");
  version = assemble();
  assert.notEqual(version, oldVersion);
  // the reload still shows the old build (from its cache), which finds the new one and offers it
  await page.reload();
  await until(modelLoaded);
  assert.doesNotMatch(await page.evaluate(() => fetch("style.css").then((r) => r.text())), /deploy 2/);
  await page.waitForSelector("#offline-status button", { timeout: 30_000 });
  assert.match(await page.locator("#offline-status").textContent(), /A new version of this page is ready/);
  // the new worker takes over, the page reloads itself, the old cache is gone
  await Promise.all([page.waitForEvent("framenavigated", { timeout: 30_000 }), page.click("#offline-status button")]);
  await until(modelLoaded);
  assert.match(await page.evaluate(() => fetch("style.css").then((r) => r.text())), /deploy 2/);
  assert.deepEqual(await page.evaluate(() => caches.keys()), [`llama2-wasm ${server.url}/ ${version}`]);
  assert.equal(await page.evaluate(() => globalThis.crossOriginIsolated), true);
  assert.equal(await page.locator("#offline-status").count(), 0);
  assert.deepEqual(pageErrors, []);
});

test("a file that is not the one the build listed: the worker does not install, and the page runs as served, without reloading", async () => {
  // a CDN still serving part of the previous deploy looks like this
  const mixed = path.join(tmp, "mixed");
  fs.cpSync(dist, mixed, { recursive: true });
  fs.appendFileSync(path.join(mixed, "style.css"), "\n/* from another build */\n");
  const host = await serve(mixed, ["/"], { isolated: false });
  const b = await freshBrowser("profile-mixed");
  try {
    await b.page.goto(`${host.url}/`);
    await until(modelLoaded, b.page);
    const state = await b.page.evaluate(async () => ({
      isolated: globalThis.crossOriginIsolated,
      registrations: (await navigator.serviceWorker.getRegistrations()).length,
      caches: await caches.keys(),
    }));
    assert.deepEqual(state, { isolated: false, registrations: 0, caches: [] });
    assert.equal(b.navigations(), 1, "no reload");
    assert.match(await card("kernels", b.page), /^simd128, 1 thread \(the page is not cross-origin isolated/);
  } finally {
    await b.ctx.close();
    await host.close();
  }
});

test("development on an address that served dist/ before: the worker found there removes itself and its cache", async () => {
  const b = await freshBrowser("profile-dev");
  let host = await serve(dist, ["/"], { isolated: false });
  const { port } = new URL(host.url);
  try {
    await b.page.goto(`${host.url}/`);
    await until(() => globalThis.crossOriginIsolated && Boolean(navigator.serviceWorker.controller), b.page);
    // now ./build.sh's server on the same address: its www/sw.js has no build
    await host.close();
    host = await serve(path.join(src, "www"), ["/"], { port: Number(port) });
    // the browser checks sw.js after a navigation and installs the www/ copy, which
    // deletes the caches and unregisters; at most one more reload shows www/ itself
    await reloadRacing(b.page);
    await until(async () => (await navigator.serviceWorker.getRegistrations()).length === 0, b.page);
    await reloadRacing(b.page);
    await until(modelLoaded, b.page);
    const state = await b.page.evaluate(async () => ({
      dev: !document.querySelector('meta[name="llama2-sw"]'),
      controlled: Boolean(navigator.serviceWorker.controller),
      registrations: (await navigator.serviceWorker.getRegistrations()).length,
      caches: await caches.keys(),
    }));
    assert.deepEqual(state, { dev: true, controlled: false, registrations: 0, caches: [] });
  } finally {
    await b.ctx.close();
    await host.close();
  }
});

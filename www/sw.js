// The service worker of the static copy that `./build.sh dist` makes (README,
// Deploy). Two jobs:
//
// 1. Cross-origin isolation on hosts that cannot send headers (GitHub Pages
//    and most static hosts): the threaded build needs SharedArrayBuffer,
//    which browsers give only to pages served with
//      Cross-Origin-Opener-Policy: same-origin
//      Cross-Origin-Embedder-Policy: credentialless (or require-corp)
//    This worker adds both to every same-origin response it serves, so the
//    page is isolated from the first navigation that passes through it
//    (www/offline.js reloads the page once after the first visit for that).
// 2. Offline use: the page, its scripts, the wasm and the default model are
//    stored in the Cache Storage when the worker installs, so a page once
//    visited opens and runs them without a network.
//
// Which requests it answers (respondWith), and how:
//   - cross-origin, not GET, or with a Range header: never. The browser
//     fetches them itself, as if there were no worker: a model download from
//     huggingface.co stops at once when its AbortController aborts it, and a
//     Range request resumes it (a worker in the middle would hold the
//     download open and could answer a Range request with the whole file);
//   - a file of this build (BUILD.files): from this build's cache, never the
//     network ("cache first"; the query string is ignored: the page imports
//     pkg/llama2_wasm.js?instance=2 for a fresh engine, and /?threads=2 is
//     index.html);
//   - any other same-origin GET: the network, and this build's cache when the
//     network fails; small responses are kept for that.
//
// Never registered in development: ./build.sh serves www/ with the headers
// itself, and www/offline.js registers this worker only in dist's page (its
// <meta name="llama2-sw">). The copy in www/ has no file list; installed
// anyway (a browser that visited the dist copy on the same address before
// the dev server ran there finds it when it checks sw.js for an update), it
// deletes the caches and unregisters itself: at most one more reload, and
// development sees its own files.

// The build: every file of dist/ that the page may need, each with its
// Subresource Integrity hash, and a version (a hash of the list).
// `./build.sh dist` replaces the next line; in www/ it stays empty.
const BUILD = { version: "", files: {} };

// COEP: "credentialless" (Chromium, Firefox) lets the page fetch other
// origins in no-cors mode (an opaque answer tells "the server refused CORS"
// from "the server is unreachable"); Safari knows only "require-corp", so
// www/offline.js registers "sw.js?coep=require-corp" there.
const COEP = new URL(self.location.href).searchParams.get("coep") === "require-corp" ? "require-corp" : "credentialless";

// The folder sw.js is served from (the page's folder: "/" or, on GitHub
// Pages, "/<repository>/"); BUILD.files are relative to it.
const BASE = new URL("./", self.location.href);
// One cache per build, named after the folder too: other pages on the same
// origin (GitHub Pages puts a user's projects on one origin) keep theirs.
const PREFIX = `llama2-wasm ${BASE.href} `;
const CACHE = PREFIX + BUILD.version;

// Same-origin responses outside the build are kept for offline use up to
// this size (a model the page downloads is stored by the page, not here).
const MAX_KEPT_BYTES = 16 << 20;

self.addEventListener("install", (event) => {
  if (!BUILD.version) {
    // the www/ copy: remove everything now (even if the old worker stays in
    // charge of an open page for a while, the next load comes from the
    // network), then take over to reload the open pages (activate)
    event.waitUntil(retire());
    return;
  }
  // A first install activates as soon as it is done (there is no other
  // worker to wait for). A later one waits while a page of the old build is
  // open: that page still loads files lazily (pkg-threads/ when a large
  // model arrives, tokenizer.bin, a fresh engine after a crash), and they
  // must come from its own build. www/offline.js offers the reload that
  // switches; otherwise the new build takes over once every tab of the page
  // is closed.
  event.waitUntil(precache());
});

/**
 * Store every file of the build in a new cache, all or nothing (addAll).
 * `cache: "reload"` goes past the HTTP cache, which could hold a file of the
 * previous deploy for the host's max-age; `integrity` refuses any file that
 * is not the one this build listed (a CDN still serving part of the
 * previous deploy): the install then fails, the old build stays, and the
 * browser tries again at a later visit. So the wasm and its JavaScript glue
 * always come from one build.
 */
async function precache() {
  const requests = Object.entries(BUILD.files).map(
    ([path, integrity]) => new Request(new URL(path, BASE), { cache: "reload", integrity }),
  );
  const existed = await caches.has(CACHE); // (this build's, under another ?coep=)
  try {
    await (await caches.open(CACHE)).addAll(requests);
  } catch (e) {
    if (!existed) await caches.delete(CACHE);
    throw e;
  }
}

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      if (!BUILD.version) {
        await deleteCaches();
        for (const client of await self.clients.matchAll({ type: "window" })) client.navigate(client.url);
        return;
      }
      // this build's cache stays, every older one of this page goes
      for (const name of await caches.keys()) {
        if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
      }
      // the first visit's page is controlled at once (its later fetches are
      // answered from the cache); it reloads itself for the headers
      await self.clients.claim();
    })(),
  );
});

/**
 * The www/ copy, installing: delete this page's caches, unregister (takes
 * effect once the install is over: the job waits behind it) and take over.
 */
async function retire() {
  await deleteCaches();
  self.registration.unregister();
  await self.skipWaiting();
}

async function deleteCaches() {
  for (const name of await caches.keys()) if (name.startsWith(PREFIX)) await caches.delete(name);
}

// www/offline.js: "a new version is ready — Reload" was clicked
self.addEventListener("message", (event) => {
  if (event.data === "skip-waiting") self.skipWaiting();
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (!BUILD.version) return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || request.method !== "GET" || request.headers.has("Range")) return;
  // (a request DevTools makes; fetch() would throw on it)
  if (request.cache === "only-if-cached" && request.mode !== "same-origin") return;
  event.respondWith(respond(event, request, url));
});

async function respond(event, request, url) {
  const path = buildPath(url);
  if (path) {
    const stored = await caches.match(new URL(path, BASE).href, { cacheName: CACHE });
    if (stored) return isolated(stored, path);
  }
  let response;
  try {
    response = await fetch(request);
  } catch (e) {
    const stored = await caches.match(request, { cacheName: CACHE });
    if (stored) return isolated(stored, url.pathname);
    throw e; // offline and never seen: the page gets the network error it would get without a worker
  }
  const length = response.headers.get("Content-Length");
  if (response.ok && response.type === "basic" && length !== null && Number(length) <= MAX_KEPT_BYTES) {
    event.waitUntil(keep(request, response.clone()));
  }
  return isolated(response, url.pathname);
}

/** Keep a copy for offline use, in this build's cache while it exists (caches.open would make it again). */
async function keep(request, response) {
  if (await caches.has(CACHE)) await (await caches.open(CACHE)).put(request, response);
}

/** The build's name for a same-origin URL ("index.html" for the folder itself), or null. */
function buildPath(url) {
  if (!url.pathname.startsWith(BASE.pathname)) return null;
  let path;
  try {
    path = decodeURIComponent(url.pathname.slice(BASE.pathname.length));
  } catch {
    return null; // a malformed %-escape: no file of ours
  }
  if (path === "" || path.endsWith("/")) path += "index.html";
  return Object.hasOwn(BUILD.files, path) ? path : null;
}

/** `response` with the two headers that make the page cross-origin isolated. */
function isolated(response, path) {
  // a redirect seen by a navigation, or an error: cannot be rebuilt, and is no page
  if (response.type === "opaqueredirect" || response.status === 0) return response;
  const headers = new Headers(response.headers);
  headers.set("Cross-Origin-Opener-Policy", "same-origin");
  headers.set("Cross-Origin-Embedder-Policy", COEP);
  // WebAssembly.compileStreaming (www/engine.js) needs this type, which
  // some static hosts do not send for .wasm
  if (path.endsWith(".wasm")) headers.set("Content-Type", "application/wasm");
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

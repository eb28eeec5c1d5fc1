// The page's side of the service worker (sw.js) in the static copy that
// `./build.sh dist` makes: register it, reload once so that the page comes
// through it with the COOP/COEP headers (cross-origin isolated: threads),
// and offer a new deploy when one is ready. In development (no
// <meta name="llama2-sw"> in index.html: ./build.sh serves the headers
// itself) it registers nothing, and removes a worker left on this address
// by an earlier visit to a dist copy.

// sessionStorage: set just before this page reloads itself for the headers
const RELOADED = "llama2-sw-reloaded";
// give up waiting for the first install after this long (a slow network:
// the page starts without it, and the next visit is isolated)
const INSTALL_WAIT_MS = 30_000;

/**
 * Call first thing. Resolves to true when the page should carry on, false
 * when it is reloading itself (the caller then starts nothing).
 */
export async function startServiceWorker() {
  const marker = document.querySelector('meta[name="llama2-sw"]');
  const sw = navigator.serviceWorker; // undefined on http:// other than localhost, and in some private modes
  if (!sw) return true;
  if (!marker) {
    removeStrayWorker(sw);
    return true;
  }
  const coep = credentiallessSupported() ? "credentialless" : "require-corp";
  const script = marker.content + (coep === "require-corp" ? "?coep=require-corp" : "");
  const controlled = Boolean(sw.controller);
  // (register() can wait seconds behind the update check the browser makes
  // after a navigation: the page does not wait for it unless it must)
  const registering = register(sw, script);
  const offer = () => registering.then((registration) => registration && controlled && offerUpdates(sw, registration));
  if (globalThis.crossOriginIsolated) {
    setReloaded(false);
    offer();
    return true;
  }
  if (reloadedBefore()) {
    // reloaded once already and still not isolated: this browser does not
    // take the headers from a worker. One thread (the card says why).
    console.warn("llama2-wasm: not cross-origin isolated even through the service worker: running on one thread");
    offer();
    return true;
  }
  const registration = await registering;
  if (!registration) return true;
  // First visit (or a hard reload, which bypasses the worker): once the
  // worker is active (the first install stores the page first: the model is
  // then downloaded once, not twice), load the page again through it.
  if (!registration.active) status("Storing this page for offline use…");
  if (!(await active(registration))) {
    status("");
    return true;
  }
  // (without storage the page could not tell it had reloaded: no reload, no loop)
  if (!setReloaded(true)) {
    status("");
    return true;
  }
  location.reload();
  return false;
}

/** `sw.register(script)`, or null (with a warning) when the browser refuses. */
async function register(sw, script) {
  try {
    return await sw.register(script);
  } catch (e) {
    console.warn(`llama2-wasm: no service worker (${e.message}): no offline use, and threads only if the host isolates the page`);
    return null;
  }
}

/**
 * Whether the browser takes "Cross-Origin-Embedder-Policy: credentialless"
 * (MDN's compatibility data: Chrome/Edge 96, Firefox 119 on desktop; not
 * Safari, nor Firefox for Android). No API tells; Chromium is recognised by
 * credentialless iframes (Chrome 110, shipped after the header), Firefox by
 * its user agent. Anything else gets "require-corp", which every browser
 * with COEP takes (the page's own files are same-origin and need nothing
 * more; cross-origin fetches in CORS mode pass either way).
 */
function credentiallessSupported() {
  if ("credentialless" in HTMLIFrameElement.prototype) return true;
  const firefox = /\bFirefox\/(\d+)/.exec(navigator.userAgent);
  return Boolean(firefox) && Number(firefox[1]) >= 119 && !/Android/.test(navigator.userAgent);
}

/** Resolves to true once `registration` has an active worker, false if the install fails or takes too long. */
function active(registration) {
  return new Promise((resolve) => {
    if (registration.active) return resolve(true);
    const worker = registration.installing ?? registration.waiting;
    if (!worker) return resolve(false);
    worker.addEventListener("statechange", () => {
      if (worker.state === "activated") resolve(true);
      else if (worker.state === "redundant") resolve(false); // a file failed to download: no worker this time
    });
    setTimeout(() => resolve(false), INSTALL_WAIT_MS);
  });
}

/**
 * A page of the current build is open: when a new deploy has installed
 * (sw.js checks for one at every visit), say so with a Reload button. The
 * new build takes over when that is clicked (then every open tab of the page
 * reloads, as none may go on loading files from the old build's cache, which
 * is deleted), or else once every tab of the page is closed.
 */
function offerUpdates(sw, registration) {
  let reloading = false;
  sw.addEventListener("controllerchange", () => {
    if (reloading) return;
    reloading = true;
    location.reload();
  });
  // (asked again every 2 s: Chromium can miss a skipWaiting() that comes
  // while the old worker is busy answering a request)
  const offer = (worker) =>
    status("A new version of this page is ready.", "Reload", () => {
      worker.postMessage("skip-waiting");
      setInterval(() => worker.postMessage("skip-waiting"), 2000);
    });
  const watch = (worker) =>
    worker?.addEventListener("statechange", () => {
      if (worker.state === "installed") offer(worker);
    });
  if (registration.waiting) offer(registration.waiting);
  watch(registration.installing);
  registration.addEventListener("updatefound", () => watch(registration.installing));
  registration.update().catch(() => {}); // offline: nothing to check
}

/** Development: unregister a dist copy's worker on this address and delete its caches (see sw.js). */
async function removeStrayWorker(sw) {
  try {
    const ours = new URL("sw.js", location.href).href;
    for (const registration of await sw.getRegistrations()) {
      const script = (registration.active ?? registration.waiting ?? registration.installing)?.scriptURL ?? "";
      if (script.split("?")[0] === ours) await registration.unregister();
    }
    const prefix = `llama2-wasm ${new URL("./", location.href).href} `;
    for (const name of (await globalThis.caches?.keys()) ?? []) if (name.startsWith(prefix)) await caches.delete(name);
  } catch {
    // nothing to clean up, or no access to it: either way nothing to do
  }
}

/** Whether this tab reloaded itself for the headers (sessionStorage; storage may be blocked). */
function reloadedBefore() {
  try {
    return sessionStorage.getItem(RELOADED) !== null;
  } catch {
    return false;
  }
}

/** Set or clear that flag; false when storage is blocked. */
function setReloaded(reloaded) {
  try {
    if (reloaded) sessionStorage.setItem(RELOADED, "1");
    else sessionStorage.removeItem(RELOADED);
    return true;
  } catch {
    return false;
  }
}

/** A line under the page's title (#offline-status) with an optional button; "" removes it. */
function status(text, label, onClick) {
  let line = document.getElementById("offline-status");
  if (!text) {
    line?.remove();
    return;
  }
  if (!line) {
    line = document.createElement("p");
    line.id = "offline-status";
    line.className = "hint";
    line.setAttribute("role", "status");
    (document.querySelector("header") ?? document.body).append(line);
  }
  line.textContent = text;
  if (label) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = label;
    button.addEventListener("click", onClick);
    line.append(" ", button);
  }
}

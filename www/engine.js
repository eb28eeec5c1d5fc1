// Loading the engine: the threaded wasm build (www/pkg-threads) when the page
// can share memory with Workers, else the single-threaded one (www/pkg).
//
// Why threads: a token streams every weight once, and one core cannot read
// memory as fast as two (see README, Performance). The threaded build splits
// each large matmul by rows between this thread and helper Workers; the
// numbers are identical either way. Sharing memory needs SharedArrayBuffer,
// which browsers give only to cross-origin isolated pages (./build.sh serves
// the COOP/COEP headers for it); without it the page runs single-threaded.

/** How many threads to use: `?threads=N` in the page's URL, else all cores up to 4. */
export function wantedThreads() {
  const asked = Number(new URLSearchParams(location.search).get("threads"));
  if (Number.isInteger(asked) && asked >= 1) return Math.min(asked, 16);
  return Math.max(1, Math.min(navigator.hardwareConcurrency || 1, 4));
}

/** Why threads cannot be used here, or "" when they can. */
export function threadsUnavailable() {
  if (typeof SharedArrayBuffer === "undefined" || !globalThis.crossOriginIsolated) {
    return "the page is not cross-origin isolated (served without COOP/COEP headers)";
  }
  if (typeof Worker === "undefined") return "this browser has no Web Workers";
  return "";
}

/**
 * Load the engine. Returns { pkg, wasm, threads, note }: the package's
 * exports (Model, ModelLoader, fileInfo...), the instance's exports, how many
 * threads share each matmul, and a line saying why when that is 1.
 */
export async function loadEngine(threads = wantedThreads()) {
  let note = threads <= 1 ? "one thread asked for" : threadsUnavailable();
  if (!note) {
    try {
      return await loadThreaded(threads);
    } catch (e) {
      note = `the threaded build did not start (${e.message})`;
      console.warn(`llama2-wasm: ${note}; running single-threaded`);
    }
  }
  const pkg = await import("./pkg/llama2_wasm.js");
  const wasm = await pkg.default();
  return { pkg, wasm, threads: 1, note };
}

async function loadThreaded(threads) {
  const pkg = await import("./pkg-threads/llama2_wasm.js");
  // compile once here, so every Worker instantiates the same module
  const url = new URL("./pkg-threads/llama2_wasm_bg.wasm", import.meta.url);
  const module = await WebAssembly.compileStreaming(fetch(url));
  const wasm = await pkg.default({ module_or_path: module });
  const helpers = threads - 1;
  const workers = [];
  try {
    await Promise.all(Array.from({ length: helpers }, (_, i) => startHelper(module, wasm.memory, i + 1, workers)));
    // a helper posts "ready" just before entering its loop: wait until all are in it
    const deadline = performance.now() + 10_000;
    while (pkg.threadsJoined() < helpers) {
      if (performance.now() > deadline) throw new Error(`only ${pkg.threadsJoined()} of ${helpers} helpers started`);
      await new Promise((r) => setTimeout(r, 1));
    }
    return { pkg, wasm, threads: pkg.enableThreads(helpers), note: "" };
  } catch (e) {
    // the single-threaded build takes over: let go of these Workers and the shared memory they hold
    for (const w of workers) w.terminate();
    throw e;
  }
}

function startHelper(module, memory, index, workers) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL("./thread-helper.js", import.meta.url), { type: "module", name: `llama2 helper ${index}` });
    workers.push(worker);
    const timer = setTimeout(() => reject(new Error(`helper ${index} did not start in 10 s`)), 10_000);
    worker.onmessage = ({ data }) => {
      clearTimeout(timer);
      if (data.ready) resolve(worker);
      else if (data.error) {
        reject(new Error(data.error)); // (ignored once started: the pool carries on without it)
        console.warn(`llama2-wasm: ${data.error}`);
      }
    };
    worker.onerror = (e) => {
      clearTimeout(timer);
      reject(new Error(e.message || `helper ${index} failed to load`));
    };
    worker.postMessage({ module, memory, index });
  });
}

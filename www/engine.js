// Loading the engine: the single-threaded wasm build (www/pkg), and the
// threaded one (www/pkg-threads) for models big enough to gain from threads
// when the page can share memory with Workers.
//
// Why threads: a token streams every weight once, and one core cannot read
// memory as fast as two (see README, Performance). The threaded build splits
// each large matmul by rows between this thread and helper Workers; the
// numbers are identical either way. Sharing memory needs SharedArrayBuffer,
// which browsers give only to cross-origin isolated pages (./build.sh serves
// the COOP/COEP headers for it); without it the page runs single-threaded.
//
// Why not always: a model whose matrices are all below the split threshold
// gains nothing from helpers (stories260K), nor, measurably, one whose split
// matrices hold few weights. The page picks per model, from the header
// (planFor below); both builds can be loaded at once (separate memories, a
// model lives in one).

/** Matmuls with fewer weights run on one thread even in the threaded build (src/parallel.rs MIN_PARALLEL). */
export const MIN_SPLIT_WEIGHTS = 1 << 16;

/**
 * Models with fewer weights per token than this in matrices that split (at
 * least MIN_SPLIT_WEIGHTS each) run on the single-threaded build by default.
 * Measured on the 2-core CI VM (README, Threads; raw step() tok/s, 2 threads
 * against www/pkg, interleaved in one page): no split weights (stories260K)
 * 1.02x, the helper never gets a part; 65,536 (a 128-dim model whose only
 * split matrix is a 512-token classifier) 1.10x, within the threaded build's
 * own one-thread noise (0.98-1.09x); 524,288 1.79x (1.40x its one thread);
 * 2-15 million 1.35-2.0x. The threshold sits between the neutral and the
 * first clear gain.
 */
export const MIN_THREADED_WEIGHTS = 1 << 18;

/** Node.js (the npm package runs there too, on one thread). */
const NODE = Boolean(globalThis.process?.versions?.node);

/** The most threads the pool takes (src/parallel.rs MAX_HELPERS + 1). */
const MAX_THREADS = 16;

/** The machine's logical cores as the browser reports them (at least 1). */
export function cores() {
  return Math.max(1, Math.floor(globalThis.navigator?.hardwareConcurrency) || 1);
}

/**
 * The threads the page may use: `{ threads, forced, note }`. `?threads=N` in
 * the URL forces N for every model (reduced to the machine's cores, with a
 * note saying so); else the cores up to 4, used only for models that gain
 * from them (planFor).
 */
export function requestedThreads(search = globalThis.location?.search ?? "") {
  const raw = new URLSearchParams(search).get("threads");
  const asked = Number(raw);
  const n = cores();
  if (raw !== null && Number.isInteger(asked) && asked >= 1) {
    const most = Math.min(n, MAX_THREADS);
    if (asked > most) {
      return { threads: most, forced: true, note: `?threads=${asked} reduced to ${most} ${most === n ? "core" : "thread"}${most === 1 ? "" : "s"}` };
    }
    return { threads: asked, forced: true, note: "" };
  }
  return { threads: Math.min(n, 4), forced: false, note: "" };
}

/** How many threads to use when nothing is known about the model (kept for bench/). */
export function wantedThreads() {
  return requestedThreads().threads;
}

/**
 * A checkpoint header's shape, `{ dim, hidden_dim, n_layers, n_heads,
 * n_kv_heads, vocab_size }`, from its first 256 bytes (legacy v0: seven i32;
 * export v1/v2: the "ak42" magic, the version, then the same seven), or
 * null. Only for choosing threads: the engine validates the header itself.
 */
export function headerShape(head) {
  if (!(head instanceof Uint8Array) || head.length < 28) return null;
  const view = new DataView(head.buffer, head.byteOffset, head.length);
  const at = view.getUint32(0, true) === 0x616b3432 ? 8 : 0;
  if (head.length < at + 28) return null;
  const [dim, hidden, layers, heads, kvHeads, vocab] = Array.from({ length: 6 }, (_, i) => view.getInt32(at + 4 * i, true));
  return { dim, hidden_dim: hidden, n_layers: layers, n_heads: heads, n_kv_heads: kvHeads, vocab_size: Math.abs(vocab) };
}

/**
 * Weights per token in the matmuls that the threaded build splits, from a
 * header's shape (headerShape): per layer wq, wo (dim x dim), wk, wv
 * (kv_dim x dim), w1, w3 (hidden x dim), w2 (dim x hidden), and the
 * classifier; only matrices of at least MIN_SPLIT_WEIGHTS count.
 */
export function splitWeights(shape) {
  if (!shape) return 0;
  const { dim, hidden_dim: hidden, n_layers: layers, n_heads: heads, n_kv_heads: kvHeads, vocab_size: vocab } = shape;
  if (![dim, hidden, layers, heads, kvHeads, vocab].every((v) => v > 0)) return 0;
  const kvDim = (dim / heads) * kvHeads;
  const matrices = [[dim * dim, 2 * layers], [kvDim * dim, 2 * layers], [hidden * dim, 3 * layers], [vocab * dim, 1]];
  return matrices.reduce((sum, [weights, count]) => sum + (weights >= MIN_SPLIT_WEIGHTS ? weights * count : 0), 0);
}

/**
 * How to run a checkpoint: `{ threads, note }` (1: the single-threaded
 * build). `shape`: headerShape of its first bytes; `request`: requestedThreads().
 */
export function planFor(shape, request = requestedThreads()) {
  if (request.forced || request.threads <= 1) return { threads: request.threads, note: request.note };
  const split = splitWeights(shape);
  if (split < MIN_THREADED_WEIGHTS) {
    const why = split === 0 ? "no matmul large enough to split" : "threads gain nothing measurable at this size";
    return { threads: 1, note: `small model: ${why}` };
  }
  return { threads: request.threads, note: request.note };
}

/** Why threads cannot be used here, or "" when they can. */
export function threadsUnavailable() {
  if (NODE) return "Node.js: the package runs on one thread there";
  if (typeof SharedArrayBuffer === "undefined" || !globalThis.crossOriginIsolated) {
    return "the page is not cross-origin isolated (served without COOP/COEP headers)";
  }
  if (typeof Worker === "undefined") return "this browser has no Web Workers";
  return "";
}

let instances = 0; // fresh copies of the packages made so far

/**
 * The page's engines: the single-threaded build, loaded now, and the
 * threaded one with `request.threads` threads, loaded the first time a
 * model asks for more than one thread. `engines.get(threads)` resolves to
 * `{ pkg, wasm, threads, note }`: the package's exports (Model, ModelLoader,
 * fileInfo...), the instance's exports, the threads that will share each
 * large matmul, and why that is 1 when more were asked for.
 *
 * `fresh`: new instances of the wasm modules (a new copy of each package's
 * JS, so a new memory), for when the old ones died: a trap leaves a wasm
 * instance unusable for good (README, Robustness). `dispose()` stops the
 * threaded engine's helper Workers. (A dead instance's memory stays held by
 * its package's JS module until the page is reloaded: browsers never unload
 * a module.)
 */
export async function createEngines(request = requestedThreads(), { fresh = false } = {}) {
  const tag = fresh ? `?instance=${++instances}` : "";
  const single = await loadSingle("", tag);
  let threaded = null;
  const loaded = [single];
  return {
    request,
    single,
    /** The engines loaded so far (their memories are separate). */
    loaded,
    /** The engine for a plan's thread count (the single-threaded one for 1, or when threads cannot start). */
    async get(threads) {
      if (threads <= 1) return single;
      threaded ??= loadThreadedOrWhy(threads, tag).then((t) => {
        if (t.threads > 1) loaded.push(t);
        return t;
      });
      const t = await threaded;
      return t.threads > 1 ? t : { ...single, note: t.note };
    },
    /** Let these engines go: the threaded one's helper Workers are stopped. */
    dispose() {
      for (const e of loaded) for (const w of e.workers ?? []) w.terminate();
    },
  };
}

/**
 * Load one engine with `threads` threads (the benchmark's entry point; the
 * page uses createEngines). Returns { pkg, wasm, threads, note }.
 */
export async function loadEngine(threads = wantedThreads()) {
  if (threads <= 1) return loadSingle("one thread asked for");
  const t = await loadThreadedOrWhy(threads);
  return t.threads > 1 ? t : loadSingle(t.note);
}

async function loadSingle(note, tag = "") {
  const pkg = await import(`./pkg/llama2_wasm.js${tag}`);
  // Node's fetch has no file: URLs: give the glue the .wasm's bytes
  const source = NODE ? { module_or_path: await readFile(new URL("./pkg/llama2_wasm_bg.wasm", import.meta.url)) } : undefined;
  const wasm = await pkg.default(source);
  return { pkg, wasm, threads: 1, note };
}

async function readFile(url) {
  const fs = await import(/* Node only */ "node:fs/promises");
  return fs.readFile(url);
}

/** The threaded engine, or `{ threads: 1, note }` saying why it cannot run here. */
async function loadThreadedOrWhy(threads, tag = "") {
  let note = threadsUnavailable();
  if (!note) {
    try {
      return await loadThreaded(threads, tag);
    } catch (e) {
      note = `the threaded build did not start (${e.message})`;
      console.warn(`llama2-wasm: ${note}; running single-threaded`);
    }
  }
  return { threads: 1, note };
}

async function loadThreaded(threads, tag = "") {
  const pkg = await import(`./pkg-threads/llama2_wasm.js${tag}`);
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
    return { pkg, wasm, threads: pkg.enableThreads(helpers), note: "", workers };
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

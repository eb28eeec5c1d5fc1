// Test and benchmark hooks: window.llama2Debug, for tests/e2e and
// bench/run.mjs only (memory, raw step() speed, logits hashes, the
// threads in use, and test-only crashes and memory limits). Not part of the
// page's behaviour: nothing on the page calls them.

/**
 * `models`: www/models.js; `generation`: www/generation.js; `inspector`:
 * www/inspector/index.js; `compare`: www/compare.js.
 */
export function installDebugHooks({ models, generation, inspector, library, compare, backend }) {
  // the hooks below drive the model directly: stop the page's run first
  // (its text will no longer match the KV cache, nor can it continue)
  const takeModel = () => {
    compare.stop();
    generation.stop();
    generation.forget();
    inspector.invalidate();
    return models.model;
  };
  const engine = () => models.engine ?? models.engines.single;
  window.llama2Debug = {
    // the model on the page, to read (tokens(), piece(), config()) without disturbing its run
    model: () => models.model,
    // every loaded engine's memory (both builds once a model has run threaded)
    wasmMemoryBytes: () => models.engines.loaded.reduce((sum, e) => sum + e.wasm.memory.buffer.byteLength, 0),
    // the current model's engine: the threads sharing its matmuls
    threads: () => models.engine.pkg.threads(),
    // tests: split even small matrices between the threads (0) or not (65536)
    setMinParallel: (weights) => models.engine.pkg.setMinParallel(weights),
    helperParts: () => models.engine.pkg.helperParts(),
    // the backend chosen for the current model: { backend, text, reason } (www/backend.js)
    backend: () => backend.status,
    // tests: lose the GPU device now (GPUDevice.destroy()), as a driver reset would
    loseGpu: () => models.model.__loseGpuForTest(),
    // tests: useGpu's options for the next choice (`{ requiredLimits: { ... } }`: more than the adapter has)
    setGpuOptions: (options) => backend.setGpuOptions(options),
    // which build runs the current model
    threaded: () => models.engine.pkg.threadsSupported(),
    // tests: a hash of every logit (their bits) of a greedy run of `steps`
    logitsHash: (prompt, steps) => {
      const m = takeModel();
      m.inspect = true; // logits() needs the record; recording changes no number
      m.start(prompt, 0, 0.9, 1, steps);
      let h = 2166136261;
      let n = 0;
      while (m.step() !== undefined) {
        for (const bits of new Uint32Array(m.logits().buffer)) h = Math.imul(h ^ bits, 16777619) >>> 0;
        n++;
      }
      m.inspect = inspector.open;
      return { hash: h, steps: n };
    },
    // tests: one whole generation with the current model; its token ids
    generate: (prompt, temperature, topp, seed, steps) => {
      const m = takeModel();
      m.start(prompt, temperature, topp, seed, steps);
      while (m.step() !== undefined);
      return Array.from(m.tokens());
    },
    inspecting: () => models.model?.inspect,
    // the records of the files stored on this device (www/storage.js)
    storedModels: () => library.storage.list(),
    // TEST ONLY: make the page believe the browser lets it store at most `bytes` (null: undo)
    setStorageQuota: (bytes) => library.storage.setQuotaForTest(bytes),
    // TEST ONLY: make the current model's engine trap as a Rust panic would
    // ("now", or armed for the next "step" / "push"; src/wasm.rs __crashForTest)
    crash: (when) => {
      try {
        engine().pkg.__crashForTest(when);
      } catch (e) {
        throw models.noticed(e);
      }
    },
    // the restart after a crash (resolves when it is over), or null
    restarting: () => models.restarting(),
    // TEST ONLY: lower the memory a model may take in every loaded engine (0: the default)
    setMemoryLimit: (bytes) => models.engines.loaded.forEach((e) => e.pkg.__setMemoryLimitForTest(bytes)),
    memoryLimit: () => engine().pkg.memoryLimit(),
    // what the current model holds in its engine's memory (config().memory_bytes)
    memoryBytes: () => models.model?.config().memory_bytes,
    // for the benchmark (bench/run.mjs): raw step() speed in this page;
    // inspect: with the engine recording every step, as when the inspector is open
    rawStepsPerSecond: (steps = 256, inspect = false) => {
      const m = takeModel();
      m.inspect = inspect;
      m.start("", 0, 0.9, 1, steps);
      m.step(); // timed from the first token on, as run.c and the page do
      let n = 0;
      const t = performance.now();
      while (m.step() !== undefined) n++;
      const speed = (n / (performance.now() - t)) * 1000;
      m.inspect = inspector.open;
      return speed;
    },
  };
}

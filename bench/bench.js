// The benchmark's page side: load a wasm build (SIMD or scalar) and a
// checkpoint through the real Model class, then time greedy generation the
// way run.c does (the timer starts after the first token).
import { urlSource, readAll } from "/www/loader.js";
import { loadEngine } from "/www/engine.js";

/**
 * Untimed runs first, at least 3 and at least WARM_UP_MS: V8 starts wasm in
 * its baseline compiler and swaps in optimized code for hot functions as a
 * background compile finishes. Measured with stories260K (35 ms a run): runs
 * 4-13 were 20% slower than runs 14-40, so three warm-up runs timed a mix.
 */
const WARM_UP_MS = 2000;
function warmUp(run) {
  const t0 = performance.now();
  for (let w = 0; w < 3 || performance.now() - t0 < WARM_UP_MS; w++) run();
}

/**
 * options: { pkg: "pkg" | "pkg-scalar" | "pkg-threads", threads (pkg-threads: how
 * many, loaded as the demo page loads it), checkpoint: URL, tokenizer: URL, runs, steps, quantize }
 * returns { kernels, threads, weightBytes, runs: [{ tokPerSec, msPerToken, tokens }], wasmBytes }
 */
async function bench({ pkg, threads = 1, checkpoint, tokenizer, runs = 3, steps = 256, quantize = false }) {
  let wasm, exports;
  if (pkg === "pkg-threads") {
    const engine = await loadEngine(threads);
    if (engine.threads !== threads) throw new Error(`${threads} threads asked for, got ${engine.threads}: ${engine.note}`);
    ({ pkg: wasm, wasm: exports } = engine);
  } else {
    wasm = await import(`/www/${pkg}/llama2_wasm.js`);
    exports = await wasm.default();
  }
  const tok = await readAll(await urlSource(tokenizer));
  const source = await urlSource(checkpoint);
  const bytes = await readAll(source);
  const loader = new wasm.ModelLoader(bytes.subarray(0, 256), bytes.length, quantize);
  for (let at = 0; at < bytes.length; at += 1 << 20) loader.push(bytes.subarray(at, at + (1 << 20)));
  const model = loader.finish(tok);
  loader.free();
  const results = [];
  warmUp(() => {
    model.start("", 0, 0.9, 1, steps);
    while (model.step() !== undefined);
  });
  for (let r = 0; r < runs; r++) {
    model.start("", 0, 0.9, 1, steps);
    model.step(); // the first token is not timed, as in run.c
    let tokens = 0;
    const t0 = performance.now();
    while (model.step() !== undefined) tokens++;
    const ms = performance.now() - t0;
    results.push({ tokPerSec: (tokens / ms) * 1000, msPerToken: ms / tokens, tokens });
  }
  const { kernels, weight_bytes: weightBytes } = model.config();
  model.free();
  return { kernels, threads: wasm.threads(), weightBytes, runs: results, wasmBytes: exports.memory.buffer.byteLength };
}

/**
 * candle's llama2-c (bench/candle), same protocol: greedy from BOS,
 * the same warm-up, timer from the first token. options: { checkpoint, runs, steps }
 * returns { runs: [{ tokPerSec, tokens }] }, or { error } when it is not built.
 */
async function benchCandle({ checkpoint, runs = 3, steps = 256 }) {
  let candle;
  try {
    candle = await import("/bench/candle/pkg/candle_bench.js");
    await candle.default();
  } catch (e) {
    return { error: `candle is not built: ${e.message}` };
  }
  const bytes = await readAll(await urlSource(checkpoint));
  const model = new candle.CandleModel(bytes);
  warmUp(() => model.greedy(steps));
  const results = [];
  for (let r = 0; r < runs; r++) {
    const [tokPerSec, tokens] = model.greedy(steps);
    results.push({ tokPerSec, tokens });
  }
  model.free();
  return { runs: results };
}

/**
 * The GPU part, in two calls so that bench/gpu.mjs can choose the token
 * count from the adapter (fewer on a software one): `benchGpuOpen` loads
 * the SIMD build and the checkpoint and turns the WebGPU backend on;
 * `benchGpuRun` times generation on both backends of that one model.
 * options: { checkpoint, tokenizer }
 * returns { adapter: model.gpuAdapter, setupMs (useGpu: kernels + weight upload) },
 * or { error } with useGpu's message (the model stays loaded, on the CPU).
 */
let gpuModel = null;
async function benchGpuOpen({ checkpoint, tokenizer }) {
  const wasm = await import("/www/pkg/llama2_wasm.js");
  await wasm.default();
  const tok = await readAll(await urlSource(tokenizer));
  const bytes = await readAll(await urlSource(checkpoint));
  const loader = new wasm.ModelLoader(bytes.subarray(0, 256), bytes.length, false);
  for (let at = 0; at < bytes.length; at += 1 << 20) loader.push(bytes.subarray(at, at + (1 << 20)));
  gpuModel = loader.finish(tok);
  loader.free();
  const t0 = performance.now();
  try {
    await gpuModel.useGpu();
  } catch (e) {
    return { error: String(e?.message ?? e) };
  }
  return { adapter: gpuModel.gpuAdapter, setupMs: performance.now() - t0, backend: gpuModel.backend };
}

/**
 * Greedy generation of `steps` positions from BOS, timed after the first
 * token as the other rows are: `step()` (the CPU, SIMD128, one thread) and
 * `stepAsync()` (WebGPU) on the same model, alternating run by run so that
 * drift on a busy machine hits both alike. The CPU is warmed up as bench()
 * does; the GPU gets one untimed generation of `gpuWarmUp` positions
 * (pipelines and buffers are made by useGpu, but the first submissions
 * still pay for the driver's lazy work). The tokens of each run are kept
 * for the CPU/GPU comparison.
 * options: { runs, steps, gpuWarmUp }
 * returns { cpu: [{ tokPerSec, msPerToken, tokens }], gpu: [...], cpuTokens: [[ids]], gpuTokens: [[ids]] },
 * with `error` (and the runs so far) when stepAsync rejects.
 */
async function benchGpuRun({ runs = 3, steps = 256, gpuWarmUp = 8 }) {
  const model = gpuModel;
  const out = { cpu: [], gpu: [], cpuTokens: [], gpuTokens: [] };
  const cpuRun = () => {
    model.start("", 0, 0.9, 1, steps);
    model.step(); // the first token is not timed, as in run.c
    let tokens = 0;
    const t0 = performance.now();
    while (model.step() !== undefined) tokens++;
    return [tokens, performance.now() - t0];
  };
  const gpuRun = async (n) => {
    model.start("", 0, 0.9, 1, n);
    await model.stepAsync();
    let tokens = 0;
    const t0 = performance.now();
    while ((await model.stepAsync()) !== undefined) tokens++;
    return [tokens, performance.now() - t0];
  };
  const result = ([tokens, ms]) => ({ tokPerSec: (tokens / ms) * 1000, msPerToken: ms / tokens, tokens });
  try {
    warmUp(cpuRun);
    await gpuRun(Math.min(gpuWarmUp, steps));
    for (let r = 0; r < runs; r++) {
      out.cpu.push(result(cpuRun()));
      out.cpuTokens.push(Array.from(model.tokens()));
      out.gpu.push(result(await gpuRun(steps)));
      out.gpuTokens.push(Array.from(model.tokens()));
    }
  } catch (e) {
    out.error = String(e?.message ?? e);
  }
  model.useCpu(); // give the GPU memory back before the page closes
  model.free();
  gpuModel = null;
  return out;
}

window.bench = bench;
window.benchCandle = benchCandle;
window.benchGpuOpen = benchGpuOpen;
window.benchGpuRun = benchGpuRun;
window.benchReady = true;

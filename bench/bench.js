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

window.bench = bench;
window.benchCandle = benchCandle;
window.benchReady = true;

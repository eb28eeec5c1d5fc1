// The benchmark's tables, printed from run.mjs's measurements.
import { REF, RUNS, THREADS } from "./common.mjs";

const fmt = (x, d = 0) => x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
const range = (s, d = 0) => `${fmt(s.median, d)} (${fmt(s.min, d)}–${fmt(s.max, d)})`;
const mb = (b) => `${fmt(b / 1e6, b < 1e7 ? 1 : 0)} MB`;

/** Print the speed, ratio, ceiling, weight stream, page, inspector, memory and GPU tables. */
export function printReport({ rows, ceiling, kernelFlag, overhead, inspector, memory, gpu }) {
  const cell = (s) => (s ? range(s) : "–");
  const x = (r) => (r == null ? "–" : `${fmt(r, 2)}×`);
  const cliLabel = kernelFlag ? "simd" : "(no -k)";
  if (rows.length) {
    console.log(`\nGreedy, 256 tokens from an empty prompt, decode tokens/s: median (min–max) of ${RUNS} runs. ` +
      `llama2.c is run.c (${REF.fp32.build}) on the fp32 rows and runq.c (${REF.q80.build}) on the Q8_0 rows, ` +
      `one thread; wasm runs in headless Chromium.`);
    console.log(`| model | weights read per token | llama2.c | CLI simd | CLI scalar | CLI -j ${THREADS} | wasm SIMD | ms/token | ` +
      `wasm SIMD ×${THREADS} | wasm scalar | candle wasm |`);
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const r of rows) {
      console.log(`| ${r.model} | ${mb(r.streamBytes)} | ${cell(r.reference)} | ${cell(r.cliSimd)} | ${cell(r.cliScalar)} | ` +
        `${cell(r.cliThreads)} | ${cell(r.simd)} | ${r.simd ? fmt(r.simd.msPerToken, 2) : "–"} | ${cell(r.simdThreads)} | ` +
        `${cell(r.scalar)} | ${cell(r.candle)} |`);
    }
    console.log(`\nRatios of medians (CLI = the CLI ${cliLabel}, one thread; wasm = wasm SIMD, one thread, unless ×${THREADS})`);
    console.log(`| model | CLI / llama2.c | CLI -j ${THREADS} / -j 1 | CLI simd / scalar | wasm / llama2.c | wasm / CLI | ` +
      `wasm SIMD / scalar | wasm ×${THREADS} / ×1 | wasm ×${THREADS} / llama2.c | wasm / candle |`);
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const r of rows) {
      const q = r.ratios;
      console.log(`| ${r.model} | ${x(q.cliVsReference)} | ${x(q.cliThreadsVsOne)} | ${x(q.cliSimdVsScalar)} | ` +
        `${x(q.wasmVsReference)} | ${x(q.wasmVsCli)} | ${x(q.wasmSimdVsScalar)} | ${x(q.wasmThreadsVsOne)} | ` +
        `${x(q.wasmThreadsVsReference)} | ${x(q.wasmVsCandle)} |`);
    }
  }
  if (ceiling) {
    const c = (k) => `${fmt(ceiling[k].median, 1)} GB/s`;
    console.log(`\nMemory ceiling, native C (run.c's matmul over 438 MB, median of 5): 128-bit SSE ${c("sse1")} on one thread, ` +
      `${c(`sse${THREADS}`)} on ${THREADS}; -march=native ${c("native1")} / ${c(`native${THREADS}`)}`);
  }
  if (rows.length) {
    console.log(`\nWeight stream: bytes of weights read per token × tokens/s` +
      (ceiling ? `, and its share of the faster ceiling at the same thread count (stories260K's 1 MB stays in cache)` : ""));
    console.log(`| model | llama2.c | CLI simd | CLI scalar | CLI -j ${THREADS} | wasm SIMD | wasm SIMD ×${THREADS} | wasm scalar | candle wasm |`);
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    const gbs = (st) => (st ? `${fmt(st.GBs, 1)} GB/s` + (st.share != null ? ` (${fmt(100 * st.share)}%)` : "") : "–");
    for (const r of rows) {
      const st = r.stream;
      console.log(`| ${r.model} | ${gbs(st.reference)} | ${gbs(st.cliSimd)} | ${gbs(st.cliScalar)} | ${gbs(st.cliThreads)} | ` +
        `${gbs(st.simd)} | ${gbs(st.simdThreads)} | ${gbs(st.scalar)} | ${gbs(st.candle)} |`);
    }
  }
  for (const q of rows.filter((r) => r.format === "Q8_0")) {
    const f = rows.find((r) => r.key === q.key && r.format === "fp32");
    if (!f) continue;
    const parts = [[q.reference, f.reference, "llama2.c (runq.c / run.c)"], [q.cliSimd ?? q.cliScalar, f.cliSimd ?? f.cliScalar, "CLI"],
      [q.simd, f.simd, "Chromium"], [q.simdThreads, f.simdThreads, `Chromium ×${THREADS}`]]
      .filter(([a, b]) => a && b).map(([a, b, what]) => `${what} ${fmt(a.median / b.median, 2)}×`);
    console.log(`${q.key}: Q8_0 / fp32 speed: ${parts.join(", ")}; weights read per token ${fmt(q.streamBytes / f.streamBytes, 2)}×`);
  }
  if (overhead) console.log(`\ndemo page (${overhead.model}, ${overhead.threads} thread(s)): live ${range(overhead.page, 1)} tok/s vs raw step() loop in the same ` +
    `page ${range(overhead.raw, 1)}: ${fmt(overhead.ratio * 100, 1)}% of raw`);
  if (inspector.length) {
    console.log(`\nInspector closed vs open, tokens/s: median (min–max) of ${RUNS} alternating runs`);
    console.log("| model | raw step(), closed | raw step(), recording | recording / closed | page, closed | page, inspector open | open / closed |");
    console.log("| --- | --- | --- | --- | --- | --- | --- |");
    for (const r of inspector) {
      console.log(`| ${r.model} | ${range(r.rawClosed, 1)} | ${range(r.rawOpen, 1)} | ${fmt(r.rawRatio * 100, 1)}% | ` +
        `${range(r.pageClosed, 1)} | ${range(r.pageOpen, 1)} | ${fmt(r.pageRatio * 100, 1)}% |`);
    }
  }
  if (memory) {
    console.log(`page memory (${memory.model}): renderer peak ${mb(memory.loadedPeak)}, ${mb(memory.baselinePeak)} before ` +
      `loading it: +${mb(memory.pageBytes)} for a ${mb(memory.fileBytes)} checkpoint + ${mb(memory.kvBytes)} KV cache ` +
      `(budget 1.15 × file + KV = ${mb(memory.budget)}); wasm memory ${mb(memory.wasmBytes)}`);
  }
  if (gpu) printGpu(gpu);
}

export const SOFTWARE_LABEL = "software (SwiftShader): not GPU speed";

/** The GPU part: WebGPU's stepAsync() against the SIMD build's step(), same model, same page. */
function printGpu({ browser, version, rows }) {
  // a software adapter runs at a few tok/s: decimals where the numbers are small
  const num = (v) => fmt(v, v < 10 ? 2 : v < 100 ? 1 : 0);
  const span = (s) => `${num(s.median)} (${num(s.min)}–${num(s.max)})`;
  const software = rows.some((r) => r.software);
  const counts = [...new Set(rows.filter((r) => r.steps).map((r) => `${r.steps}${r.software ? " (software adapter)" : ""}`))];
  const runs = [...new Set(rows.filter((r) => r.runs).map((r) => `${r.runs}${r.software ? " (software adapter)" : ""}`))];
  console.log(`
WebGPU backend (stepAsync: forward pass on the GPU, sampling on the CPU) vs the SIMD build's step() ` +
    `on one thread, the same model in the same page of ${version}: greedy from an empty prompt, ` +
    `${counts.join(" / ") || "–"} positions per run (BENCH_GPU_TOKENS; default 256, 32 on a software adapter), ` +
    `tokens/s after the first token, median (min–max) of ${runs.join(" / ") || RUNS} alternating runs (BENCH_RUNS; one on a software adapter).`);
  if (software) console.log(`${SOFTWARE_LABEL.toUpperCase()}: the adapter is SwiftShader, Chrome's CPU emulation of a GPU; ` +
    `these rows measure the emulation. Run with BENCH_CHROME on a machine with a GPU for GPU numbers.`);
  console.log("| model | adapter | useGpu() | GPU tok/s | CPU tok/s (wasm SIMD) | GPU / CPU | tokens identical to the CPU's |");
  console.log("| --- | --- | --- | --- | --- | --- | --- |");
  for (const r of rows) {
    const a = r.adapter;
    const adapter = !a ? "–" : `${a.vendor || "?"}/${a.architecture || "?"}${r.software ? `: ${SOFTWARE_LABEL}` : ""}`;
    if (!r.gpu) {
      console.log(`| ${r.model} | ${adapter} | ${r.setupMs == null ? "failed" : `${fmt(r.setupMs)} ms`} | ` +
        `no GPU numbers: ${r.error.replaceAll("|", "\\|")} | – | – | – |`);
      continue;
    }
    let same;
    if (r.identical) same = `yes (${r.compared} tokens)`;
    else same = `no: first difference at token ${r.firstDifference} of ${r.compared}`;
    if (!r.cpuStable) same += " (the CPU's own runs differ)";
    if (r.error) same += `; stopped: ${r.error.replaceAll("|", "\\|")}`;
    console.log(`| ${r.model} | ${adapter} | ${fmt(r.setupMs)} ms | ${span(r.gpu)} | ${span(r.cpu)} | ${r.ratio < 1 ? r.ratio.toPrecision(2) : fmt(r.ratio, 2)}× | ${same} |`);
  }
  console.log(`(CPU: the same positions as the GPU, so with fewer than 256 it is faster than the speed table's ` +
    `wasm SIMD, attention being shorter. Tokens: BOS and every generated one, compared id for id; fp32 should match ` +
    `exactly, Q8_0 may part at a near tie. useGpu(): finding the adapter, compiling the kernels, uploading the weights. ` +
    `Browser: ${browser})`);
}

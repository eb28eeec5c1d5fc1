// The benchmark: `./build.sh bench` (which builds www/pkg, www/pkg-scalar and
// the native CLI first), or `cd tests && node bench/run.mjs`.
//
// For stories260K (real) and random-weight checkpoints of the 15M / 42M /
// 110M shapes: greedy generation of 256 tokens from an empty prompt, timed as
// run.c times it (after the first token), several runs each, in
//   - headless Chromium through the real Model class, SIMD128 build, one thread,
//   - the threaded SIMD128 build (www/pkg-threads) with BENCH_THREADS threads
//     (default: the machine's cores, up to 4), loaded as the demo page loads it,
//   - the same page with the scalar build (no +simd128),
//   - the native CLI (--release), one thread and BENCH_THREADS threads (-j),
//   - run.c's forward pass transcribed in C (tests/bench/runc.c, gcc -Ofast,
//     one thread; fp32 only), the speed issue's native anchor, in the same run,
//   - the memory ceiling: run.c's matmul over 438 MB in native C
//     (tests/bench/bandwidth.c), 128-bit SSE and -march=native, 1 and N threads,
//   - candle's llama2-c model built for wasm32 + SIMD128 (tests/bench/candle;
//     fp32 shapes without grouped-query attention, which candle's reader lacks),
// plus the demo page's own live tokens/s against raw step() throughput, the
// same with the inspector open (it must cost nothing closed), and the page's
// peak memory with the 110M shape loaded.
// Prints one table, writes tests/bench/out/results.json.
//
// The demo page parts (page overhead, inspector, memory) run the page as a
// user gets it: threaded when the machine has more than one core.
//
// Environment: BENCH_RUNS (default 3), BENCH_MODELS (e.g. "260K,15M"), BENCH_THREADS,
// BENCH_PARTS (default "speed,page,inspector,memory").
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve, CHROMIUM_OPTIONS } from "../static-server.mjs";
import { SHAPES, makeCheckpoint } from "./make-checkpoints.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const outDir = path.join(here, "out");
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const STEPS = 256;
const PARTS = (process.env.BENCH_PARTS ?? "speed,page,inspector,memory").split(",");
const CLI = path.join(root, "target/release/llama2");
const RUNC = path.join(root, "target/runc");
const THREADS = Number(process.env.BENCH_THREADS ?? Math.min(os.cpus().length, 4));

const ALL = ["260K", ...Object.keys(SHAPES)];
const wanted = (process.env.BENCH_MODELS ?? ALL.join(",")).split(",").map((s) => s.trim());
const models = ALL.filter((m) => wanted.includes(m)).map((m) => {
  if (m === "260K") {
    return { name: "stories260K (real)", key: m, file: path.join(root, "www/models/stories260K.bin"),
      tokenizer: path.join(root, "www/models/tok512.bin") };
  }
  return { name: `${m} shape (random)`, key: m, file: makeCheckpoint(m), tokenizer: path.join(root, "www/models/tokenizer.bin") };
});
// the same shapes as int8: Q8_0 quantized on load (export.py's rule)
for (const m of [...models]) {
  if (m.key !== "260K") models.push({ ...m, name: `${m.key} shape (random), Q8_0`, quantize: true });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const stats = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs), runs: xs });
const url = (file) => "/" + path.relative(root, file).split(path.sep).join("/");

function machine() {
  const cpu = fs.readFileSync("/proc/cpuinfo", "utf8").match(/model name\s*:\s*(.*)/)?.[1] ?? os.cpus()[0]?.model;
  let chromiumVersion = "";
  try {
    chromiumVersion = execFileSync(CHROMIUM_OPTIONS.executablePath, ["--version"],
      { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {}
  return { cpu, cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), chromium: chromiumVersion,
    node: process.version, date: new Date().toISOString() };
}

/** Native CLI: run.c's "achieved tok/s" line, RUNS times. */
function native(model, threads = 1) {
  const runs = [];
  for (let r = 0; r < RUNS; r++) {
    const args = [model.file, "-z", model.tokenizer, "-t", "0", "-s", "1", "-n", String(STEPS), "-q", model.quantize ? "1" : "0",
      "-j", String(threads)];
    const res = spawnSync(CLI, args, {
      encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
    const m = res.stderr.match(/achieved tok\/s: ([\d.]+)/);
    if (!m) throw new Error(`native CLI failed on ${model.file}: ${res.stderr}`);
    runs.push(Number(m[1]));
  }
  return stats(runs);
}

/**
 * run.c's forward pass and greedy loop transcribed in C (tests/bench/runc.c,
 * gcc -Ofast, one thread), RUNS times; null when it is not built (fp32 only).
 */
function runC(model) {
  if (!fs.existsSync(RUNC) || model.quantize) return null;
  const runs = [];
  for (let r = 0; r < RUNS; r++) {
    const res = spawnSync(RUNC, [model.file, String(STEPS)], { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
    const m = res.stderr.match(/achieved tok\/s: ([\d.]+)/);
    if (!m) throw new Error(`runc failed on ${model.file}: ${res.stderr}`);
    runs.push(Number(m[1]));
  }
  return stats(runs);
}

/**
 * The machine's memory ceiling (tests/bench/bandwidth.c): run.c's matmul over
 * 438 MB natively, built for 128-bit SSE (wasm SIMD's width) and for this
 * CPU (-march=native), with 1 and THREADS threads; null when not built.
 */
function bandwidth() {
  const res = {};
  for (const build of ["sse", "native"]) {
    const bin = path.join(root, `target/bandwidth-${build}`);
    if (!fs.existsSync(bin)) return null;
    for (const threads of [...new Set([1, THREADS])]) {
      const out = spawnSync(bin, [String(threads)], { encoding: "utf8" });
      const m = out.stdout.match(/GB\/s: ([\d.]+) \(([\d.]+)-([\d.]+)\)/);
      if (!m) throw new Error(`bandwidth-${build} failed: ${out.stderr}`);
      res[`${build}${threads}`] = { median: Number(m[1]), min: Number(m[2]), max: Number(m[3]) };
    }
  }
  return res;
}

/** The Model class in a fresh page, for one wasm build. */
async function browserRun(browser, base, pkg, model, threads = 1) {
  const page = await browser.newPage();
  try {
    await page.goto(`${base}/tests/bench/bench.html`);
    await page.waitForFunction(() => window.benchReady);
    const res = await page.evaluate((o) => window.bench(o),
      { pkg, threads, checkpoint: url(model.file), tokenizer: url(model.tokenizer), runs: RUNS, steps: STEPS,
        quantize: !!model.quantize });
    return { kernels: res.kernels, weightBytes: res.weightBytes, wasmBytes: res.wasmBytes, ...stats(res.runs.map((r) => r.tokPerSec)),
      msPerToken: median(res.runs.map((r) => r.msPerToken)) };
  } finally {
    await page.close();
  }
}

/** candle's llama2-c in a fresh page; null when it is not built. */
async function candleRun(browser, base, model) {
  const page = await browser.newPage();
  try {
    await page.goto(`${base}/tests/bench/bench.html`);
    await page.waitForFunction(() => window.benchReady);
    const res = await page.evaluate((o) => window.benchCandle(o), { checkpoint: url(model.file), runs: RUNS, steps: STEPS });
    if (res.error) {
      console.log(`\n  ${res.error}`);
      return null;
    }
    return stats(res.runs.map((r) => r.tokPerSec));
  } finally {
    await page.close();
  }
}

/** The demo page with a model dropped on it (via the file button). */
async function openDemo(browser, base, model) {
  const page = await browser.newPage();
  await page.goto(`${base}/www/`);
  await page.waitForFunction(() => document.querySelector('#card [data-field="name"]').textContent !== "–");
  if (model.key !== "260K") {
    await page.setInputFiles("#file-input", model.file);
    const name = path.basename(model.file);
    await page.waitForFunction((n) => document.querySelector('#card [data-field="name"]').textContent === n, name,
      { timeout: 120_000 });
  }
  // warm-up, as bench.js does it: at least 2 s of generation before timing
  await page.evaluate(() => {
    const t0 = performance.now();
    while (performance.now() - t0 < 2000) window.llama2Debug.rawStepsPerSecond();
  });
  return page;
}

/** A raw step() loop in the page (recording as the open inspector does when `inspect`). */
const rawSpeed = (page, inspect = false) =>
  page.evaluate(([n, i]) => window.llama2Debug.rawStepsPerSecond(n, i), [STEPS, inspect]);

/** One greedy generation with the page's Generate button; its live tokens/s. */
async function pageSpeed(page) {
  await page.fill("#prompt", "");
  await page.fill("#temperature", "0");
  await page.fill("#steps", String(STEPS));
  await page.fill("#seed", "1");
  await page.click("#generate-button");
  await page.waitForFunction(() => document.querySelector("#stop-button").disabled, null, { timeout: 300_000, polling: 500 });
  return Number(await page.locator("#stat-speed").textContent());
}

/** The demo page's own live tokens/s against a raw step() loop in the same page. */
async function demoPage(browser, base, model) {
  const page = await openDemo(browser, base, model);
  try {
    // alternate raw step() loops and page generations in the same page, so
    // drift on a noisy machine hits both alike
    const speeds = [];
    const raws = [];
    for (let r = 0; r < RUNS; r++) {
      raws.push(await rawSpeed(page));
      speeds.push(await pageSpeed(page));
    }
    return { page: stats(speeds), raw: stats(raws), threads: await page.evaluate(() => window.llama2Debug.threads()) };
  } finally {
    await page.close();
  }
}

/** Inspector closed vs open, alternating, raw step() loops and the page itself. */
async function inspectorCost(browser, base, model) {
  const page = await openDemo(browser, base, model);
  const toggle = async (open) => {
    if ((await page.getAttribute("#inspector-toggle", "aria-expanded") === "true") !== open) await page.click("#inspector-toggle");
  };
  try {
    const r = { rawClosed: [], rawOpen: [], pageClosed: [], pageOpen: [] };
    for (let i = 0; i < RUNS; i++) {
      r.rawClosed.push(await rawSpeed(page, false));
      r.rawOpen.push(await rawSpeed(page, true));
      await toggle(false);
      r.pageClosed.push(await pageSpeed(page));
      await toggle(true);
      r.pageOpen.push(await pageSpeed(page));
    }
    await toggle(false);
    const s = Object.fromEntries(Object.entries(r).map(([k, v]) => [k, stats(v)]));
    return { model: model.name, ...s, rawRatio: s.rawOpen.median / s.rawClosed.median,
      pageRatio: s.pageOpen.median / s.pageClosed.median };
  } finally {
    await page.close();
  }
}

/** PIDs of Chromium renderer processes now running. */
function rendererPids() {
  const pids = [];
  for (const pid of fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      if (fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("--type=renderer")) pids.push(Number(pid));
    } catch {}
  }
  return pids;
}

/** Peak resident memory (VmHWM) among these processes, in bytes. */
function peakOf(pids) {
  let peak = 0;
  for (const pid of pids) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
      peak = Math.max(peak, Number(status.match(/VmHWM:\s*(\d+) kB/)?.[1] ?? 0) * 1024);
    } catch {}
  }
  return peak;
}

/** Load a checkpoint on the demo page in a fresh browser; the renderer's peak memory. */
async function pageMemory(base, model) {
  const measure = async (drop) => {
    const before = new Set(rendererPids()); // the other browser's renderers are not ours
    const browser = await chromium.launch(CHROMIUM_OPTIONS);
    try {
      const page = await browser.newPage();
      await page.goto(`${base}/www/`);
      await page.waitForFunction(() => document.querySelector('#card [data-field="name"]').textContent !== "–");
      await page.click("#stop-button").catch(() => {});
      if (drop) {
        await page.setInputFiles("#file-input", model.file);
        await page.waitForFunction((n) => document.querySelector('#card [data-field="name"]').textContent === n,
          path.basename(model.file), { timeout: 300_000 });
      }
      await page.waitForTimeout(500);
      const wasmBytes = await page.evaluate(() => window.llama2Debug?.wasmMemoryBytes() ?? 0);
      return { peak: peakOf(rendererPids().filter((p) => !before.has(p))), wasmBytes };
    } finally {
      await browser.close();
    }
  };
  const baseline = await measure(false);
  const loaded = await measure(true);
  const [dim, , layers, heads, kvHeads, , seqLen] = SHAPES[model.key];
  const kvBytes = layers * seqLen * ((dim * kvHeads) / heads) * 2 * 4;
  const fileBytes = fs.statSync(model.file).size;
  return {
    model: model.name, fileBytes, kvBytes, baselinePeak: baseline.peak, loadedPeak: loaded.peak,
    pageBytes: loaded.peak - baseline.peak, wasmBytes: loaded.wasmBytes, budget: 1.15 * fileBytes + kvBytes,
  };
}

const fmt = (x, d = 0) => x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
const range = (s, d = 0) => `${fmt(s.median, d)} (${fmt(s.min, d)}–${fmt(s.max, d)})`;
const mb = (b) => `${fmt(b / 1e6)} MB`;

async function main() {
  fs.mkdirSync(outDir, { recursive: true });
  const info = machine();
  console.log(`machine: ${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB; ${info.chromium}; node ${info.node}`);
  const server = await serve(root, ["/www/", "/tests/bench/"]);
  const browser = await chromium.launch(CHROMIUM_OPTIONS);
  const rows = [];
  let ceiling = null;
  try {
    if (PARTS.includes("speed")) {
      process.stdout.write("memory ceiling (native C matmul over 438 MB)…");
      ceiling = bandwidth();
      console.log(ceiling ? " done" : " not built");
    }
    for (const model of PARTS.includes("speed") ? models : []) {
      process.stdout.write(`${model.name}: native…`);
      const nat = native(model);
      const runc = runC(model);
      if (runc) process.stdout.write(" run.c…");
      process.stdout.write(" wasm simd…");
      const simd = await browserRun(browser, server.url, "pkg", model);
      let natT = null;
      let simdT = null;
      if (THREADS > 1) {
        process.stdout.write(` native ×${THREADS}…`);
        natT = native(model, THREADS);
        process.stdout.write(` wasm simd ×${THREADS}…`);
        simdT = await browserRun(browser, server.url, "pkg-threads", model, THREADS);
      }
      process.stdout.write(" wasm scalar…");
      const scalar = await browserRun(browser, server.url, "pkg-scalar", model);
      let candle = null;
      if (!model.quantize && model.key !== "260K") {
        process.stdout.write(" candle…");
        candle = await candleRun(browser, server.url, model);
      }
      const weightBytes = simd.weightBytes;
      const best = simdT ?? simd;
      rows.push({ model: model.name, key: model.key, quantize: !!model.quantize, weightBytes, native: nat, simd, scalar,
        nativeThreads: natT, simdThreads: simdT, threads: THREADS,
        candle, runc, simdVsRunc: runc ? simd.median / runc.median : null, bestVsRunc: runc ? best.median / runc.median : null,
        simdVsScalar: simd.median / scalar.median, wasmVsNative: simd.median / nat.median,
        threadsVsOne: simdT ? simdT.median / simd.median : null,
        wasmVsNativeThreads: simdT ? simdT.median / natT.median : null,
        simdVsCandle: candle ? simd.median / candle.median : null, bestVsCandle: candle ? best.median / candle.median : null,
        simdGBs: (simd.median * weightBytes) / 1e9, bestGBs: (best.median * weightBytes) / 1e9 });
      console.log(" done");
    }
    const pageModel = models.find((m) => m.key === "15M" && !m.quantize) ?? models[0];
    let overhead = null;
    if (PARTS.includes("page")) {
      process.stdout.write(`demo page live tokens/s (${pageModel.name})…`);
      const { page, raw, threads } = await demoPage(browser, server.url, pageModel);
      overhead = { model: pageModel.name, threads, page, raw, ratio: page.median / raw.median };
      console.log(" done");
    }
    const inspector = [];
    if (PARTS.includes("inspector")) {
      for (const m of models.filter((m) => (m.key === "260K" || m.key === "15M") && !m.quantize)) {
        process.stdout.write(`inspector closed vs open (${m.name})…`);
        inspector.push(await inspectorCost(browser, server.url, m));
        console.log(" done");
      }
    }
    let memory = null;
    const memModel = models.find((m) => m.key === "110M" && !m.quantize);
    if (memModel && PARTS.includes("memory")) {
      process.stdout.write(`page memory with ${memModel.name}…`);
      memory = await pageMemory(server.url, memModel);
      console.log(" done");
    }

    console.log(`\nGreedy, 256 tokens from an empty prompt, decode tokens/s: median (min–max) of ${RUNS} runs`);
    console.log("One thread (the issue's protocol):");
    console.log("| model | weights | run.c (gcc -Ofast) | wasm SIMD (Chromium) | SIMD / run.c | ms/token | wasm scalar | SIMD / scalar | native CLI | wasm / native CLI | candle wasm | SIMD / candle | SIMD weight stream |");
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const r of rows) {
      const candle = r.candle ? `${range(r.candle)} | ${fmt(r.simdVsCandle, 2)}×` : "– | –";
      const runc = r.runc ? `${range(r.runc)}` : "–";
      console.log(`| ${r.model} | ${mb(r.weightBytes)} | ${runc} | ${range(r.simd)} | ${r.runc ? fmt(r.simdVsRunc, 2) + "×" : "–"} | ` +
        `${fmt(r.simd.msPerToken, 2)} | ${range(r.scalar)} | ${fmt(r.simdVsScalar, 2)}× | ${range(r.native)} | ${fmt(r.wasmVsNative, 2)}× | ` +
        `${candle} | ${fmt(r.simdGBs, 1)} GB/s |`);
    }
    if (rows.some((r) => r.simdThreads)) {
      console.log(`\n${THREADS} threads (the demo page's default here; candle has no threads):`);
      console.log(`| model | native CLI -j ${THREADS} | wasm SIMD ×${THREADS} (Chromium) | ms/token | ×${THREADS} / one thread | wasm / native CLI, both ×${THREADS} | SIMD ×${THREADS} / run.c (one thread) | SIMD ×${THREADS} / candle | weight stream |`);
      console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
      for (const r of rows.filter((r) => r.simdThreads)) {
        console.log(`| ${r.model} | ${range(r.nativeThreads)} | ${range(r.simdThreads)} | ${fmt(r.simdThreads.msPerToken, 2)} | ` +
          `${fmt(r.threadsVsOne, 2)}× | ${fmt(r.wasmVsNativeThreads, 2)}× | ${r.runc ? fmt(r.bestVsRunc, 2) + "×" : "–"} | ` +
          `${r.candle ? fmt(r.bestVsCandle, 2) + "×" : "–"} | ${fmt(r.bestGBs, 1)} GB/s |`);
      }
    }
    if (ceiling) {
      const c = (k) => `${fmt(ceiling[k].median, 1)} GB/s`;
      console.log(`\nMemory ceiling, native C (run.c's matmul over 438 MB, median of 5): 128-bit SSE ${c("sse1")} on one thread, ` +
        `${c(`sse${THREADS}`)} on ${THREADS}; -march=native ${c("native1")} / ${c(`native${THREADS}`)}`);
      for (const r of rows.filter((r) => !r.quantize && r.key !== "260K")) {
        console.log(`${r.model}: wasm SIMD streams ${fmt((100 * r.simdGBs) / ceiling.sse1.median)}% of C 128-bit on one thread` +
          (r.simdThreads ? `, ${fmt((100 * r.bestGBs) / ceiling[`sse${THREADS}`].median)}% on ${THREADS}` : ""));
      }
    }
    for (const q of rows.filter((r) => r.quantize)) {
      const f = rows.find((r) => r.key === q.key && !r.quantize);
      if (f) console.log(`${q.key}: Q8_0 / fp32 in Chromium ${fmt(q.simd.median / f.simd.median, 2)}×` +
        (q.simdThreads && f.simdThreads ? ` (×${THREADS} threads: ${fmt(q.simdThreads.median / f.simdThreads.median, 2)}×)` : "") +
        `, weight memory ${fmt(q.weightBytes / f.weightBytes, 2)}×`);
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
    const result = { machine: info, runs: RUNS, steps: STEPS, threads: THREADS, ceiling, rows, pageOverhead: overhead, inspector, memory };
    fs.writeFileSync(path.join(outDir, "results.json"), JSON.stringify(result, null, 2));
    console.log(`\nwritten: ${path.relative(root, path.join(outDir, "results.json"))}`);
  } finally {
    await browser.close();
    await server.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

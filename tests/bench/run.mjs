// The benchmark: `./build.sh bench` (which builds www/pkg, www/pkg-threads,
// www/pkg-scalar, candle, the native CLI, llama2.c's run.c and runq.c and the
// memory probe first), or `cd tests && node bench/run.mjs` once they are built;
// a quick run: `BENCH_RUNS=1 BENCH_MODELS=260K,15M BENCH_PARTS=speed ./build.sh bench`.
//
// For stories260K (real) and random-weight checkpoints of the 15M / 42M /
// 110M shapes, fp32 and Q8_0 (llama2.c's export version 2 files, made from the
// fp32 ones by make-checkpoints.mjs): greedy generation of 256 tokens from an
// empty prompt, timed as run.c times it (after the first token), several runs
// each, in
//   - llama2.c's own programs, one thread, built by ./build.sh bench into
//     target/ref/: run.c (`make runfast`: gcc -Ofast) on the fp32 files,
//     runq.c (gcc -Ofast -march=native) on the Q8_0 ones,
//   - the native CLI (--release) with `-k simd` and `-k scalar` on one thread
//     and with `-j BENCH_THREADS`; a CLI without -k runs its one kernel set,
//     labelled scalar,
//   - headless Chromium through the real Model class, SIMD128 build, one thread,
//   - the threaded SIMD128 build (www/pkg-threads) with BENCH_THREADS threads
//     (default: the machine's cores, up to 4), loaded as the demo page loads it,
//   - the same page with the scalar build (no +simd128),
//   - the memory ceiling: run.c's matmul over 438 MB in native C
//     (tests/bench/bandwidth.c), 128-bit SSE and -march=native, 1 and N
//     threads; each engine's weight stream (bytes of weights read per token ×
//     tokens/s) is shown as a share of it,
//   - candle's llama2-c model built for wasm32 + SIMD128 (tests/bench/candle;
//     fp32 shapes without grouped-query attention, which candle's reader lacks),
// plus the demo page's own live tokens/s against raw step() throughput, the
// same with the inspector open (it must cost nothing closed), and the page's
// peak memory with the 110M shape loaded.
// Prints a speed table, a ratio table and a weight stream table, writes
// tests/bench/out/results.json. Without a browser (no Chromium) only the
// native engines run.
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
import { SHAPES, makeCheckpoint, makeQ80Checkpoint } from "./make-checkpoints.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const outDir = path.join(here, "out");
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const STEPS = 256;
const PARTS = (process.env.BENCH_PARTS ?? "speed,page,inspector,memory").split(",");
const CLI = path.join(root, "target/release/llama2");
// llama2.c's programs (./build.sh's build_runc)
const REF = { fp32: { name: "run.c", bin: path.join(root, "target/ref/run"), build: "gcc -Ofast" },
  q80: { name: "runq.c", bin: path.join(root, "target/ref/runq"), build: "gcc -Ofast -march=native" } };
const THREADS = Number(process.env.BENCH_THREADS ?? Math.min(os.cpus().length, 4));

const ALL = ["260K", ...Object.keys(SHAPES)];
const wanted = (process.env.BENCH_MODELS ?? ALL.join(",")).split(",").map((s) => s.trim());
const models = ALL.filter((m) => wanted.includes(m)).map((m) => {
  if (m === "260K") {
    return { name: "stories260K (real)", key: m, q80: false, file: path.join(root, "www/models/stories260K.bin"),
      tokenizer: path.join(root, "www/models/tok512.bin") };
  }
  return { name: `${m} shape (random)`, key: m, q80: false, file: makeCheckpoint(m),
    tokenizer: path.join(root, "www/models/tokenizer.bin") };
});
// the same shapes as int8: Q8_0 files in llama2.c's export version 2, the same
// weights `llama2 -q 1` quantizes on load (make-checkpoints.mjs), loaded as they are
for (const m of [...models]) {
  if (m.key !== "260K") models.push({ ...m, name: `${m.key} shape (random), Q8_0`, q80: true, file: makeQ80Checkpoint(m.key) });
}

/**
 * Bytes of weights a forward pass reads per token: every weight once (the
 * shared classifier is the embedding table), i.e. the file's weights without
 * its header and, in the legacy format, the unused freq_cis block.
 */
function streamBytes(file) {
  const head = Buffer.alloc(28);
  const fd = fs.openSync(file, "r");
  fs.readSync(fd, head, 0, 28, 0);
  fs.closeSync(fd);
  const size = fs.statSync(file).size;
  if (head.readUInt32LE(0) === 0x616b3432) return size - 256;
  const [dim, , , heads, , , seqLen] = [0, 1, 2, 3, 4, 5, 6].map((i) => head.readInt32LE(4 * i));
  return size - 28 - 4 * seqLen * (dim / heads);
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

/** RUNS runs of a native program; the "achieved tok/s" lines of its stderr. */
function timeNative(bin, args, what) {
  const runs = [];
  for (let r = 0; r < RUNS; r++) {
    const res = spawnSync(bin, args, { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
    const m = res.stderr?.match(/achieved tok\/s: ([\d.]+)/);
    if (res.status !== 0 || !m) throw new Error(`${what} failed: ${bin} ${args.join(" ")}\n${res.stderr ?? res.error}`);
    runs.push(Number(m[1]));
  }
  return stats(runs);
}

/** Whether this CLI has `-k simd|scalar` (an older one rejects the flag). */
function cliHasKernelFlag(model) {
  const res = spawnSync(CLI, [model.file, "-z", model.tokenizer, "-t", "0", "-n", "2", "-i", "", "-k", "scalar"],
    { encoding: "utf8", stdio: ["ignore", "ignore", "pipe"] });
  if (res.status === 0) return true;
  if (/unknown option -k/.test(res.stderr ?? "")) return false;
  throw new Error(`native CLI failed on ${model.file}: ${res.stderr ?? res.error}`);
}

/** The native CLI, greedy from an empty prompt: `kernel` null runs it without -k. */
const native = (model, { threads = 1, kernel = null } = {}) =>
  timeNative(CLI, [model.file, "-z", model.tokenizer, "-t", "0", "-s", "1", "-n", String(STEPS), "-i", "",
    "-j", String(threads), ...(kernel ? ["-k", kernel] : [])], "native CLI");

/**
 * llama2.c's own program for the file, one thread: run.c on fp32, runq.c on
 * Q8_0 (invoked as `run model.bin -z tokenizer.bin -n 256 -t 0 -i ""`); null
 * when it is not built.
 */
function reference(model) {
  const ref = REF[model.q80 ? "q80" : "fp32"];
  if (!fs.existsSync(ref.bin)) return null;
  const s = timeNative(ref.bin, [model.file, "-z", model.tokenizer, "-t", "0", "-s", "1", "-n", String(STEPS), "-i", ""],
    ref.name);
  return { program: ref.name, build: ref.build, ...s };
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
      { pkg, threads, checkpoint: url(model.file), tokenizer: url(model.tokenizer), runs: RUNS, steps: STEPS });
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
const mb = (b) => `${fmt(b / 1e6, b < 1e7 ? 1 : 0)} MB`;

async function main() {
  fs.mkdirSync(outDir, { recursive: true });
  const info = machine();
  console.log(`machine: ${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB; ${info.chromium}; node ${info.node}`);
  const server = await serve(root, ["/www/", "/tests/bench/"]);
  const browser = await chromium.launch(CHROMIUM_OPTIONS).catch((e) => {
    console.log(`no browser (${e.message.split("\n")[0]}): the native engines only`);
    return null;
  });
  const rows = [];
  let ceiling = null;
  let kernelFlag = null;
  try {
    if (PARTS.includes("speed")) {
      process.stdout.write("memory ceiling (native C matmul over 438 MB)…");
      ceiling = bandwidth();
      console.log(ceiling ? " done" : " not built");
      if (models.length) kernelFlag = cliHasKernelFlag(models[0]);
      if (!kernelFlag) console.log("this CLI has no -k flag: its one kernel set runs without it, labelled scalar");
    }
    for (const model of PARTS.includes("speed") ? models : []) {
      const ref = REF[model.q80 ? "q80" : "fp32"].name;
      process.stdout.write(`${model.name}: ${ref}…`);
      const refc = reference(model);
      let cliSimd = null;
      if (kernelFlag) {
        process.stdout.write(" CLI simd…");
        cliSimd = native(model, { kernel: "simd" });
      }
      process.stdout.write(" CLI scalar…");
      const cliScalar = native(model, { kernel: kernelFlag ? "scalar" : null });
      const cli = cliSimd ?? cliScalar; // the CLI's default kernels
      let cliT = null;
      if (THREADS > 1) {
        process.stdout.write(` CLI -j ${THREADS}…`);
        cliT = native(model, { threads: THREADS, kernel: kernelFlag ? "simd" : null });
      }
      let simd = null;
      let simdT = null;
      let scalar = null;
      let candle = null;
      if (browser) {
        process.stdout.write(" wasm simd…");
        simd = await browserRun(browser, server.url, "pkg", model);
        if (THREADS > 1) {
          process.stdout.write(` wasm simd ×${THREADS}…`);
          simdT = await browserRun(browser, server.url, "pkg-threads", model, THREADS);
        }
        process.stdout.write(" wasm scalar…");
        scalar = await browserRun(browser, server.url, "pkg-scalar", model);
        if (!model.q80 && model.key !== "260K") {
          process.stdout.write(" candle…");
          candle = await candleRun(browser, server.url, model);
        }
      }
      const ratio = (a, b) => (a && b ? a.median / b.median : null);
      const bytes = streamBytes(model.file);
      // weight stream: GB/s, and its share of the ceiling at the same thread count
      // (the faster of the 128-bit and -march=native builds)
      const ceil = (threads) => ceiling && Math.max(ceiling[`sse${threads}`].median, ceiling[`native${threads}`].median);
      const stream = (s, threads = 1) => s && { GBs: (s.median * bytes) / 1e9, share: ceiling ? (s.median * bytes) / 1e9 / ceil(threads) : null };
      rows.push({ model: model.name, key: model.key, format: model.q80 ? "Q8_0" : "fp32", file: path.relative(root, model.file),
        streamBytes: bytes, weightBytes: simd?.weightBytes ?? null, threads: THREADS, kernelFlag,
        reference: refc, cliSimd, cliScalar, cliThreads: cliT, simd, simdThreads: simdT, scalar, candle,
        ratios: {
          cliVsReference: ratio(cli, refc), cliThreadsVsOne: ratio(cliT, cli), cliSimdVsScalar: ratio(cliSimd, cliScalar),
          wasmVsReference: ratio(simd, refc), wasmVsCli: ratio(simd, cli), wasmSimdVsScalar: ratio(simd, scalar),
          wasmThreadsVsOne: ratio(simdT, simd), wasmThreadsVsReference: ratio(simdT, refc), wasmVsCandle: ratio(simd, candle),
        },
        stream: { reference: stream(refc), cliSimd: stream(cliSimd), cliScalar: stream(cliScalar), cliThreads: stream(cliT, THREADS),
          simd: stream(simd), simdThreads: stream(simdT, THREADS), scalar: stream(scalar), candle: stream(candle) } });
      console.log(" done");
    }
    const pageModel = models.find((m) => m.key === "15M" && !m.q80) ?? models[0];
    let overhead = null;
    if (PARTS.includes("page") && browser) {
      process.stdout.write(`demo page live tokens/s (${pageModel.name})…`);
      const { page, raw, threads } = await demoPage(browser, server.url, pageModel);
      overhead = { model: pageModel.name, threads, page, raw, ratio: page.median / raw.median };
      console.log(" done");
    }
    const inspector = [];
    if (PARTS.includes("inspector") && browser) {
      for (const m of models.filter((m) => (m.key === "260K" || m.key === "15M") && !m.q80)) {
        process.stdout.write(`inspector closed vs open (${m.name})…`);
        inspector.push(await inspectorCost(browser, server.url, m));
        console.log(" done");
      }
    }
    let memory = null;
    const memModel = models.find((m) => m.key === "110M" && !m.q80);
    if (memModel && PARTS.includes("memory") && browser) {
      process.stdout.write(`page memory with ${memModel.name}…`);
      memory = await pageMemory(server.url, memModel);
      console.log(" done");
    }

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
    const result = { machine: info, runs: RUNS, steps: STEPS, threads: THREADS, ceiling, kernelFlag, rows, pageOverhead: overhead,
      inspector, memory };
    fs.writeFileSync(path.join(outDir, "results.json"), JSON.stringify(result, null, 2));
    console.log(`\nwritten: ${path.relative(root, path.join(outDir, "results.json"))}`);
  } finally {
    await browser?.close();
    await server.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

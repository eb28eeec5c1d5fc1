// The benchmark: `./build.sh bench` (which builds www/pkg, www/pkg-threads,
// www/pkg-scalar, candle, the native CLI, llama2.c's run.c and runq.c and the
// memory probe first), or `node bench/run.mjs` once they are built;
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
//     (bench/bandwidth.c), 128-bit SSE and -march=native, 1 and N
//     threads; each engine's weight stream (bytes of weights read per token ×
//     tokens/s) is shown as a share of it,
//   - candle's llama2-c model built for wasm32 + SIMD128 (bench/candle;
//     fp32 shapes without grouped-query attention, which candle's reader lacks),
// plus the demo page's own live tokens/s against raw step() throughput, the
// same with the inspector open (it must cost nothing closed), the page's
// peak memory with the 110M shape loaded, and the WebGPU backend
// (stepAsync) against the SIMD build's step() in the same page, each model
// (bench/gpu.mjs: its own browser; without a GPU, Chromium's software
// adapter, SwiftShader, whose numbers are not GPU speed).
// Prints a speed table, a ratio table, a weight stream table and a GPU table, writes
// bench/out/results.json. Without a browser (no Chromium) only the
// native engines run.
//
// The demo page parts (page overhead, inspector, memory) run the page as a
// user gets it: threaded when the machine has more than one core.
//
// Environment: BENCH_RUNS (default 3), BENCH_MODELS (e.g. "260K,15M"), BENCH_THREADS,
// BENCH_PARTS (default "speed,page,inspector,memory,gpu"); for the GPU part
// BENCH_GPU_TOKENS, BENCH_CHROME, BENCH_HEADFUL, BENCH_GPU_ARGS (bench/gpu.mjs).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { serve } from "../serve.mjs";
import { CHROMIUM_OPTIONS } from "../tests/e2e/harness.mjs";
import { browserRun, candleRun, demoPage, inspectorCost, pageMemory } from "./browser.mjs";
import { REF, RUNS, STEPS, THREADS, root } from "./common.mjs";
import { gpuLaunchOptions, gpuRun, launchGpuBrowser } from "./gpu.mjs";
import { SHAPES, makeCheckpoint, makeQ80Checkpoint } from "./make-checkpoints.mjs";
import { bandwidth, cliHasKernelFlag, native, reference, streamBytes } from "./native.mjs";
import { printReport } from "./report.mjs";

const outDir = path.join(root, "bench/out");
const PARTS = (process.env.BENCH_PARTS ?? "speed,page,inspector,memory,gpu").split(",");

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

async function main() {
  fs.mkdirSync(outDir, { recursive: true });
  const info = machine();
  console.log(`machine: ${info.cpu}, ${info.cores} cores, ${info.memoryGiB} GiB; ${info.chromium}; node ${info.node}`);
  const server = await serve(root, ["/www/", "/bench/"]);
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
    // last, in a browser of its own (the GPU allowed, WebGPU on): the other
    // parts' numbers stay those of the bench's usual Chromium
    let gpu = null;
    if (PARTS.includes("gpu")) {
      const gpuBrowser = await launchGpuBrowser();
      if (gpuBrowser) {
        try {
          gpu = { browser: gpuLaunchOptions().describe,
            version: `${path.basename(gpuLaunchOptions().options.executablePath)} ${gpuBrowser.version()}`, rows: [] };
          for (const model of models) {
            process.stdout.write(`WebGPU vs CPU (${model.name})…`);
            const r = await gpuRun(gpuBrowser, server.url, model);
            gpu.rows.push(r);
            console.log(r.error ? ` ${r.gpu ? "stopped" : "no GPU"}: ${r.error}` : " done");
          }
        } finally {
          await gpuBrowser.close();
        }
      }
    }
    printReport({ rows, ceiling, kernelFlag, overhead, inspector, memory, gpu });
    const result = { machine: info, runs: RUNS, steps: STEPS, threads: THREADS, ceiling, kernelFlag, rows, pageOverhead: overhead,
      inspector, memory, gpu };
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

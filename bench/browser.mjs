// The benchmark's browser parts: the Model class in bench.html (each wasm
// build, and candle), and the demo page itself (live speed, the inspector's
// cost, peak memory).
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM_OPTIONS } from "../tests/e2e/harness.mjs";
import { RUNS, STEPS, median, stats, url } from "./common.mjs";
import { SHAPES } from "./make-checkpoints.mjs";

/** The Model class in a fresh page, for one wasm build. */
export async function browserRun(browser, base, pkg, model, threads = 1) {
  const page = await browser.newPage();
  try {
    await page.goto(`${base}/bench/bench.html`);
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
export async function candleRun(browser, base, model) {
  const page = await browser.newPage();
  try {
    await page.goto(`${base}/bench/bench.html`);
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
export async function demoPage(browser, base, model) {
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
export async function inspectorCost(browser, base, model) {
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
export async function pageMemory(base, model) {
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

// The benchmark's GPU part: the WebGPU backend (`useGpu()`, `stepAsync()`)
// against the SIMD build's `step()` on one thread, the same model in the
// same page (bench.html's benchGpuOpen / benchGpuRun).
//
// Its own browser, because the other parts run Chromium with --disable-gpu:
//   - by default the bench's headless Chromium (CHROMIUM_OPTIONS) plus
//     --enable-unsafe-webgpu, which gives WebGPU a software adapter
//     (SwiftShader: "google" / "swiftshader") on a machine without a GPU;
//     its numbers say how fast a CPU emulates a GPU, not how fast a GPU is;
//   - BENCH_CHROME=/path/to/chrome: that browser with the GPU allowed (no
//     --disable-gpu), WebGPU switched on with --enable-unsafe-webgpu, and on
//     Linux Vulkan (--enable-features=Vulkan), where Chrome's WebGPU runs;
//     BENCH_HEADFUL=1 opens a window instead of running headless (headless
//     Chrome may be given the software adapter where a window gets the GPU);
//     BENCH_GPU_ARGS adds flags (space-separated).
// BENCH_GPU_TOKENS: positions generated per run (default 256 on a hardware
// adapter, 32 on a software one, where a 110M token takes 2-3.5 s on this
// 2-core machine). On a software adapter one timed run instead of
// BENCH_RUNS: its numbers are not the point (they are not GPU speed), the
// token comparison and the path working are; 32 positions of the 110M shapes
// fp32 and Q8_0 still take ~3 minutes.
import os from "node:os";
import { chromium } from "playwright-core";
import { CHROMIUM_OPTIONS } from "../tests/e2e/harness.mjs";
import { RUNS, STEPS, median, stats, url } from "./common.mjs";

const SOFTWARE_TOKENS = 32;
const GPU_TOKENS = process.env.BENCH_GPU_TOKENS ? Number(process.env.BENCH_GPU_TOKENS) : null;

/** A software adapter: SwiftShader (Chrome's CPU implementation of Vulkan). */
export const isSoftware = (a) =>
  a?.architecture === "swiftshader" || (a?.vendor === "google" && /swiftshader/i.test(`${a.device} ${a.description}`));

/** The GPU part's launch options and a line describing them. */
export function gpuLaunchOptions() {
  const extra = (process.env.BENCH_GPU_ARGS ?? "").split(/\s+/).filter(Boolean);
  const headful = process.env.BENCH_HEADFUL === "1";
  if (!process.env.BENCH_CHROME) {
    const args = [...CHROMIUM_OPTIONS.args.filter((a) => !headful || a !== "--headless"), "--enable-unsafe-webgpu", ...extra];
    return { options: { ...CHROMIUM_OPTIONS, args, headless: !headful },
      describe: `${CHROMIUM_OPTIONS.executablePath} ${args.join(" ")}` };
  }
  const args = ["--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-unsafe-webgpu"];
  // playwright passes its own --enable-features (one feature, in 1.64);
  // Chrome reads only the last one given, so ours would drop it or it ours:
  // one flag with both, playwright's left out
  const features = new Set(os.platform() === "linux" ? ["Vulkan"] : []);
  for (const a of extra) {
    if (a.startsWith("--enable-features=")) a.slice(18).split(",").forEach((f) => features.add(f));
    else args.push(a);
  }
  const options = { executablePath: process.env.BENCH_CHROME, headless: !headful, args };
  if (features.size) {
    const theirs = "--enable-features=CDPScreenshotNewSurface";
    features.add(theirs.slice(18));
    args.push(`--enable-features=${[...features].join(",")}`);
    options.ignoreDefaultArgs = [theirs];
  }
  return { options, describe: `${process.env.BENCH_CHROME}${headful ? " (window)" : " (headless)"} ${args.join(" ")}` };
}

/** Launch the GPU part's browser; null (and why, printed) when it does not start. */
export async function launchGpuBrowser() {
  const { options, describe } = gpuLaunchOptions();
  console.log(`GPU part's browser: ${describe}`);
  try {
    return await chromium.launch(options);
  } catch (e) {
    console.log(`  it did not start (${e.message.split("\n")[0]}): no GPU part`);
    return null;
  }
}

/** The index of the first token where `a` and `b` differ (-1: none; a length difference counts). */
function firstDifference(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
}

/**
 * One model on both backends in a fresh page. Returns { model, format,
 * adapter, software, setupMs, steps, gpu, cpu (stats of tok/s), ratio,
 * identical, firstDifference, compared }, or { model, format, error }
 * when useGpu (or a stepAsync) rejects: the error is the row.
 */
export async function gpuRun(browser, base, model) {
  const row = { model: model.name, key: model.key, format: model.q80 ? "Q8_0" : "fp32" };
  const page = await browser.newPage();
  try {
    await page.goto(`${base}/bench/bench.html`);
    await page.waitForFunction(() => window.benchReady);
    const open = await page.evaluate((o) => window.benchGpuOpen(o),
      { checkpoint: url(model.file), tokenizer: url(model.tokenizer) });
    if (open.error) return { ...row, error: open.error };
    const software = isSoftware(open.adapter);
    const steps = GPU_TOKENS ?? (software ? SOFTWARE_TOKENS : STEPS);
    const runs = software ? 1 : RUNS;
    Object.assign(row, { adapter: open.adapter, software, setupMs: open.setupMs, steps, runs });
    const res = await page.evaluate((o) => window.benchGpuRun(o), { runs, steps, gpuWarmUp: software ? 2 : 16 });
    if (res.error) row.error = res.error;
    if (!res.gpu.length) return row;
    const gpu = { ...stats(res.gpu.map((r) => r.tokPerSec)), msPerToken: median(res.gpu.map((r) => r.msPerToken)) };
    const cpu = { ...stats(res.cpu.map((r) => r.tokPerSec)), msPerToken: median(res.cpu.map((r) => r.msPerToken)) };
    // greedy: each GPU run against the CPU's run before it (token ids, BOS first)
    const diffs = res.gpuTokens.map((t, i) => firstDifference(t, res.cpuTokens[i])).filter((d) => d >= 0);
    // the CPU's own runs must agree, else a difference says nothing about the GPU
    const cpuStable = res.cpuTokens.every((t) => firstDifference(t, res.cpuTokens[0]) < 0);
    return { ...row, gpu, cpu, ratio: gpu.median / cpu.median, tokens: res.gpu[0].tokens,
      identical: diffs.length === 0, firstDifference: diffs.length ? Math.min(...diffs) : null, cpuStable,
      compared: res.gpuTokens[0].length };
  } catch (e) {
    return { ...row, error: e.message.split("\n")[0] };
  } finally {
    await page.close();
  }
}

// The page tests' harness: Chromium as they (and the benchmark) launch it,
// the page opened on the static server (../../serve.mjs), run.c's golden
// cases, and a random checkpoint dropped on the page. Not a test file itself
// (`node --test e2e/` runs only *.test.js).
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { serve } from "../../serve.mjs";

/** Chromium as the page tests and the bench run it: Debian's, headless, no network chatter. */
export const CHROMIUM_OPTIONS = {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync"],
};

/** Chromium's flag for WebGPU on Linux: a software adapter (SwiftShader) here, where there is no GPU. */
export const WEBGPU_ARGS = ["--enable-unsafe-webgpu"];

/**
 * The page tests' setup: serve `www`, launch Chromium (with `args` added),
 * open the page (`search`: its query string) and collect uncaught page
 * errors. Returns { server, browser, page, pageErrors }.
 */
export async function openPage(www, viewport, { args = [], search = "" } = {}) {
  const server = await serve(www);
  const browser = await chromium.launch({ ...CHROMIUM_OPTIONS, args: [...CHROMIUM_OPTIONS.args, ...args] });
  const page = await browser.newPage({ viewport });
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e));
  await page.goto(server.url + "/" + search);
  return { server, browser, page, pageErrors };
}

/**
 * openPage, then wait until the default model is loaded and the story it
 * starts telling by itself has ended: the page as a person finds it.
 */
export async function openReadyPage(www, viewport, options) {
  const opened = await openPage(www, viewport, options);
  await opened.page.waitForFunction(() => !document.querySelector("#generate-button").disabled, null, { timeout: 30_000 });
  await opened.page.waitForFunction(() => document.querySelector("#stop-button").disabled, null, { timeout: 60_000 });
  return opened;
}

/**
 * Start a golden case's generation through the page's controls and
 * Generate button (stopping the page's own story first), not waiting for it.
 */
export async function startThroughPage(page, c) {
  await page.evaluate(() => document.querySelector("#stop-button:enabled")?.click());
  await page.fill("#prompt", c.prompt);
  await page.fill("#temperature", String(c.temperature));
  await page.fill("#topp", String(c.topp));
  await page.fill("#steps", String(c.steps));
  await page.fill("#seed", String(c.seed));
  await page.click("#generate-button");
}

/**
 * Run a golden case's generation through the page's controls (startThroughPage);
 * resolves to the page's text. (120 s: on the GPU backend's software adapter
 * a 256-token case takes 25-45 s.)
 */
export async function generateThroughPage(page, c) {
  await startThroughPage(page, c);
  await page.waitForFunction(() => document.querySelector("#stop-button").disabled, null, { timeout: 120_000 });
  return page.locator("#output").textContent();
}

/**
 * run.c's recorded cases (tests/golden/runc_parity.jsonl, copied by build.sh):
 * JavaScript's one parser of the golden file (the Rust tests' is
 * tests/both/golden.rs).
 */
export function goldenCases(root) {
  return fs
    .readFileSync(path.join(root, "tests/golden/runc_parity.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

/**
 * Make a random-weight checkpoint of the stories15M shape (61 MB) inside the
 * page and drop it there as `name`, as a person dropping a file would;
 * resolves once the page's card shows it.
 */
export async function dropRandom15M(page, name, seed) {
  await page.evaluate(
    ([name, seed]) => {
      const [dim, hidden, layers, heads, kvHeads, vocab, seqLen] = [288, 768, 6, 6, 6, 32000, 256];
      const floats = vocab * dim + layers * (2 * dim + 4 * dim * dim + 3 * dim * hidden) + dim + seqLen * (dim / heads);
      const weights = new Float32Array(floats);
      let s = seed;
      for (let i = 0; i < floats; i++) {
        s = (s * 1103515245 + 12345) >>> 0;
        weights[i] = (s / 2 ** 32 - 0.5) * 0.1;
      }
      const header = new Int32Array([dim, hidden, layers, heads, kvHeads, vocab, seqLen]);
      const dt = new DataTransfer();
      dt.items.add(new File([header, weights], name));
      document.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    },
    [name, seed],
  );
  await page.waitForFunction((n) => document.querySelector('#card [data-field="name"]').textContent === n, name,
    { timeout: 60_000 });
}

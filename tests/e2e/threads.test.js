// The threaded build in the demo page: helpers in Web Workers share each
// large matmul, and the page gives the same tokens as with one thread (and
// as run.c). Without cross-origin isolation the page falls back to one thread
// and says why.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve, CHROMIUM_OPTIONS, dropRandom15M, goldenCases } from "../static-server.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const www = path.join(root, "www");
const golden = goldenCases(root)
  .filter((c) => c.kind === "generate" && c.model === "stories260K.bin");

const browser = await chromium.launch(CHROMIUM_OPTIONS);
const isolated = await serve(www);
const plain = await serve(www, ["/"], { isolated: false });
after(async () => {
  await browser.close();
  await isolated.close();
  await plain.close();
});

/** The demo page at `url`, once its default model is loaded. */
async function open(url) {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e));
  await page.goto(url);
  await page.waitForFunction(() => document.querySelector('#card [data-field="dim"]').textContent !== "–", null,
    { timeout: 30_000 });
  return { page, errors, kernels: () => page.locator('#card [data-field="kernels"]').textContent() };
}

/** Tokens of a generation through the page's Model, as run.c prints them. */
const generateIn = (page, c) =>
  page.evaluate((c) => window.llama2Debug.generate(c.prompt, c.temperature, c.topp, c.seed, c.steps), c);

test("two threads: the card says so and every stories260K golden comes out token for token", async () => {
  const { page, errors, kernels } = await open(`${isolated.url}/?threads=2`);
  const partsBefore = await page.evaluate(() => window.llama2Debug.helperParts());
  assert.equal(await kernels(), "simd128, 2 threads");
  assert.equal(await page.evaluate(() => window.llama2Debug.threads()), 2);
  // split even the 64 x 64 matrices, so every matmul goes through the helper
  await page.evaluate(() => window.llama2Debug.setMinParallel(0));
  assert.ok(golden.length >= 4);
  for (const c of golden) {
    assert.deepEqual(await generateIn(page, c), c.tokens, `t=${c.temperature} p=${c.topp} seed=${c.seed}`);
  }
  assert.ok((await page.evaluate(() => window.llama2Debug.helperParts())) - partsBefore > 1000, "the helper took parts");
  assert.deepEqual(errors, []);
  await page.close();
});

test("a 15M-shaped model, fp32 and Q8_0: every logit bit-identical with 1 and 2 threads, and the helper does work", async () => {
  const run = async (threads) => {
    const { page, errors } = await open(`${isolated.url}/?threads=${threads}`);
    // random weights of the stories15M shape, made in the page and dropped
    // (288 x 288 matrices: one kernel whole, another if each half chose its own)
    await dropRandom15M(page, "r15M.bin", 777);
    await page.click("#stop-button").catch(() => {});
    const partsBefore = await page.evaluate(() => window.llama2Debug.helperParts());
    const tokens = await generateIn(page, { prompt: "Once upon a time", temperature: 1, topp: 0.9, seed: 5, steps: 64 });
    const fp32 = await page.evaluate(() => window.llama2Debug.logitsHash("Once upon a time", 24));
    const helperParts = (await page.evaluate(() => window.llama2Debug.helperParts())) - partsBefore;
    // the int8 box reloads the model quantized on load
    await page.check("#quantize");
    await page.waitForFunction(() => /quantized on load/.test(document.querySelector('#card [data-field="format"]').textContent),
      null, { timeout: 60_000 });
    await page.click("#stop-button").catch(() => {});
    const q8 = await page.evaluate(() => window.llama2Debug.logitsHash("Once upon a time", 24));
    const q8Tokens = await generateIn(page, { prompt: "Once upon a time", temperature: 1, topp: 0.9, seed: 5, steps: 64 });
    const threadsUsed = await page.evaluate(() => window.llama2Debug.threads());
    assert.deepEqual(errors, []);
    await page.close();
    return { tokens, fp32, q8, q8Tokens, helperParts, threadsUsed };
  };
  const one = await run(1);
  const two = await run(2);
  assert.equal(one.threadsUsed, 1);
  assert.equal(two.threadsUsed, 2);
  assert.equal(one.helperParts, 0);
  // 6 layers x 7 matmuls + the classifier, per position, all above the split threshold
  assert.ok(two.helperParts >= 24 * 43, `the helper computed ${two.helperParts} parts`);
  assert.ok(one.fp32.steps >= 23, `${one.fp32.steps} steps hashed`);
  assert.equal(two.fp32.hash, one.fp32.hash, "fp32 logits differ between 1 and 2 threads");
  assert.equal(two.q8.hash, one.q8.hash, "Q8_0 logits differ between 1 and 2 threads");
  assert.notEqual(one.q8.hash, one.fp32.hash);
  assert.equal(one.tokens.length, 65); // BOS and 64 steps
  assert.deepEqual(two.tokens, one.tokens);
  assert.deepEqual(two.q8Tokens, one.q8Tokens);
});

test("served without COOP/COEP the page runs on one thread, says why, and still matches run.c", async () => {
  const { page, errors, kernels } = await open(`${plain.url}/`);
  assert.equal(await page.evaluate(() => globalThis.crossOriginIsolated), false);
  assert.match(await kernels(), /^simd128, 1 thread \(the page is not cross-origin isolated/);
  assert.equal(await page.evaluate(() => window.llama2Debug.threads()), 1);
  const c = golden.find((c) => c.temperature === 0);
  assert.deepEqual(await generateIn(page, c), c.tokens);
  assert.deepEqual(errors, []);
  await page.close();
});

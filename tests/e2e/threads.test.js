// The threaded build in the demo page: helpers in Web Workers share each
// large matmul, and the page gives the same tokens as with one thread (and
// as run.c). The page picks the build per model: stories260K (no matrix big
// enough to split) on the single-threaded build, a 15M-shaped model on the
// threaded one; ?threads=N forces a count, reduced to the machine's cores.
// Without cross-origin isolation the page falls back to one thread and says
// why. (No timings are compared here: the choice is by size, see engine.js.)
import { test, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve } from "../../serve.mjs";
import { CHROMIUM_OPTIONS, dropRandom15M, goldenCases } from "./harness.mjs";

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

/** The threads the page uses by default for a model that gains from them: the cores, up to 4. */
const defaultThreads = (page) => page.evaluate(() => Math.min(navigator.hardwareConcurrency || 1, 4));

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

test("by default stories260K runs on the single-threaded build, the card says why, and it matches run.c", async () => {
  const { page, errors, kernels } = await open(`${isolated.url}/`);
  assert.equal(await page.evaluate(() => globalThis.crossOriginIsolated), true);
  assert.equal(await kernels(), "simd128, 1 thread (small model: no matmul large enough to split)");
  assert.equal(await page.evaluate(() => window.llama2Debug.threaded()), false, "www/pkg, not www/pkg-threads");
  assert.equal(await page.evaluate(() => window.llama2Debug.threads()), 1);
  for (const c of golden) {
    assert.deepEqual(await generateIn(page, c), c.tokens, `t=${c.temperature} p=${c.topp} seed=${c.seed}`);
  }
  assert.deepEqual(errors, []);
  await page.close();
});

test("the choice by size: stories260K's shape splits nothing, the 15M shape is past the threshold", async () => {
  const { page } = await open(`${isolated.url}/`);
  const plans = await page.evaluate(async () => {
    const { headerShape, splitWeights, planFor, MIN_THREADED_WEIGHTS } = await import("/engine.js");
    const head = (fields, exported = false) => {
      const ints = exported ? [0x616b3432, 1, ...fields] : fields;
      return new Uint8Array(new Int32Array([...ints, ...new Array(64 - ints.length).fill(0)]).buffer);
    };
    const request = { threads: 2, forced: false, note: "" };
    const shapes = {
      s260K: head([64, 172, 5, 8, 4, 512, 512]),
      s15M: head([288, 768, 6, 6, 6, 32000, 256]),
      s15Mv1: head([288, 768, 6, 6, 6, 32000, 256], true),
      s15Mcls: head([288, 768, 6, 6, 6, -32000, 256]), // legacy: negative vocab = separate classifier
      // either side of the threshold: only the classifier splits (128 x 512, then 128 x 4096)
      d128v512: head([128, 344, 6, 8, 8, 512, 512]),
      d128v4096: head([128, 344, 6, 8, 8, 4096, 512]),
    };
    const out = { threshold: MIN_THREADED_WEIGHTS };
    for (const [k, h] of Object.entries(shapes)) {
      const shape = headerShape(h);
      out[k] = { split: splitWeights(shape), plan: planFor(shape, request) };
    }
    out.forced = planFor(headerShape(shapes.s260K), { threads: 2, forced: true, note: "" });
    out.none = planFor(headerShape(new Uint8Array(10)), request);
    return out;
  });
  assert.deepEqual(plans.s260K, { split: 0, plan: { threads: 1, note: "small model: no matmul large enough to split" } });
  // 6 layers x (4 x 288^2 + 3 x 288 x 768) + the 32000 x 288 classifier
  const w15M = 6 * (4 * 288 * 288 + 3 * 288 * 768) + 32000 * 288;
  for (const k of ["s15M", "s15Mv1", "s15Mcls"]) assert.deepEqual(plans[k], { split: w15M, plan: { threads: 2, note: "" } }, k);
  assert.ok(w15M >= plans.threshold);
  assert.deepEqual(plans.d128v512, { split: 65536, plan: { threads: 1, note: "small model: threads gain nothing measurable at this size" } });
  assert.deepEqual(plans.d128v4096, { split: 524288, plan: { threads: 2, note: "" } });
  assert.deepEqual(plans.forced, { threads: 2, note: "" });
  assert.equal(plans.none.threads, 1);
  await page.close();
});

test("?threads=16 is reduced to the machine's cores, and the card says so", async () => {
  const { page, errors, kernels } = await open(`${isolated.url}/?threads=16`);
  const cores = await page.evaluate(() => navigator.hardwareConcurrency);
  assert.ok(cores < 16, "this test needs a machine with fewer than 16 cores");
  const n = cores;
  assert.equal(await kernels(), `simd128, ${n} thread${n === 1 ? "" : "s"} (?threads=16 reduced to ${n} core${n === 1 ? "" : "s"})`);
  assert.equal(await page.evaluate(() => window.llama2Debug.threads()), n);
  // forced: even stories260K runs on the threaded build with that many threads
  assert.equal(await page.evaluate(() => window.llama2Debug.threaded()), n > 1);
  const c = golden.find((c) => c.temperature === 0);
  assert.deepEqual(await generateIn(page, c), c.tokens);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a 15M-shaped model, fp32 and Q8_0: every logit bit-identical with 1 thread and the default threads, and the helper does work", async () => {
  // "?threads=1": forced one thread; "": the page's own choice for this size
  const run = async (query) => {
    const { page, errors, kernels } = await open(`${isolated.url}/${query}`);
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
    const threaded = await page.evaluate(() => window.llama2Debug.threaded());
    const card = await kernels();
    const expected = await defaultThreads(page);
    assert.deepEqual(errors, []);
    await page.close();
    return { tokens, fp32, q8, q8Tokens, helperParts, threadsUsed, threaded, card, expected };
  };
  const one = await run("?threads=1");
  const two = await run("");
  assert.equal(one.threadsUsed, 1);
  assert.equal(one.threaded, false);
  assert.equal(one.card, "simd128, 1 thread");
  assert.ok(two.expected >= 2, "this test needs a machine with at least 2 cores");
  // the default page runs this size on the threaded build with every core (up to 4)
  assert.equal(two.threadsUsed, two.expected);
  assert.equal(two.threaded, true);
  assert.equal(two.card, `simd128, ${two.expected} threads`);
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

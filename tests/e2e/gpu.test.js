// End-to-end tests of the WebGPU backend on the page (www/backend.js):
// the automatic choice, the "Run on" switch, the card, and every fallback
// to the CPU with its reason, in headless Chromium. With
// --enable-unsafe-webgpu Chromium offers a software adapter here
// (SwiftShader: a CPU emulating a GPU, so "Automatic" rightly finds it
// slower); without the flag it offers WebGPU but no adapter.
// Screenshots: tests/e2e/out/gpu-card.png (the card on the WebGPU backend),
// gpu-inspector.png (the inspector on it).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { generateThroughPage, goldenCases, openReadyPage, startThroughPage, WEBGPU_ARGS } from "./harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const www = path.join(root, "www");
const out = path.join(here, "out");

const golden = goldenCases(root).filter((c) => c.kind === "generate" && c.model === "stories260K.bin");
const greedy = golden.find((c) => c.temperature === 0 && c.prompt === "Once upon a time");
const sampled = golden.find((c) => c.temperature === 1 && c.seed === 1337);
const nucleus = golden.find((c) => c.temperature === 0.8);

// a test that hangs fails instead (a page that stopped answering never times out an evaluate)
const LIMIT = 150_000;

let server, browser, page, pageErrors;

before(async () => {
  fs.mkdirSync(out, { recursive: true });
  ({ server, browser, page, pageErrors } = await openReadyPage(www, { width: 1200, height: 1000 }, { args: WEBGPU_ARGS }));
  // the page's warnings and errors in the test's output, for a failure's story
  page.on("console", (m) => ["error", "warning"].includes(m.type()) && console.log(`page ${m.type()}: ${m.text()}`));
});

after(async () => {
  await browser?.close();
  await server?.close();
});

const cardBackend = (p = page) => p.textContent('#card [data-field="backend"]');
const modelBackend = (p = page) => p.evaluate(() => llama2Debug.model().backend);
const notice = (p = page) => p.textContent("#notice");

/** Set the "Run on" choice (a new one) and wait until the page made it. */
async function runOn(choice, p = page) {
  assert.notEqual(await p.inputValue("#backend-choice"), choice, "the choice changes");
  const before = await p.evaluate(() => llama2Debug.backend().choices);
  await p.selectOption("#backend-choice", choice);
  await p.waitForFunction((n) => llama2Debug.backend().choices > n, before, { timeout: 60_000 });
}

const startCase = (c) => startThroughPage(page, c);

const tokensAtLeast = (n) => page.waitForFunction((n) => llama2Debug.model().tokenCount >= n, n, { timeout: 60_000 });
const done = () => page.waitForFunction(() => document.querySelector("#stop-button").disabled, null, { timeout: 120_000 });

test("Automatic: both backends are timed; SwiftShader is slower than the CPU and the card says so with both times", { timeout: LIMIT }, async () => {
  const text = await cardBackend();
  assert.match(text, /^cpu: the GPU is slower here \(webgpu: google, swiftshader: GPU [\d.]+ ms\/token, CPU [\d.]+ ms\/token\)$/);
  assert.equal(await modelBackend(), "cpu");
  // the page's own story ran (on the CPU)
  assert.ok((await page.textContent("#output")).length > 100);
});

test("GPU chosen: run.c's greedy text token for token on the GPU, the card names the adapter", { timeout: LIMIT }, async () => {
  await runOn("gpu");
  assert.equal(await cardBackend(), "webgpu: google, swiftshader (chosen)");
  assert.equal(await modelBackend(), "webgpu");
  const text = await generateThroughPage(page, greedy);
  assert.deepEqual(await page.evaluate(() => Array.from(llama2Debug.model().tokens())), greedy.tokens);
  assert.equal(text, greedy.stdout);
  assert.equal(await modelBackend(), "webgpu", "still on the GPU after the run");
  // the card and the Run on choice under it
  const [card, choice] = await Promise.all([page.locator("#card").boundingBox(), page.locator(".backend-choice").boundingBox()]);
  const scrollY = await page.evaluate(() => window.scrollY); // (boxes are the viewport's; a full-page clip is the page's)
  const clip = { x: Math.min(card.x, choice.x), y: card.y + scrollY, width: Math.max(card.width, choice.width), height: choice.y + choice.height - card.y };
  await page.screenshot({ path: path.join(out, "gpu-card.png"), clip, fullPage: true });
  assert.deepEqual(pageErrors, []);
});

test("the inspector open on the GPU: the GPU's top 10, what is not read back, and a click replays the position on the CPU", { timeout: LIMIT }, async () => {
  if ((await page.inputValue("#backend-choice")) !== "gpu") await runOn("gpu");
  await page.click("#inspector-toggle");
  const short = { ...greedy, steps: 40 };
  const text = await generateThroughPage(page, short);
  // (40 of the golden case's 256 steps: its first 41 tokens, and its text up to there)
  assert.deepEqual(await page.evaluate(() => Array.from(llama2Debug.model().tokens())), greedy.tokens.slice(0, 41));
  assert.ok(text.length > 100 && greedy.stdout.startsWith(text), text);
  assert.equal(await modelBackend(), "webgpu", "the GPU ran with the inspector open");
  const selected = await page.textContent("#insp-selected");
  assert.match(selected, /^position 39 · .* · greedy \(argmax\) · ran on the GPU \(WebGPU\)/);
  // the top 10 from the GPU's logits: the greedy pick first, probabilities summing to at most 1
  const probs = await page.$$eval("#cand-list li", (rows) => rows.map((r) => Number(r.textContent.match(/(\d\.\d+)\s*$/)?.[1])));
  assert.equal(probs.length, 10);
  assert.ok(probs.every((p, i) => p > 0 && (i === 0 || p <= probs[i - 1])), `sorted probabilities: ${probs}`);
  // what is not read back from the GPU, said where it would be
  assert.equal(await page.isVisible("#att-gpu"), true);
  assert.match(await page.textContent("#att-gpu"), /^Attention is not read back from the GPU while generating: click the token/);
  assert.match(await page.textContent("#inspector-body"), /Phase timings: not available on the WebGPU backend \(whole step [\d.]+ ms\)/);
  // a click replays that position on the CPU: its attention, exactly as a CPU run has it
  await page.click('#output .tok[data-pos="30"]');
  await page.waitForFunction(() => document.querySelector("#att-gpu").hidden && !document.querySelector("#att-grid").hidden);
  assert.match(await page.textContent("#insp-selected"), /^position 30 · .* pinned/);
  const row = await page.evaluate(() => Array.from(llama2Debug.model().attention(0, 0)));
  assert.equal(row.length, 31);
  assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5, "an attention row sums to 1");
  await page.locator("#inspector").screenshot({ path: path.join(out, "gpu-inspector.png") });
  await page.click("#inspector-toggle");
  assert.deepEqual(pageErrors, []);
});

test("a device destroyed mid-generation: the text goes on on the CPU (run.c's, sampled), and the page says why", { timeout: LIMIT }, async () => {
  if ((await page.inputValue("#backend-choice")) !== "gpu") await runOn("gpu");
  await startCase(sampled);
  await tokensAtLeast(20);
  await page.evaluate(() => llama2Debug.loseGpu());
  await done();
  assert.deepEqual(await page.evaluate(() => Array.from(llama2Debug.model().tokens())), sampled.tokens);
  assert.equal(await page.textContent("#output"), sampled.stdout);
  assert.equal(await modelBackend(), "cpu");
  assert.equal(await page.inputValue("#backend-choice"), "cpu", "the choice shows what runs");
  assert.match(await cardBackend(), /^cpu: the GPU failed mid-generation \(the GPU stopped answering \(the GPU device was lost/);
  assert.match(await notice(), /The GPU stopped working, so the text goes on on the CPU/);
  assert.equal(await page.isVisible("#notice"), true);
  assert.deepEqual(pageErrors, []);
});

test("switching to the CPU and back mid-run keeps the same text (run.c's)", { timeout: LIMIT }, async () => {
  await runOn("gpu");
  await startCase(nucleus);
  await tokensAtLeast(15);
  await runOn("cpu");
  assert.equal(await cardBackend(), "cpu (chosen)");
  await tokensAtLeast(60);
  await runOn("gpu");
  await tokensAtLeast(70);
  await runOn("cpu");
  await done();
  assert.deepEqual(await page.evaluate(() => Array.from(llama2Debug.model().tokens())), nucleus.tokens);
  assert.equal(await page.textContent("#output"), nucleus.stdout);
  assert.deepEqual(pageErrors, []);
});

test("Automatic chosen again mid-run reuses the model's timing and the text goes on; a model never timed is timed, and its text stops", { timeout: LIMIT }, async () => {
  if ((await page.inputValue("#backend-choice")) !== "gpu") await runOn("gpu");
  await startCase(nucleus);
  await tokensAtLeast(20);
  await runOn("auto"); // (timed when the page loaded it: SwiftShader was slower)
  assert.match(await cardBackend(), /^cpu: the GPU is slower here \(webgpu: google, swiftshader: GPU/);
  await done();
  assert.deepEqual(await page.evaluate(() => Array.from(llama2Debug.model().tokens())), nucleus.tokens);
  assert.equal(await page.textContent("#output"), nucleus.stdout);

  // a page whose model was loaded on the CPU: Automatic must time it, which replaces its generation
  const other = await browser.newPage();
  try {
    await other.goto(server.url + "/?backend=cpu");
    await other.waitForFunction(() => globalThis.llama2Debug?.model()?.tokenCount > 100 && document.querySelector("#stop-button").disabled, null, { timeout: 60_000 });
    assert.equal(await cardBackend(other), "cpu (chosen)");
    await other.fill("#steps", "0");
    await other.click("#generate-button");
    await other.waitForFunction(() => llama2Debug.model().tokenCount > 20);
    await runOn("auto", other);
    assert.match(await cardBackend(other), /^cpu: the GPU is slower here/);
    assert.equal(await other.isEnabled("#continue-button"), false, "the text cannot go on: its KV cache was used for the timing");
    assert.equal(await other.isEnabled("#stop-button"), false);
  } finally {
    await other.close();
  }
  assert.deepEqual(pageErrors, []);
});

test("an adapter without the limits asked for: the CPU, with the limit and both values", { timeout: LIMIT }, async () => {
  await page.evaluate(() => llama2Debug.setGpuOptions({ requiredLimits: { maxStorageBufferBindingSize: 2 ** 40 } }));
  await runOn("gpu");
  const text = await cardBackend();
  assert.match(text, /^cpu: the GPU is not used \(this GPU's WebGPU limit maxStorageBufferBindingSize is 1,073,741,824, but .* needs 1,099,511,627,776\)$/);
  assert.match(await notice(), /^Running on the CPU: this GPU's WebGPU limit maxStorageBufferBindingSize/);
  assert.equal(await modelBackend(), "cpu");
  assert.equal(await page.inputValue("#backend-choice"), "cpu");
  await page.evaluate(() => llama2Debug.setGpuOptions(undefined));
  assert.equal(await generateThroughPage(page, greedy), greedy.stdout);
});

test("no adapter (Chromium without the WebGPU flag), and no WebGPU at all: the CPU, and the card says why", { timeout: LIMIT }, async () => {
  const plain = await openReadyPage(www, { width: 1200, height: 900 });
  try {
    assert.match(await cardBackend(plain.page), /^cpu: the GPU is not used \(WebGPU is there but offers no adapter/);
    await runOn("gpu", plain.page);
    assert.match(await notice(plain.page), /^Running on the CPU: WebGPU is there but offers no adapter/);
    assert.equal(await generateThroughPage(plain.page, greedy), greedy.stdout);
    // a browser without navigator.gpu
    const context = await plain.browser.newContext();
    await context.addInitScript(() => Object.defineProperty(Navigator.prototype, "gpu", { get: () => undefined }));
    const bare = await context.newPage();
    await bare.goto(plain.server.url + "/");
    await bare.waitForFunction(() => /not used/.test(document.querySelector('#card [data-field="backend"]').textContent));
    assert.match(await cardBackend(bare), /^cpu: the GPU is not used \(this browser has no WebGPU/);
    await bare.waitForFunction(() => document.querySelector("#stop-button").disabled, null, { timeout: 60_000 });
    assert.ok((await bare.textContent("#output")).length > 100, "the story is told on the CPU");
    assert.deepEqual(plain.pageErrors, []);
  } finally {
    await plain.browser.close();
    await plain.server.close();
  }
});

// End-to-end tests of the page's Continue button (model.extend): a text
// continued where it stopped is the text of one longer run, the button is
// only offered when the text can go on, and the inspector follows.
// Screenshot: tests/e2e/out/continue.png.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { dropRandom15M, goldenCases, openReadyPage } from "./harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const www = path.join(root, "www");
const out = path.join(here, "out");

const golden = goldenCases(root).filter((c) => c.kind === "generate" && c.model === "stories260K.bin");

let server, browser, page, pageErrors;

before(async () => {
  fs.mkdirSync(out, { recursive: true });
  ({ server, browser, page, pageErrors } = await openReadyPage(www, { width: 1200, height: 1000 }));
});

after(async () => {
  await browser?.close();
  await server?.close();
});

async function setControls({ prompt, temperature, topp = 0.9, steps, seed = 1 }) {
  await page.fill("#prompt", prompt);
  await page.fill("#temperature", String(temperature));
  await page.fill("#topp", String(topp));
  await page.fill("#steps", String(steps));
  await page.fill("#seed", String(seed));
}

const done = () => page.waitForFunction(() => document.querySelector("#stop-button").disabled, null, { timeout: 60_000 });
const text = () => page.locator("#output").textContent();
const positions = () => page.$$eval("#output .tok", (s) => s.length);
const canContinue = () => page.locator("#continue-button").isEnabled();
const stats = () => page.textContent("#stat-tokens");

/** Generate with these settings; the text, its positions and the token numbers. */
async function generate(controls) {
  await setControls(controls);
  await page.click("#generate-button");
  await done();
  return { text: await text(), positions: await positions(), stats: await stats() };
}

test("greedy: 40 steps, then Continue with 40, is the text of one run of 80 (and run.c's)", async () => {
  const greedy = { prompt: "Once upon a time", temperature: 0, seed: 1 };
  const first = await generate({ ...greedy, steps: 40 });
  assert.equal(first.positions, 40);
  assert.ok(await canContinue(), "a text stopped at its steps can go on");
  // the hint says what the Steps field means for it
  const hint = await page.$eval("#continue-button", (b) => document.getElementById(b.getAttribute("aria-describedby")).textContent);
  assert.match(hint.replace(/\s+/g, " "), /for Steps more tokens \(0 = up to the seq len\)/);
  // from the keyboard: focus the button, Enter
  await page.focus("#continue-button");
  await page.keyboard.press("Enter");
  await done();
  const continued = { text: await text(), positions: await positions(), stats: await stats() };
  assert.ok(continued.text.startsWith(first.text), "appended to the same text");
  assert.equal(continued.positions, 80);
  assert.ok(await canContinue(), "and it can go on again");

  const whole = await generate({ ...greedy, steps: 80 });
  assert.equal(continued.text, whole.text);
  assert.equal(continued.stats, whole.stats, "generated / total tokens count both parts");
  assert.match(whole.stats, /^\d+ \/ 81$/);
  // run.c's greedy story, of which these 80 positions are the beginning
  const c = golden.find((c) => c.prompt === greedy.prompt && c.temperature === 0);
  assert.ok(c.stdout.startsWith(whole.text), `${whole.text} is not the start of run.c's ${c.stdout.slice(0, 200)}`);
  // the same tokens as a run through the engine directly
  const tokens = await page.evaluate(() => window.llama2Debug.generate("Once upon a time", 0, 0.9, 1, 80));
  assert.deepEqual(tokens, c.tokens.slice(0, 81));
  assert.equal(await canContinue(), false, "the debug run used the model: the page's text cannot go on");
  assert.deepEqual(pageErrors, []);
});

test("Continue is not offered when the story ended with its end token, nor at seq_len", async () => {
  // run.c's case that ends with BOS before its steps
  const c = golden.find((c) => c.tokens.at(-1) === 1 && c.steps + 1 > c.tokens.length);
  const ended = await generate({ prompt: c.prompt, temperature: c.temperature, topp: c.topp, steps: c.steps, seed: c.seed });
  assert.equal(ended.text, c.stdout);
  assert.equal(await canContinue(), false);
  // a prompt longer than seq_len: all 512 positions used
  const full = await generate({ prompt: "a ".repeat(600), temperature: 0, steps: 0 });
  assert.equal(full.positions, 512);
  assert.equal(await canContinue(), false);
  // a new text that stopped at its steps can go on again
  await generate({ prompt: "Once upon a time", temperature: 0, steps: 10 });
  assert.ok(await canContinue());
  assert.deepEqual(pageErrors, []);
});

test("the inspector follows a continued text: tokens of both parts can be picked", async () => {
  await page.click("#inspector-toggle");
  const first = await generate({ prompt: "Once upon a time", temperature: 1, topp: 0.9, steps: 30, seed: 42 });
  assert.equal(first.positions, 30);
  await page.fill("#steps", "30");
  await page.click("#continue-button");
  await done();
  assert.equal(await positions(), 60);
  for (const pos of [10, 29, 30, 45, 59]) {
    await page.click(`#output .tok[data-pos="${pos}"]`);
    assert.match(await page.textContent("#insp-selected"), new RegExp(`position ${pos} `));
    const bars = await page.$$eval("#cand-list li", (lis) => lis.map((li) => Number(li.querySelector(".p").textContent)));
    assert.equal(bars.length, 10, `position ${pos}: its top-10`);
    // the heatmap has a column per position up to the picked one
    await page.selectOption("#att-layer", "all");
    await page.selectOption("#att-head", "all");
    const spans = await page.$$eval("#att-text span", (s) => s.length);
    assert.equal(spans, pos + 1, `position ${pos}: attention over positions 0..${pos}`);
    await page.click(`#output .tok[data-pos="${pos}"]`); // unpin
  }
  // the same text as one run of 60 (the sampler went on with its random numbers)
  const continued = await text();
  await page.click("#inspector-toggle");
  const whole = await generate({ prompt: "Once upon a time", temperature: 1, topp: 0.9, steps: 60, seed: 42 });
  assert.equal(continued, whole.text);
  assert.deepEqual(pageErrors, []);
});

test("a larger model stopped mid-way continues from where it stopped; Continue is off while generating and after a model change", async () => {
  await dropRandom15M(page, "random15M.bin", 11);
  assert.equal(await canContinue(), false, "a new model: nothing to continue");
  await setControls({ prompt: "Once upon a time", temperature: 0, steps: 0 });
  await page.click("#generate-button");
  await page.waitForFunction(() => document.querySelectorAll("#output .tok").length >= 12, null, { timeout: 60_000 });
  assert.equal(await canContinue(), false, "not while generating");
  await page.click("#stop-button");
  const stoppedAt = await positions();
  assert.ok(stoppedAt < 256, `stopped at ${stoppedAt}`);
  assert.ok(await canContinue(), "Stop leaves a text that can go on");
  await page.fill("#steps", "20");
  await page.click("#continue-button");
  await done();
  const continued = { text: await text(), positions: await positions() };
  assert.equal(continued.positions, stoppedAt + 20);
  await page.screenshot({ path: path.join(out, "continue.png"), fullPage: true });
  const whole = await generate({ prompt: "Once upon a time", temperature: 0, steps: stoppedAt + 20 });
  assert.equal(continued.text, whole.text);
  // another model: the text on the page is the old one's, it cannot go on
  assert.ok(await canContinue());
  await page.evaluate(async () => {
    const bytes = new Uint8Array(await (await fetch("models/stories260K.bin")).arrayBuffer());
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], "stories260K.bin"));
    document.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
  await page.waitForFunction(() => document.querySelector('#card [data-field="name"]').textContent === "stories260K.bin",
    null, { timeout: 60_000 });
  assert.equal(await canContinue(), false);
  assert.deepEqual(pageErrors, []);
});

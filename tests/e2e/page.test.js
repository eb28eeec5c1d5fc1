// End-to-end tests of the demo page in headless Chromium: the page as a
// person uses it, served from www/ (built by ./build.sh).
//
//   cd tests && npm ci && node --test e2e/
//
// Screenshots go to tests/e2e/out/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { dropRandom15M, goldenCases, openPage } from "./harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const www = path.join(root, "www");
const out = path.join(here, "out");

const golden = goldenCases(root);
const goldenCase = (model, prompt, temperature) =>
  golden.find((c) => c.kind === "generate" && c.model === model && c.prompt === prompt && c.temperature === temperature);

let server, browser, page, pageErrors;

before(async () => {
  fs.mkdirSync(out, { recursive: true });
  ({ server, browser, page, pageErrors } = await openPage(www, { width: 1200, height: 900 }));
});

after(async () => {
  await browser?.close();
  await server?.close();
});

const card = (field) => page.locator(`#card [data-field="${field}"]`).textContent();
const isGenerating = () => page.locator("#stop-button").isEnabled();

async function setControls({ prompt, temperature, topp = 0.9, steps = 256, seed = 1 }) {
  await page.fill("#prompt", prompt);
  await page.fill("#temperature", String(temperature));
  await page.fill("#topp", String(topp));
  await page.fill("#steps", String(steps));
  await page.fill("#seed", String(seed));
}

/** Click Generate and wait for the generation to finish; returns the text. */
async function generate(controls) {
  await setControls(controls);
  await page.click("#generate-button");
  await page.waitForFunction(() => document.querySelector("#stop-button").disabled, null, { timeout: 60_000 });
  return page.locator("#output").textContent();
}

/**
 * Drop files on the page as a person would: a synthetic `drop` event whose
 * DataTransfer holds Files. `specs`: { url, name, keep? (bytes to keep) } or
 * { text, name } — built inside the page, so large files need no transfer.
 */
async function drop(specs) {
  await page.evaluate(async (specs) => {
    const dt = new DataTransfer();
    for (const s of specs) {
      let bytes;
      if (s.url) bytes = new Uint8Array(await (await fetch(s.url)).arrayBuffer());
      else bytes = new TextEncoder().encode(s.text);
      if (s.keep !== undefined) bytes = bytes.slice(0, s.keep);
      dt.items.add(new File([bytes], s.name));
    }
    document.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, specs);
}

test("the default model loads by itself and its card shows stories260K", async () => {
  await page.waitForFunction(() => document.querySelector('#card [data-field="dim"]').textContent !== "–");
  assert.equal(await card("name"), "stories260K.bin");
  assert.match(await card("format"), /legacy v0/);
  assert.equal(await card("dim"), "64");
  assert.equal(await card("hidden_dim"), "172");
  assert.equal(await card("n_layers"), "5");
  assert.equal(await card("n_heads"), "8");
  assert.equal(await card("n_kv_heads"), "4");
  assert.equal(await card("vocab_size"), "512");
  assert.equal(await card("seq_len"), "512");
  assert.equal(await card("tokenizer"), "tok512.bin");
  // SIMD128 on one thread: stories260K has no matrix large enough to split (on
  // one core there is nothing to say; see threads.test.js)
  assert.match(await card("kernels"), /^simd128, 1 thread( \(small model: no matmul large enough to split\))?$/);
  assert.equal(await card("weights"), "1.04 MB");
  assert.match(await card("params"), /^\d{3},\d{3}$/);
  // and it starts telling a story on its own
  await page.waitForFunction(() => document.querySelector("#output").textContent.length > 20);
  assert.deepEqual(pageErrors, []);
});

test("greedy generation equals run.c's output", async () => {
  const c = goldenCase("stories260K.bin", "Once upon a time", 0);
  const text = await generate({ prompt: c.prompt, temperature: 0, topp: c.topp, steps: c.steps, seed: c.seed });
  assert.equal(text, c.stdout);
  assert.equal(await page.locator("#stat-tokens").textContent(), "252 / 257");
  assert.match(await page.locator("#stat-speed").textContent(), /^\d+(\.\d)?$/);
  assert.equal(await page.locator("#error").isHidden(), true);
});

test("dropping a v1 checkpoint switches the model and generation works", async () => {
  await drop([{ url: "models/stories260K_v1.bin", name: "stories260K_v1.bin" }]);
  await page.waitForFunction(() => document.querySelector('#card [data-field="format"]').textContent.includes("v1"));
  assert.equal(await card("name"), "stories260K_v1.bin");
  const c = goldenCase("stories260K_v1.bin", "Lily and Tom went to the", 0);
  const text = await generate({ prompt: c.prompt, temperature: 0, topp: c.topp, steps: c.steps, seed: c.seed });
  assert.equal(text, c.stdout);
});

test("a truncated checkpoint shows its error and the previous model keeps working", async () => {
  await drop([{ url: "models/stories260K.bin", name: "half.bin", keep: 500_000 }]);
  await page.waitForSelector("#error:not([hidden])");
  const msg = await page.locator("#error-text").textContent();
  assert.match(msg, /half\.bin: invalid checkpoint: the file is 500,000 bytes but its header needs 1,056,540/);
  assert.equal(await card("name"), "stories260K_v1.bin");
  const text = await generate({ prompt: "The dog", temperature: 0.8, steps: 64, seed: 7 });
  assert.ok(text.startsWith("The dog") && text.length > 40, text);

  await drop([{ text: "<!doctype html><title>404</title>", name: "model.bin" }]);
  await page.waitForSelector("#error:not([hidden])");
  assert.match(await page.locator("#error-text").textContent(), /model\.bin: this is an HTML page saved as a file/);
  assert.deepEqual(pageErrors, []);
});

test("int8: a Q8_0 file runs as runq.c does, and the int8 box quantizes fp32 files on load", async () => {
  await drop([{ url: "models/stories260K_q80.bin", name: "stories260K_q80.bin" }]);
  await page.waitForFunction(() => document.querySelector('#card [data-field="name"]').textContent === "stories260K_q80.bin");
  assert.equal(await card("format"), "export v2, Q8_0 (group 4)");
  assert.equal(await card("weights"), "521 kB");
  const c = goldenCase("stories260K_q80.bin", "", 0);
  const text = await generate({ prompt: "", temperature: 0, topp: c.topp, steps: c.steps, seed: c.seed });
  // the page runs the SIMD kernels: runq.c's first 448 characters exactly,
  // then a near-tie goes the other way (" her" here, "," in runq.c; int8
  // activations amplify the order of float sums: tests/parity.rs says why;
  // the scalar kernels reproduce all of it natively)
  let same = 0;
  while (same < text.length && text[same] === c.stdout[same]) same++;
  assert.ok(same >= 448, `only ${same} characters follow runq.c: ${JSON.stringify(text.slice(0, same + 20))}`);

  await page.check("#quantize");
  await drop([{ url: "models/stories260K.bin", name: "stories260K.bin" }]);
  await page.waitForFunction(() => document.querySelector('#card [data-field="name"]').textContent === "stories260K.bin");
  assert.equal(await card("format"), "legacy v0, Q8_0 (group 4), quantized on load");
  assert.equal(await card("weights"), "521 kB");
  const quantized = await generate({ prompt: "", temperature: 0, topp: c.topp, steps: c.steps, seed: c.seed });
  assert.equal(quantized, text, "quantized on load = the exported Q8_0 file");
  // unticking loads the same file again as fp32
  await page.uncheck("#quantize");
  await page.waitForFunction(() => document.querySelector('#card [data-field="format"]').textContent === "legacy v0, fp32");
  assert.equal(await card("weights"), "1.04 MB");
  assert.deepEqual(pageErrors, []);
});

test("a 32000-vocab checkpoint alone uses tokenizer.bin; Stop is immediate and the page stays responsive", async () => {
  // a random-weight checkpoint of the stories15M shape (61 MB), made in the page
  await dropRandom15M(page, "random15M.bin", 12345);
  assert.equal(await card("tokenizer"), "tokenizer.bin");
  assert.equal(await card("vocab_size"), "32,000");

  await setControls({ prompt: "Once upon a time", temperature: 1, steps: 256, seed: 3 });
  await page.click("#generate-button");
  await page.waitForFunction(() => document.querySelector("#output").textContent.length > 30);
  await page.screenshot({ path: path.join(out, "generating.png") });

  // responsiveness: the page paints between tokens. The text read at each
  // of 30 animation frames grows in several steps (the loop yields to the
  // browser every few milliseconds and paints every ~50 ms) instead of a
  // frame that arrives only after the whole generation. Structure, not
  // speed: frame durations depend on the machine's load and are the bench's
  // to print (its "page" part).
  const counts = await page.evaluate(
    () =>
      new Promise((resolve) => {
        const seen = [];
        const tick = () => {
          seen.push(document.querySelector("#output").textContent.length);
          if (seen.length < 30) requestAnimationFrame(tick);
          else resolve(seen);
        };
        requestAnimationFrame(tick);
      }),
  );
  const grew = counts.slice(1).filter((c, i) => c > counts[i]).length;
  assert.ok(grew >= 3, `text appeared between frames only ${grew} times: ${counts}`);
  // (a fast machine may have finished the 256 tokens by now: start again to test Stop)
  if (!(await isGenerating())) {
    await page.click("#generate-button");
    await page.waitForFunction(() => document.querySelector("#output").textContent.length > 30);
  }

  // Stop halts at once: no token after the click
  await page.click("#stop-button");
  const n1 = await page.locator("#stat-tokens").textContent();
  await page.waitForTimeout(300);
  assert.equal(await page.locator("#stat-tokens").textContent(), n1);
  assert.equal(await isGenerating(), false);
  const frozen = await page.locator("#output").textContent();
  await page.waitForTimeout(200);
  assert.equal(await page.locator("#output").textContent(), frozen);

  // and a new Generate starts cleanly
  await page.fill("#steps", "8");
  await page.click("#generate-button");
  await page.waitForFunction(() => document.querySelector("#stop-button").disabled);
  assert.match(await page.locator("#stat-tokens").textContent(), /^4 \/ 9$/);
  assert.deepEqual(pageErrors, []);
});

test("under stress: Generate pressed repeatedly, a model dropped mid-generation, ten files at once, a 100,000-character prompt", async () => {
  await drop([{ url: "models/stories260K.bin", name: "stories260K.bin" }]);
  await page.waitForFunction(() => document.querySelector('#card [data-field="name"]').textContent === "stories260K.bin");
  await setControls({ prompt: "Once upon a time", temperature: 0.8, steps: 512, seed: 5 });
  for (let i = 0; i < 6; i++) await page.click("#generate-button");
  // one generation runs, from the start: the output begins with the prompt once
  await page.waitForFunction(() => document.querySelector("#output").textContent.length > 20);
  const out = await page.locator("#output").textContent();
  assert.ok(out.startsWith("Once upon a time") && !out.slice(1).includes("Once upon a time, Once"), out.slice(0, 80));

  // a new model dropped while generating replaces it cleanly
  await page.click("#generate-button");
  await drop([{ url: "models/stories260K_v1.bin", name: "stories260K_v1.bin" }]);
  await page.waitForFunction(() => document.querySelector('#card [data-field="name"]').textContent === "stories260K_v1.bin");
  assert.equal(await isGenerating(), false);
  const c = goldenCase("stories260K_v1.bin", "Lily and Tom went to the", 0);
  assert.equal(await generate({ prompt: c.prompt, temperature: 0, topp: c.topp, steps: c.steps, seed: c.seed }), c.stdout);

  // ten files at once: one clear message, nothing loaded, the model still works
  await drop(Array.from({ length: 10 }, (_, i) => ({ url: "models/stories260K.bin", name: `copy${i}.bin` })));
  await page.waitForSelector("#error:not([hidden])");
  assert.match(await page.locator("#error-text").textContent(), /drop one checkpoint at a time/);
  assert.equal(await card("name"), "stories260K_v1.bin");

  // a huge prompt: generation stops at seq_len, the page stays usable
  await setControls({ prompt: "a".repeat(100_000), temperature: 0, steps: 0, seed: 1 });
  await page.click("#generate-button");
  await page.waitForFunction(() => document.querySelector("#stop-button").disabled, null, { timeout: 60_000 });
  assert.match(await page.locator("#stat-tokens").textContent(), /^0 \/ 513$/);
  assert.equal(await page.locator("#error").isHidden(), true);
  assert.deepEqual(pageErrors, []);
});

test("every kind of bad file gets its message on the page, and the model keeps working", async () => {
  const before = await card("name");
  const cases = [
    { name: "model.gguf", bytes: [..."GGUF"].map((c) => c.charCodeAt(0)).concat(Array(300).fill(7)), want: /this is a GGUF file/ },
    { name: "model.pt", bytes: [0x50, 0x4b, 0x03, 0x04].concat(Array(300).fill(1)), want: /PyTorch/ },
    { name: "model.safetensors", bytes: [16, 0, 0, 0, 0, 0, 0, 0].concat([..."{\"a\":1}"].map((c) => c.charCodeAt(0)), Array(300).fill(0)), want: /safetensors/ },
    { name: "lfs.bin", text: "version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n", want: /Git LFS pointer/ },
    { name: "noise.bin", bytes: Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24), want: /noise\.bin: this file is neither|invalid checkpoint/ },
    { name: "empty.bin", bytes: [], want: /empty\.bin: / },
  ];
  for (const c of cases) {
    await page.evaluate(async (c) => {
      const bytes = c.text !== undefined ? new TextEncoder().encode(c.text) : new Uint8Array(c.bytes);
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], c.name));
      document.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, { name: c.name, bytes: c.bytes, text: c.text });
    await page.waitForFunction((n) => document.querySelector("#error-text").textContent.startsWith(n), c.name);
    const msg = await page.locator("#error-text").textContent();
    assert.match(msg, c.want, `${c.name}: ${msg}`);
    assert.equal(await page.locator("#error").isVisible(), true);
    assert.equal(await card("name"), before);
  }
  // a Q8_0 file with a bad group size, and one cut short
  await page.evaluate(async () => {
    const q80 = new Uint8Array(await (await fetch("models/stories260K_q80.bin")).arrayBuffer());
    const bad = q80.slice();
    new DataView(bad.buffer).setInt32(37, 48, true);
    for (const [name, bytes] of [["gs48.bin", bad], ["short_q80.bin", q80.slice(0, q80.length - 4)]]) {
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], name));
      document.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
      const t0 = performance.now();
      while (!document.querySelector("#error-text").textContent.startsWith(name) && performance.now() - t0 < 5000) {
        await new Promise((r) => setTimeout(r, 20));
      }
      window.__lastErrors = (window.__lastErrors ?? []).concat(document.querySelector("#error-text").textContent);
    }
  });
  const errors = await page.evaluate(() => window.__lastErrors);
  assert.match(errors[0], /gs48\.bin: .*group size 48 does not divide dim 64/);
  assert.match(errors[1], /short_q80\.bin: .*521,724 bytes but its header needs 521,728/);
  const text = await generate({ prompt: "Once upon a time", temperature: 0, steps: 20, seed: 1 });
  assert.ok(text.startsWith("Once upon a time") && text.length > 30, text);
  assert.deepEqual(pageErrors, []);
});

test("phone-width layout", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(out, "phone.png"), fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(overflow, false, "the page scrolls sideways at phone width");
  await page.setViewportSize({ width: 1200, height: 900 });
});

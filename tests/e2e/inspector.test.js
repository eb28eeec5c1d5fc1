// End-to-end tests of the inspector panel in headless Chromium: candidates,
// attention, timings and the walkthrough, as a person uses them.
// Screenshots go to tests/e2e/out/inspector-*.png.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { openReadyPage } from "./harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const www = path.resolve(here, "../../www");
const out = path.join(here, "out");

let server, browser, page, pageErrors;

before(async () => {
  fs.mkdirSync(out, { recursive: true });
  ({ server, browser, page, pageErrors } = await openReadyPage(www, { width: 1200, height: 1000 }));
});

after(async () => {
  await browser?.close();
  await server?.close();
});

async function generate({ prompt = "Once upon a time", temperature = 0, topp = 0.9, steps = 60, seed = 1 } = {}) {
  await page.fill("#prompt", prompt);
  await page.fill("#temperature", String(temperature));
  await page.fill("#topp", String(topp));
  await page.fill("#steps", String(steps));
  await page.fill("#seed", String(seed));
  await page.click("#generate-button");
  await page.waitForFunction(() => document.querySelector("#stop-button").disabled, null, { timeout: 60_000 });
}

const setOpen = async (open) => {
  const expanded = await page.getAttribute("#inspector-toggle", "aria-expanded");
  if ((expanded === "true") !== open) await page.click("#inspector-toggle");
};

/** The candidates chart as data: [{ text, prob, kept, chosen }]. */
const chart = () =>
  page.$$eval("#cand-list li", (lis) =>
    lis.map((li) => ({
      text: li.querySelector(".tt").textContent,
      prob: Number(li.querySelector(".p").textContent),
      kept: li.classList.contains("kept"),
      chosen: li.classList.contains("chosen"),
    })));

test("closed, the engine records nothing; opening turns recording on", async () => {
  await setOpen(false);
  assert.equal(await page.evaluate(() => window.llama2Debug.inspecting()), false);
  assert.equal(await page.isVisible("#inspector-body"), false);
  await setOpen(true);
  assert.equal(await page.evaluate(() => window.llama2Debug.inspecting()), true);
  assert.equal(await page.isVisible("#inspector-body"), true);
});

test("clicking a generated token shows its top-10 chart with the chosen token", async () => {
  await setOpen(true);
  await generate({ temperature: 0 });
  const promptTokens = await page.$$eval("#output .tok.prompt", (s) => s.length);
  const pos = promptTokens + 5;
  await page.click(`#output .tok[data-pos="${pos}"]`);
  const c = await chart();
  assert.equal(c.length, 10);
  for (let i = 1; i < c.length; i++) assert.ok(c[i].prob <= c[i - 1].prob, "sorted by probability");
  assert.ok(c.reduce((s, x) => s + x.prob, 0) <= 1.0 + 1e-3);
  // greedy: the chosen token is the top one, and only it was eligible
  assert.ok(c[0].chosen && c[0].kept);
  assert.equal(c.filter((x) => x.chosen).length, 1);
  assert.equal(c.filter((x) => x.kept).length, 1);
  const tokenText = await page.textContent(`#output .tok[data-pos="${pos}"]`);
  assert.equal(c[0].text.replace(/^␣/, " "), tokenText.replace(/\n/g, "↵"));
  const selected = await page.textContent("#insp-selected");
  assert.match(selected, new RegExp(`position ${pos} .*greedy.*pinned`));
  // screen readers hear the pick (and only picks: the visible line is not a live region)
  assert.match(await page.textContent("#insp-announce"), new RegExp(`^position ${pos} .*; most likely: .*: 0\\.\\d{3}, chosen$`));
  assert.equal(await page.getAttribute("#insp-selected", "aria-live"), null);
  assert.ok(await page.$eval(`#output .tok[data-pos="${pos}"]`, (s) => s.classList.contains("sel")));
  await page.screenshot({ path: path.join(out, "inspector-candidates.png"), fullPage: true });
});

test("sampling at top-p marks the nucleus; the sampled token is inside it", async () => {
  await setOpen(true);
  await generate({ temperature: 1.0, topp: 0.9, seed: 42 });
  const n = await page.$$eval("#output .tok", (s) => s.length);
  const promptTokens = await page.$$eval("#output .tok.prompt", (s) => s.length);
  let seen = 0;
  for (let pos = promptTokens; pos < Math.min(n, promptTokens + 8); pos++) {
    await page.click(`#output .tok[data-pos="${pos}"]`);
    const c = await chart();
    const chosen = c.find((x) => x.chosen);
    if (chosen) {
      assert.ok(chosen.kept, `position ${pos}: the sampled token is in the nucleus`);
      seen++;
    }
    assert.match(await page.textContent("#insp-selected"), /sampled at temperature 1, top-p 0.9/);
  }
  assert.ok(seen >= 4);
});

test("attention heatmap: every layer and head over the previous positions", async () => {
  await setOpen(true);
  await generate({ temperature: 0, steps: 40 });
  const pos = 20;
  await page.click(`#output .tok[data-pos="${pos}"]`);
  await page.selectOption("#att-layer", "all");
  await page.selectOption("#att-head", "all");
  const grid = await page.$eval("#att-grid", (c) => ({ w: c.width, h: c.height }));
  // 14 px columns and 10 px rows here, after a 44 px label gutter, over 64 px of token labels
  assert.equal(grid.w, 44 + (pos + 1) * 14, "one column per position 0..pos");
  assert.equal(grid.h, 40 * 10 + 64, "5 layers x 8 heads rows");
  // the text under it: one span per position, the query outlined
  const spans = await page.$$eval("#att-text span", (s) => s.map((x) => x.className));
  assert.equal(spans.length, pos + 1);
  assert.equal(spans[pos], "q");
  // hovering a cell names layer, head, position and weight
  await page.locator("#att-grid").scrollIntoViewIfNeeded();
  const box = await page.locator("#att-grid").boundingBox();
  await page.mouse.move(box.x + 44 + 2, box.y + 2);
  assert.match(await page.textContent("#att-hover"), /^layer 0, head 0 → position 0 "<s>": [01]\.\d{4}$/);
  await page.locator("#insp-attention").screenshot({ path: path.join(out, "inspector-heatmap.png") });
  // pick one head: one row; its weights shade the text and sum to 1
  await page.selectOption("#att-layer", "2");
  await page.selectOption("#att-head", "3");
  assert.match(await page.textContent("#att-top"), /^Most attended \(layer 2, head 3\): (".*" at \d+ \(\d\.\d{3}\)(, )?){5}$/);
  const one = await page.$eval("#att-grid", (c) => c.height);
  assert.equal(one, 10 + 64, "one row");
  const sum = await page.$$eval("#att-text span", (s) => s.reduce((a, x) => a + Number(x.title.split(": ")[1]), 0));
  assert.ok(Math.abs(sum - 1) < 2e-3, `weights sum to ${sum}`);
  await page.screenshot({ path: path.join(out, "inspector-attention.png"), fullPage: true });
  await page.selectOption("#att-layer", "all");
  await page.selectOption("#att-head", "all");
});

test("timings: a stacked bar of six parts and a live tokens/s sparkline", async () => {
  await setOpen(true);
  await generate({ temperature: 1, steps: 0, seed: 3 });
  await page.keyboard.press("Escape");
  const parts = await page.$$eval("#time-token i", (is) => is.map((i) => parseFloat(i.style.width)));
  assert.equal(parts.length, 6);
  assert.ok(parts.every((w) => w >= 0) && parts.reduce((a, b) => a + b, 0) > 50);
  const legend = await page.$$eval("#time-legend li", (l) => l.map((x) => x.textContent));
  assert.equal(legend.length, 7);
  assert.match(legend[0], /^q k v o matmuls [\d.]+ \(mean [\d.]+\) ms$/);
  assert.match(legend[6], /^total [\d.]+ ms$/, "served cross-origin isolated: the fine clock");
  assert.match(await page.textContent("#time-avg-label"), /^mean of \d+$/);
  assert.match(await page.textContent("#spark-value"), /tokens\/s now/);
});

test("a token generated with the inspector closed is recomputed when picked", async () => {
  await setOpen(false);
  await generate({ temperature: 0 });
  await setOpen(true);
  const promptTokens = await page.$$eval("#output .tok.prompt", (s) => s.length);
  await page.click(`#output .tok[data-pos="${promptTokens + 2}"]`);
  assert.match(await page.textContent("#insp-selected"), /recomputed/);
  const c = await chart();
  assert.equal(c.length, 10);
  assert.ok(c[0].chosen);
  // keyboard: focus the text, move the selection left
  await page.focus("#output");
  await page.keyboard.press("ArrowLeft");
  assert.match(await page.textContent("#insp-selected"), new RegExp(`^position ${promptTokens + 1} `));
});

test("walkthrough: one token per click, run.c's forward pass in order", async () => {
  await setOpen(true);
  await page.fill("#prompt", "Once upon a time");
  await page.fill("#temperature", "0");
  await page.fill("#steps", "20");
  await page.selectOption("#walk-layer", "0");
  for (let i = 0; i < 3; i++) await page.click("#walk-step");
  assert.match(await page.textContent("#walk-title"), /position 2 /);
  assert.match(await page.textContent("#walk-status"), /3 positions run/);
  const rows = await page.$$eval("#walk-table tbody tr", (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
  // embedding, layer 0's ten vectors, final norm, logits and the sampler's pick
  assert.deepEqual(rows.map((r) => r[1]), ["x", "xb", "q", "k", "v", "att", "xb", "x", "xb", "hb", "x", "x", "logits", "next"]);
  assert.equal(rows[0][3], "(dim,) = 64");
  assert.equal(rows[5][3], "(pos + 1,) = 3");
  assert.equal(rows.at(-2)[3], "(vocab_size,) = 512");
  assert.ok(rows.every((r) => r[6].length > 10), "each row explains itself");
  assert.equal(await page.$$eval("#output .tok", (s) => s.length), 3);
  await page.screenshot({ path: path.join(out, "inspector-walkthrough.png"), fullPage: true });
  await page.click("#stop-button");
});

test("a new model while a token is pinned: the old text stays readable, nothing breaks", async () => {
  await setOpen(true);
  await generate({ temperature: 0, steps: 30 });
  await page.click('#output .tok[data-pos="12"]');
  const before = await chart();
  // drop the same weights in the v1 format: a new Model object replaces the old one
  await page.evaluate(async () => {
    const bytes = new Uint8Array(await (await fetch("models/stories260K_v1.bin")).arrayBuffer());
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], "stories260K_v1.bin"));
    document.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
  await page.waitForFunction(() => document.querySelector('#card [data-field="name"]').textContent === "stories260K_v1.bin");
  // the pinned token's chart was kept; a token never shown cannot be recomputed any more, and says so
  await page.click('#output .tok[data-pos="12"]');
  await page.click('#output .tok[data-pos="12"]');
  assert.deepEqual(await chart(), before);
  await page.click('#output .tok[data-pos="20"]');
  assert.match(await page.textContent("#insp-selected"), /no longer holds this text \(the model was replaced/);
  // and the new model generates with the inspector open
  await generate({ temperature: 0, steps: 30 });
  await page.click('#output .tok[data-pos="12"]');
  assert.deepEqual(await chart(), before, "same weights, same distribution");
});

test("no uncaught errors", () => {
  assert.deepEqual(pageErrors.map(String), []);
});

// End-to-end tests of the views for understanding the model, in headless
// Chromium, as a learner uses them: choosing the next token yourself (with
// Undo), the logit lens, and the walkthrough's code beside the numbers
// (with one number followed back to its inputs). Screenshots go to
// tests/e2e/out/understand-*.png.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { goldenCases, openReadyPage } from "./harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const www = path.join(root, "www");
const out = path.join(here, "out");

let server, browser, page, pageErrors;

before(async () => {
  fs.mkdirSync(out, { recursive: true });
  ({ server, browser, page, pageErrors } = await openReadyPage(www, { width: 1200, height: 1100 }));
});

after(async () => {
  await browser?.close();
  await server?.close();
});

// a sampled golden case of run.c (stories260K): temperature 1, top-p 0.9
const golden = goldenCases(root).find((c) => c.model === "stories260K.bin" && c.prompt === "Once upon a time" && c.seed === 1337);

async function settings({ prompt, temperature, topp, seed, steps = 256 }) {
  await page.evaluate(() => document.querySelector("#stop-button:enabled")?.click());
  await page.fill("#prompt", prompt);
  await page.fill("#temperature", String(temperature));
  await page.fill("#topp", String(topp));
  await page.fill("#seed", String(seed));
  await page.fill("#steps", String(steps));
}

const tokens = () => page.evaluate(() => [...window.llama2Debug.model().tokens()]);
const outputText = () => page.locator("#output").textContent();
/** The choose list as data: [{ token, text, pick }]. */
const candidates = () =>
  page.$$eval("#choose-list li", (lis) => lis.map((li) => ({
    token: Number(li.querySelector("button").dataset.token),
    text: li.querySelector(".tt").textContent,
    pick: li.classList.contains("pick"),
  })));

const setInspector = async (open) => {
  const expanded = await page.getAttribute("#inspector-toggle", "aria-expanded");
  if ((expanded === "true") !== open) await page.click("#inspector-toggle");
};

test("choose: taking the sampler's pick every time gives run.c's tokens", async () => {
  assert.ok(golden, "the golden case is in tests/golden/runc_parity.jsonl");
  await settings(golden);
  await page.click("#choose-start");
  await page.waitForSelector("#choose-body:not([hidden])");
  const promptLength = await page.evaluate(() => window.llama2Debug.model().promptLength);
  // the newest token is the sampler's pick, outlined, and marked in the list
  let toks = await tokens();
  assert.equal(toks.length, promptLength + 1);
  assert.deepEqual(toks, golden.tokens.slice(0, toks.length));
  assert.equal(await page.locator("#output .tok.tentative").count(), 1);
  const list = await candidates();
  assert.equal(list.filter((c) => c.pick).length, 1);
  assert.equal(list.find((c) => c.pick).token, toks.at(-1));
  for (let i = 0; i < 40; i++) await page.click("#choose-sampler");
  toks = await tokens();
  assert.equal(toks.length, promptLength + 41);
  assert.deepEqual(toks, golden.tokens.slice(0, toks.length));
  assert.ok(golden.stdout.startsWith(await outputText()), "the text so far is run.c's");
});

test("choose: another candidate changes the text from there on; Undo restores it", async () => {
  await settings(golden);
  await page.click("#choose-start");
  for (let i = 0; i < 10; i++) await page.click("#choose-sampler");
  const before = await tokens();
  const textBefore = await outputText();
  const list = await candidates();
  const other = list.find((c) => !c.pick);
  await page.click(`#choose-list button[data-token="${other.token}"]`);
  const after = await tokens();
  // the prefix is kept, the chosen token replaces the pick, and a new pick follows
  assert.deepEqual(after.slice(0, before.length - 1), before.slice(0, -1));
  assert.equal(after[before.length - 1], other.token);
  assert.equal(after.length, before.length + 1);
  assert.equal(await page.locator("#output .tok.chosen").count(), 1);
  assert.notEqual(await outputText(), textBefore);
  await page.screenshot({ path: path.join(out, "understand-choose.png"), fullPage: true });
  // Undo: back to the state before the choice, the same pick (the random draws were rewound)
  await page.click("#choose-undo");
  assert.deepEqual(await tokens(), before);
  assert.equal(await outputText(), textBefore);
  assert.equal(await page.locator("#output .tok.chosen").count(), 0);
  assert.deepEqual(await candidates(), list);
  // and taking the pick again goes on as run.c
  for (let i = 0; i < 5; i++) await page.click("#choose-sampler");
  const toks = await tokens();
  assert.deepEqual(toks, golden.tokens.slice(0, toks.length));
});

test("choose: a typed word is taken when it is one token, refused with the reason otherwise", async () => {
  await settings({ ...golden, temperature: 0 });
  await page.click("#choose-start");
  const promptLength = await page.evaluate(() => window.llama2Debug.model().promptLength);
  // a word of the vocabulary: the model's own piece for some token with a leading space
  const word = await page.evaluate(() => {
    const m = window.llama2Debug.model();
    for (let t = 3; t < 512; t++) {
      const p = m.piece(t);
      if (/^ [a-z]{3,}$/.test(p)) return { token: t, text: p.slice(1) };
    }
    return null;
  });
  await page.fill("#choose-word-input", word.text);
  await page.click("#choose-word-button");
  const toks = await tokens();
  assert.equal(toks[promptLength], word.token);
  await page.fill("#choose-word-input", "extraordinarily");
  await page.click("#choose-word-button");
  assert.match(await page.textContent("#choose-status"), /"extraordinarily" is \d+ tokens in this vocabulary .*not one/);
  assert.deepEqual(await tokens(), toks, "nothing was taken");
});

test("choose: Stop choosing ends the mode; the page generates as before", async () => {
  await page.click("#choose-stop");
  assert.equal(await page.isHidden("#choose-body"), true);
  assert.equal(await page.locator("#output .tok.tentative").count(), 0);
  await settings(golden);
  await page.click("#generate-button");
  await page.waitForFunction(() => document.querySelector("#stop-button").disabled, null, { timeout: 60_000 });
  assert.equal(await outputText(), golden.stdout);
  assert.deepEqual(pageErrors, []);
});

test("logit lens: each layer's top 5 for a position, the last layer equal to the output", async () => {
  await setInspector(true);
  await settings({ prompt: "Once upon a time", temperature: 0, topp: 0.9, seed: 1, steps: 40 });
  await page.click("#generate-button");
  await page.waitForFunction(() => document.querySelector("#stop-button").disabled, null, { timeout: 60_000 });
  await page.click('#output .tok[data-pos="12"]');
  assert.equal(await page.isHidden("#lens-body"), true, "closed until asked");
  await page.click("#lens-toggle");
  await page.waitForSelector("#lens-table tbody tr");
  const rows = await page.$$eval("#lens-table tbody tr", (trs) => trs.map((tr) => ({
    label: tr.cells[0].textContent,
    tokens: [...tr.querySelectorAll("td .tt")].map((t) => t.textContent),
    probs: [...tr.querySelectorAll("td .p")].map((p) => Number(p.textContent)),
  })));
  const layers = await page.evaluate(() => window.llama2Debug.model().config().n_layers);
  assert.equal(rows.length, layers + 1);
  assert.deepEqual(rows.map((r) => r.label), [...Array.from({ length: layers }, (_, i) => String(i)), "output"]);
  for (const r of rows) {
    assert.equal(r.tokens.length, 5);
    assert.ok(r.probs.every((p, i) => i === 0 || p <= r.probs[i - 1]), "most likely first");
  }
  assert.deepEqual(rows.at(-2), { ...rows.at(-1), label: String(layers - 1) }, "the last layer is the output");
  // the output row is the model's own prediction: its top is the token that came (greedy)
  const toks = await tokens();
  const next = await page.evaluate((t) => window.llama2Debug.model().piece(t), toks[13]);
  assert.equal(rows.at(-1).tokens[0], next.replace(/^ /, "␣"));
  assert.match(await page.textContent("#lens-note"), /^Position 12, input .* is the top one from layer \d on \(of 5\)/);
  await page.locator("#insp-lens").screenshot({ path: path.join(out, "understand-lens.png") });
  // another position, another table
  await page.click('#output .tok[data-pos="20"]');
  await page.waitForFunction(() => document.querySelector("#lens-note").textContent.startsWith("Position 20,"));
  await page.click("#lens-toggle");
  assert.deepEqual(pageErrors, []);
});

test("walkthrough: each vector shows the lines of our source that made it, and one number followed to its inputs", async () => {
  await setInspector(true);
  await settings({ prompt: "Once upon a time", temperature: 0, topp: 0.9, seed: 1, steps: 20 });
  await page.selectOption("#walk-layer", "0");
  for (let i = 0; i < 3; i++) await page.click("#walk-step");
  const names = await page.$$eval("#walk-table tbody button.stage", (bs) => bs.map((b) => b.textContent));
  assert.equal(names.length, 14);
  const sources = new Map();
  const lineOf = (file, n) => {
    if (!sources.has(file)) sources.set(file, fs.readFileSync(path.join(root, file), "utf8").split("\n"));
    return sources.get(file)[n - 1];
  };
  for (let i = 0; i < names.length; i++) {
    await page.click(`#walk-table tbody tr:nth-child(${i + 1}) button.stage`);
    await page.waitForFunction((n) => document.querySelector("#walk-code-title").textContent.startsWith(n + " ") &&
      document.querySelector("#walk-snippets figure"), names[i]);
    const figures = await page.$$eval("#walk-snippets figure", (fs) => fs.map((f) => ({
      where: f.querySelector("figcaption code").textContent,
      lines: [...f.querySelectorAll(".line")].map((l) => ({
        n: Number(l.dataset.line),
        text: [...l.childNodes].filter((c) => !c.classList?.contains("ln")).map((c) => c.textContent).join("").replace(/\n$/, ""),
        hl: l.classList.contains("hl"),
        marks: [...l.querySelectorAll("mark")].map((m) => m.textContent),
      })),
    })));
    assert.ok(figures.length >= 1, `${names[i]}: some code`);
    for (const f of figures) {
      const [, file, h0, h1] = f.where.match(/^(src\/[\w/]+\.rs):(\d+)(?:–(\d+))?$/);
      for (const l of f.lines) assert.equal(l.text, lineOf(file, l.n), `${names[i]}: ${file}:${l.n} as in the source`);
      const hl = f.lines.filter((l) => l.hl).map((l) => l.n);
      assert.deepEqual([hl[0], hl.at(-1)], [Number(h0), Number(h1 ?? h0)], `${names[i]}: the caption's lines are the highlighted ones`);
      assert.ok(f.lines.some((l) => l.marks.length), `${names[i]}: the names it talks about are marked`);
    }
  }
  // follow q[3] of layer 0: the matmul row of wq, its terms and the RoPE rotation that made the value
  await page.click('#walk-table tbody button.stage:text-is("q")');
  const shown = await page.$$eval("#walk-values button", (bs) => bs.map((b) => b.textContent));
  await page.click("#walk-values button:nth-child(4)");
  const title = await page.textContent("#walk-follow h5");
  assert.match(title, /^q\[3\] = (-?[\d.]+(e-?\d+)?) \(layer 0\)$/);
  assert.equal(Number(title.split(" = ")[1].split(" ")[0]).toFixed(3), shown[3].split(" ")[1]);
  const formula = await page.textContent("#walk-follow .formula");
  assert.match(formula, /q\[3\] = Σ_j wq\[3, j\] × xb\[j\]/);
  assert.match(formula, /RoPE rotates the pair \(2, 3\)/);
  assert.equal(await page.locator("#walk-follow tbody tr").count(), 12);
  await page.click("#walk-follow button:text-is('Show all 64 terms')");
  assert.equal(await page.locator("#walk-follow tbody tr").count(), 64);
  await page.locator("#insp-walk").screenshot({ path: path.join(out, "understand-walkthrough-code.png") });
  // a logit: the classifier's row of the token, equal to the engine's logit
  await page.click('#walk-table tbody button.stage:text-is("logits")');
  await page.fill("#follow-index", "5");
  await page.click("#follow-button");
  const logit = Number((await page.textContent("#walk-follow h5")).split(" = ")[1]);
  const engine = await page.evaluate(() => window.llama2Debug.model().logits()[5]);
  assert.equal(logit.toPrecision(5), engine.toPrecision(5));
  assert.match(await page.textContent("#walk-follow .formula"), /logits\[5\] = Σ_j wcls\[5, j\] × x\[j\]/);
  // an element past the end: a message, not a crash
  await page.fill("#follow-index", "512");
  await page.click("#follow-button");
  assert.match(await page.textContent("#walk-follow"), /pick an element from 0 to 511/);
  await page.click("#stop-button");
  assert.deepEqual(pageErrors, []);
});

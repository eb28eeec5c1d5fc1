// End-to-end tests of "Compare two settings" (www/compare.js) in headless
// Chromium, as a person uses it. The truth is run.c's: where the two
// settings first part is read off the golden token lists
// (tests/golden/runc_parity.jsonl), not off the page's own engine.
// Screenshot: tests/e2e/out/compare.png.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { dropRandom15M, generateThroughPage, goldenCases, openReadyPage } from "./harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const www = path.join(root, "www");
const out = path.join(here, "out");

// every pair of stories260K goldens with one prompt, A greedy and B sampled:
// greedy ignores the seed, so run.c's greedy run is A's at B's seed
const goldens = goldenCases(root).filter((c) => c.kind === "generate" && c.model === "stories260K.bin");
const pairs = goldens
  .filter((a) => a.temperature === 0)
  .flatMap((a) => goldens.filter((b) => b.temperature !== 0 && b.prompt === a.prompt).map((b) => ({ a, b })));

let server, browser, page, pageErrors;

before(async () => {
  fs.mkdirSync(out, { recursive: true });
  ({ server, browser, page, pageErrors } = await openReadyPage(www, { width: 1200, height: 1000 }));
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** Fill the Generate form's prompt, seed and steps and the panel's A and B, click Compare, wait for it to end. */
async function compare({ prompt = "Once upon a time", seed = 1, steps = 256, a, b }) {
  await page.fill("#prompt", prompt);
  await page.fill("#seed", String(seed));
  await page.fill("#steps", String(steps));
  await page.fill("#compare-a-temperature", String(a.temperature));
  await page.fill("#compare-a-topp", String(a.topp));
  await page.fill("#compare-b-temperature", String(b.temperature));
  await page.fill("#compare-b-topp", String(b.topp));
  await page.click("#compare-button");
  await page.waitForFunction(() => document.querySelector("#compare-stop").disabled &&
    !document.querySelector("#compare-button").disabled, null, { timeout: 60_000 });
}

/** One side's text and candidate list as data. */
const column = (s) =>
  page.evaluate((s) => {
    const box = document.querySelector(`#compare-${s}-text`);
    return {
      text: box.textContent,
      spans: [...box.children].map((el) => ({ tag: el.tagName, cls: el.className, pos: Number(el.dataset.pos),
        token: Number(el.dataset.token) })),
      shown: !document.querySelector(`#compare-${s}-figure`).hidden,
      caption: document.querySelector(`#compare-${s}-cands-title`).textContent,
      note: document.querySelector(`#compare-${s}-cands-note`).textContent,
      cands: [...document.querySelectorAll(`#compare-${s}-cands li`)].map((li) => ({
        token: Number(li.dataset.token),
        text: li.querySelector(".tt").textContent,
        prob: Number(li.querySelector(".p").textContent),
        kept: li.classList.contains("kept"),
        chosen: li.classList.contains("chosen"),
        other: li.classList.contains("other"),
        who: li.querySelector(".who").textContent,
      })),
    };
  }, s);

const firstDiff = (x, y) => {
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return i;
  return null;
};

test("the goldens give pairs that part", () => {
  assert.ok(pairs.length >= 3, `${pairs.length} pairs`);
});

for (const { a, b } of pairs) {
  test(`greedy vs t=${b.temperature} top-p ${b.topp} seed ${b.seed} on ${JSON.stringify(b.prompt)}: marked where run.c's tokens part`, async () => {
    const d = firstDiff(a.tokens, b.tokens); // token index; position d - 1 produced it
    assert.ok(d !== null, "the goldens part");
    await compare({ prompt: b.prompt, seed: b.seed, steps: b.steps, a, b });
    assert.equal(await page.isVisible("#compare-error"), false);
    const pos = d - 1;
    assert.equal(await page.getAttribute("#compare-results", "data-first-diff"), String(pos));
    const A = await column("a");
    const B = await column("b");
    // the texts are run.c's, token for token (A's golden covers its 256 steps)
    assert.deepEqual(B.spans.map((s) => s.token), b.tokens.slice(1), "B's tokens are run.c's");
    assert.equal(B.text, b.stdout);
    const n = Math.min(A.spans.length, a.tokens.length - 1);
    assert.deepEqual(A.spans.slice(0, n).map((s) => s.token), a.tokens.slice(1, n + 1), "A's tokens are run.c's");
    if (a.steps === b.steps) assert.equal(A.text, a.stdout);
    // one marked position in each, at d - 1: common before it, "after" past it
    for (const col of [A, B]) {
      const marked = col.spans.filter((s) => s.tag === "MARK");
      assert.equal(marked.length, 1);
      assert.equal(marked[0].pos, pos);
      assert.match(marked[0].cls, /\bdiff\b/);
      assert.ok(col.spans.slice(0, pos).every((s) => /\bsame\b/.test(s.cls)), "plain common prefix");
      assert.ok(col.spans.slice(pos + 1).every((s) => /\bafter\b/.test(s.cls)));
    }
    assert.equal(A.spans[pos].token, a.tokens[d]);
    assert.equal(B.spans[pos].token, b.tokens[d]);
    const summary = await page.textContent("#compare-summary");
    assert.match(summary, new RegExp(`^first differ at position ${pos}: A chose ".+", B chose ".+"$`));
    assert.equal(await page.textContent("#compare-status"), `Done: A then B, seed ${b.seed} for both.`);
    // both candidate lists, at that position, each pick marked
    for (const [col, name, mine, theirs] of [[A, "A", a.tokens[d], b.tokens[d]], [B, "B", b.tokens[d], a.tokens[d]]]) {
      assert.ok(col.shown);
      assert.equal(col.caption, `${name}'s candidates at position ${pos}`);
      assert.ok(col.cands.length >= 10);
      const chosen = col.cands.filter((c) => c.chosen);
      assert.equal(chosen.length, 1);
      assert.equal(chosen[0].token, mine);
      assert.ok(chosen[0].kept, "the pick was one the sampler could make");
      assert.match(chosen[0].who, new RegExp(`${name} chose`));
      const other = col.cands.find((c) => c.other);
      if (other) assert.equal(other.token, theirs);
      else assert.match(col.note, /ranks #\d+/);
      for (let i = 1; i < 10; i++) assert.ok(col.cands[i].prob <= col.cands[i - 1].prob);
    }
    // greedy: the top token, the only one it could pick
    assert.ok(A.cands[0].chosen);
    assert.equal(A.cands.filter((c) => c.kept).length, 1);
    assert.match(A.note, /^Greedy/);
    // the same logits on both sides: the same tokens in the same order
    assert.deepEqual(A.cands.slice(0, 10).map((c) => c.token), B.cands.slice(0, 10).map((c) => c.token));
    if (b.temperature === 1) {
      // greedy's are shown at temperature 1: then the very same probabilities
      assert.deepEqual(A.cands.slice(0, 10).map((c) => c.prob), B.cands.slice(0, 10).map((c) => c.prob));
    }
    if (b.topp > 0 && b.topp < 1) assert.match(B.note, /top-p nucleus/);
    else assert.ok(B.cands.every((c) => c.kept), "no top-p: every token could be drawn");
  });
}

test("the page after a comparison: its text can no longer continue; screenshot", async () => {
  const c = pairs.find((p) => p.b.prompt === "Once upon a time" && p.b.steps === 256);
  await compare({ prompt: c.b.prompt, seed: c.b.seed, steps: 40, a: c.a, b: c.b });
  assert.equal(await page.isDisabled("#continue-button"), true);
  await page.locator("#compare").screenshot({ path: path.join(out, "compare.png") });
});

test("same settings on both sides: they never differ", async () => {
  await compare({ seed: 7, steps: 60, a: { temperature: 0.8, topp: 0.9 }, b: { temperature: 0.8, topp: 0.9 } });
  assert.equal(await page.getAttribute("#compare-results", "data-first-diff"), "none");
  assert.match(await page.textContent("#compare-summary"), /^A and B never differ: the same 60 tokens/);
  for (const s of ["a", "b"]) {
    const col = await column(s);
    assert.equal(col.shown, false, "no candidates: there is no parting position");
    assert.equal(col.spans.filter((x) => x.tag === "MARK").length, 0);
    assert.equal(col.spans.length, 60);
  }
  assert.deepEqual((await column("a")).text, (await column("b")).text);
});

test("seed 0: one random seed for both, and the same truth as the engine's own runs", async () => {
  await compare({ seed: 0, steps: 80, a: { temperature: 0, topp: 0.9 }, b: { temperature: 1.2, topp: 0.95 } });
  const status = await page.textContent("#compare-status");
  const seed = Number(status.match(/seed (\d+)/)[1]);
  assert.ok(seed > 0);
  const pos = await page.getAttribute("#compare-results", "data-first-diff");
  const truth = await page.evaluate(([seed]) => {
    const a = window.llama2Debug.generate("Once upon a time", 0, 0.9, seed, 80);
    const b = window.llama2Debug.generate("Once upon a time", 1.2, 0.95, seed, 80);
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return i - 1;
    return "none";
  }, [seed]);
  assert.equal(pos, String(truth));
});

test("bad settings: a visible message; the page still generates afterwards", async () => {
  const cases = [
    [{ temperature: -1, topp: 0.9 }, /B's temperature must be 0 \(greedy\) or more/],
    [{ temperature: 1, topp: 1.5 }, /B's top-p must be from 0 to 1/],
    [{ temperature: "", topp: 0.9 }, /B's temperature must be a number/],
  ];
  for (const [b, message] of cases) {
    await page.fill("#compare-b-temperature", String(b.temperature));
    await page.fill("#compare-b-topp", String(b.topp));
    await page.click("#compare-button");
    assert.equal(await page.isVisible("#compare-error"), true);
    assert.match(await page.textContent("#compare-error"), message);
  }
  // the engine's own refusal (a seed that is not a whole number) shows there too
  await page.fill("#compare-b-temperature", "1");
  await page.fill("#compare-b-topp", "0.9");
  await page.fill("#seed", "1.5");
  await page.click("#compare-button");
  await page.waitForFunction(() => !document.querySelector("#compare-button").disabled);
  assert.match(await page.textContent("#compare-error"), /seed 1\.5 must be a whole number/);
  // a good run clears the message
  await compare({ seed: 3, steps: 30, a: { temperature: 0, topp: 0.9 }, b: { temperature: 1, topp: 0.9 } });
  assert.equal(await page.isVisible("#compare-error"), false);
  // and the main page generates run.c's text as before
  const golden = goldens.find((c) => c.prompt === "Once upon a time" && c.temperature === 1);
  assert.equal(await generateThroughPage(page, golden), golden.stdout);
  assert.equal(await page.isDisabled("#continue-button"), golden.tokens.at(-1) === 1);
});

test("with the inspector open: it records again afterwards, and picks in a new text work", async () => {
  await page.click("#inspector-toggle");
  assert.equal(await page.getAttribute("#inspector-toggle", "aria-expanded"), "true");
  await compare({ seed: 4, steps: 50, a: { temperature: 0, topp: 0.9 }, b: { temperature: 1, topp: 0.9 } });
  assert.equal(await page.evaluate(() => window.llama2Debug.inspecting()), true);
  await page.fill("#temperature", "0");
  await page.click("#generate-button");
  await page.waitForFunction(() => document.querySelector("#stop-button").disabled, null, { timeout: 60_000 });
  await page.click('#output .tok[data-pos="10"]');
  assert.match(await page.textContent("#insp-selected"), /^position 10 .*greedy/);
  assert.equal(await page.$$eval("#cand-list li", (l) => l.length), 10);
  await page.click("#inspector-toggle");
  assert.equal(await page.evaluate(() => window.llama2Debug.inspecting()), false);
});

test("a 32000-token model (random stories15M shape): lists and the mark where its own runs part", async () => {
  await dropRandom15M(page, "random15M.bin", 11);
  await compare({ seed: 9, steps: 24, a: { temperature: 0, topp: 0.9 }, b: { temperature: 1.5, topp: 1 } });
  assert.equal(await page.isVisible("#compare-error"), false);
  const pos = await page.getAttribute("#compare-results", "data-first-diff");
  const truth = await page.evaluate(() => {
    const a = window.llama2Debug.generate("Once upon a time", 0, 0.9, 9, 24);
    const b = window.llama2Debug.generate("Once upon a time", 1.5, 1, 9, 24);
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return i - 1;
    return "none";
  });
  assert.equal(pos, String(truth));
  if (pos !== "none") {
    for (const s of ["a", "b"]) {
      const col = await column(s);
      assert.ok(col.shown);
      assert.equal(col.cands.filter((c) => c.chosen).length, 1);
    }
  }
});

// (the stories15M shape's ~256 steps take a few seconds: the comparison is still running when clicked)
test("Generate while comparing stops the comparison; so does Stop, from the keyboard", async () => {
  await page.fill("#prompt", "Once upon a time");
  await page.fill("#steps", "0");
  await page.fill("#seed", "5");
  await page.fill("#temperature", "0");
  await page.click("#compare-button");
  assert.equal(await page.isDisabled("#compare-button"), true);
  await page.click("#generate-button");
  assert.match(await page.textContent("#compare-status"), /^Stopped: the page.s generation took the model/);
  assert.equal(await page.isDisabled("#compare-button"), false);
  assert.equal(await page.isDisabled("#compare-stop"), true);
  await page.waitForFunction(() => document.querySelector("#stop-button").disabled, null, { timeout: 60_000 });
  assert.ok((await page.textContent("#output")).startsWith("Once upon a time"), "the page's own text");
  // Compare, then Stop, with the keyboard alone
  await page.focus("#compare-button");
  await page.keyboard.press("Enter");
  assert.equal(await page.isDisabled("#compare-stop"), false);
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "compare-stop");
  await page.keyboard.press("Enter");
  assert.equal(await page.textContent("#compare-status"), "Stopped.");
  assert.equal(await page.isDisabled("#compare-button"), false);
  // the page generates again
  await page.fill("#steps", "20");
  await page.click("#generate-button");
  await page.waitForFunction(() => document.querySelector("#stop-button").disabled, null, { timeout: 60_000 });
  assert.equal(await page.$$eval("#output .tok", (s) => s.length), 20);
});

test("no uncaught errors", () => {
  assert.deepEqual(pageErrors.map(String), []);
});

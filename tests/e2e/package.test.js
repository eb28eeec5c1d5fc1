// The npm package (README, Embed it), as a user gets it: `./build.sh
// package` (PACKAGE_ONLY: the wasm already built), `npm install` of the
// tarball into a fresh project with no network (nothing but the tarball),
// the examples run in Node.js and in a page, `tsc --noEmit` over the
// examples against the declarations (and a wrong call that must fail it),
// and through the package, in the Worker and on the main thread: run.c's
// golden stories260K generations token for token, continue() equal to one
// uninterrupted run, a two-turn chat equal to the engine's chat mode,
// AbortSignal for runs and loads, bad arguments, and 20 load/dispose cycles
// of a 15M-shaped model with the wasm memory flat.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve } from "../../serve.mjs";
import { checkpointPath, makeCheckpoint } from "../../bench/make-checkpoints.mjs";
import { CHROMIUM_OPTIONS, goldenCases } from "./harness.mjs";
import { serveModels } from "./model-server.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const out = path.join(here, "out");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "llama2-package-"));
const app = path.join(tmp, "app");
const cases = goldenCases(root).filter((c) => c.kind === "generate" && c.model === "stories260K.bin");
const greedy = cases.find((c) => c.prompt === "Once upon a time" && c.temperature === 0);

let tarball, site, html, browser, page;
const pageErrors = [];

before(async () => {
  fs.mkdirSync(out, { recursive: true });
  execFileSync("bash", [path.join(root, "build.sh"), "package"], {
    env: { ...process.env, PACKAGE_ONLY: "1", PACKAGE_DIR: path.join(tmp, "npm") }, stdio: ["ignore", "ignore", "pipe"],
  });
  tarball = fs.readdirSync(path.join(tmp, "npm")).find((f) => f.endsWith(".tgz"));
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  // offline: nothing comes from a registry (the package has no dependencies)
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", path.join(tmp, "npm", tarball)], { cwd: app, stdio: "pipe" });
  for (const f of fs.readdirSync(path.join(root, "examples"))) fs.copyFileSync(path.join(root, "examples", f), path.join(app, f));
  fs.mkdirSync(path.join(app, "models"));
  for (const f of ["stories260K.bin", "tok512.bin", "tokenizer.bin"]) fs.copyFileSync(path.join(root, "www/models", f), path.join(app, "models", f));
  if (!fs.existsSync(checkpointPath("15M"))) makeCheckpoint("15M");
  fs.symlinkSync(checkpointPath("15M"), path.join(app, "models/random15M.bin"));
  site = await serve(app);
  // a host that answers with a web page where a model should be
  html = await serveModels({ "/model.bin": Buffer.alloc(1024) }, { html: true });
  browser = await chromium.launch(CHROMIUM_OPTIONS);
  page = await browser.newPage();
  page.on("pageerror", (e) => pageErrors.push(e));
  page.on("console", (m) => m.type() === "error" && pageErrors.push(new Error(m.text())));
  // the example page: its import map is what the tests below import "llama2-wasm" through
  await page.goto(`${site.url}/index.html`);
});

after(async () => {
  await browser?.close();
  await site?.close();
  await html?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("npm pack makes a tarball that installs offline and works in Node.js (the example)", () => {
  const size = fs.statSync(path.join(tmp, "npm", tarball)).size;
  console.log(`# ${tarball}: ${size} bytes`);
  const installed = JSON.parse(fs.readFileSync(path.join(app, "node_modules/llama2-wasm/package.json"), "utf8"));
  assert.equal(installed.name, "llama2-wasm");
  assert.deepEqual(installed.dependencies ?? {}, {});
  for (const f of ["index.d.ts", "LICENSE", "README.md", "lib/index.js", "lib/worker.js", "pkg/llama2_wasm_bg.wasm", "pkg-threads/llama2_wasm_bg.wasm"]) {
    assert.ok(fs.existsSync(path.join(app, "node_modules/llama2-wasm", f)), `${f} is in the package`);
  }
  const stdout = execFileSync("node", ["node.mjs"], { cwd: app, encoding: "utf8" });
  assert.match(stdout, /^stories260K\.bin: dim 64, 5 layers, 1 thread\n/);
  const story = stdout.split("\n").slice(1).join("\n").trimEnd();
  assert.ok(story.length > 200 && greedy.stdout.startsWith(story), `the greedy story, 120 positions: ${JSON.stringify(story)}`);
});

test("Node.js, through the package: every stories260K golden generation of run.c, token for token", () => {
  const script = `
    import { Llama2 } from "llama2-wasm";
    const cases = ${JSON.stringify(cases)};
    const llm = await Llama2.load({ checkpoint: "models/stories260K.bin", tokenizer: "models/tok512.bin" });
    const results = [];
    for (const c of cases) {
      const text = await llm.complete(c.prompt, { temperature: c.temperature, topp: c.topp, seed: c.seed, steps: c.steps });
      results.push({ text, tokens: await llm.tokens() });
    }
    console.log(JSON.stringify(results));`;
  fs.writeFileSync(path.join(app, "goldens.mjs"), script);
  const results = JSON.parse(execFileSync("node", ["goldens.mjs"], { cwd: app, encoding: "utf8" }));
  cases.forEach((c, i) => {
    assert.deepEqual(results[i].tokens, c.tokens, `tokens: ${c.prompt} t=${c.temperature} s=${c.seed}`);
    assert.equal(results[i].text, c.stdout);
  });
});

test("tsc --noEmit type-checks the examples against the package's declarations (and refuses a wrong call)", () => {
  const tsc = path.join(root, "node_modules/typescript/bin/tsc");
  const config = (files) => JSON.stringify({
    compilerOptions: {
      allowJs: true, checkJs: true, noEmit: true, strict: true, target: "es2022", module: "nodenext",
      moduleResolution: "nodenext", lib: ["es2022", "dom", "dom.iterable"], types: ["node"],
      typeRoots: [path.join(root, "node_modules/@types")],
    },
    files,
  });
  fs.writeFileSync(path.join(app, "tsconfig.json"), config(["page.js", "node.mjs"]));
  const ok = spawnSync("node", [tsc, "-p", "tsconfig.json"], { cwd: app, encoding: "utf8" });
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  fs.writeFileSync(path.join(app, "wrong.mjs"), `// @ts-check
import { Llama2 } from "llama2-wasm";
const llm = await Llama2.load({ checkpoint: "a.bin", tokenizer: "t.bin" });
for await (const piece of llm.generate(42, { temperature: "hot" })) console.log(piece.toFixed(2));
`);
  fs.writeFileSync(path.join(app, "tsconfig.wrong.json"), config(["wrong.mjs"]));
  const wrong = spawnSync("node", [tsc, "-p", "tsconfig.wrong.json"], { cwd: app, encoding: "utf8" });
  assert.notEqual(wrong.status, 0);
  assert.match(wrong.stdout, /wrong\.mjs\(4,[0-9]+\): error TS2345: Argument of type 'number' is not assignable to parameter of type 'string'/);
  assert.match(wrong.stdout, /'toFixed' does not exist on type 'string'/);
});

test("the example page prints the story, with the engine in a Worker", async () => {
  await page.waitForSelector("#story[data-done]", { timeout: 60_000 });
  const story = await page.locator("#story").textContent();
  assert.ok(story.length > 200 && greedy.stdout.startsWith(story), JSON.stringify(story));
  await page.screenshot({ path: path.join(out, "package-example.png") });
  assert.deepEqual(pageErrors.map((e) => e.message), []);
});

for (const worker of [true, false]) {
  const mode = worker ? "in its Worker" : "on the main thread";

  test(`${mode}: goldens token for token; continue() equals one run; a two-turn chat equals the engine's chat mode`, async () => {
    const got = await page.evaluate(async ([cases, worker]) => {
      const { Llama2, init, Model } = await import("llama2-wasm");
      const llm = await Llama2.load({ checkpoint: "models/stories260K.bin", tokenizer: "models/tok512.bin", worker });
      const goldens = [];
      for (const c of cases) {
        const text = await llm.complete(c.prompt, { temperature: c.temperature, topp: c.topp, seed: c.seed, steps: c.steps });
        goldens.push({ text, tokens: await llm.tokens() });
      }
      // continue: 40 positions, then 60 more, against 100 at once (sampled, so the RNG must carry on)
      const opts = { temperature: 0.8, topp: 0.9, seed: 7 };
      const first = await llm.generate("Once upon a time", { ...opts, steps: 40 }).text();
      const rest = await llm.continue({ steps: 60 }).text();
      const split = await llm.tokens();
      const whole = await llm.generate("Once upon a time", { ...opts, steps: 100 }).text();
      const once = await llm.tokens();
      // chat: two turns through the package, and through the low-level Model.
      // stories260K never ends a turn (it was not trained to produce EOS): a
      // copy whose classifier's EOS row is the row of "." ends turns where a
      // full stop could come (as tests/extend.rs does; seed 6: answers in both)
      await init();
      const bytes = async (u) => new Uint8Array(await (await fetch(u)).arrayBuffer());
      const [ckpt, tok] = [await bytes("models/stories260K.bin"), await bytes("models/tok512.bin")];
      const probe = new Model(ckpt, tok, false);
      // (the piece ".", not the byte token <0x2E> that also shows as ".")
      const dot = Array.from({ length: 512 }, (_, t) => t).findLast((t) => probe.piece(t) === ".");
      const dim = probe.config().dim;
      probe.free();
      const embedding = new Float32Array(ckpt.buffer.slice(28, 28 + 512 * dim * 4));
      embedding.copyWithin(2 * dim, dot * dim, (dot + 1) * dim);
      const ends = new Uint8Array(ckpt.length + embedding.byteLength);
      ends.set(ckpt);
      new DataView(ends.buffer).setInt32(20, -512, true); // a separate classifier, appended
      ends.set(new Uint8Array(embedding.buffer), ckpt.length);
      const chatty = await Llama2.load({ checkpoint: ends, tokenizer: tok, worker });
      const chatOpts = { system: "be kind", temperature: 1.0, topp: 0.9, seed: 6, steps: 0 };
      const turns = [await chatty.chat("Tell me a story", chatOpts).text(), await chatty.chat("And then?").text()];
      await chatty.dispose();
      const m = new Model(ends, tok, false);
      m.startChat(chatOpts.system, chatOpts.temperature, chatOpts.topp, chatOpts.seed, 0);
      const engine = [];
      for (const msg of ["Tell me a story", "And then?"]) {
        m.chatUser(msg);
        let t = "";
        for (let p; (p = m.step()) !== undefined;) t += p;
        engine.push(t);
      }
      m.free();
      // the inspector's data, opted in
      const off = await llm.inspect("topk").then(() => "resolved", (e) => e.message);
      const insp = await Llama2.load({ checkpoint: "models/stories260K.bin", tokenizer: "models/tok512.bin", worker, inspect: true });
      await insp.complete("Once upon a time", { temperature: 0, steps: 12 });
      const inspected = {
        topk: await insp.inspect("topk", { k: 5 }),
        attention: await insp.inspect("attention", { layer: 0, head: 0 }),
        timings: await insp.inspect("timings"),
        earlier: await insp.inspect("topk", { k: 3, pos: 4 }),
      };
      await insp.dispose();
      const info = llm.info;
      await llm.dispose();
      return { goldens, first, rest, whole, split, once, turns, engine, off, inspected,
        info: { worker: info.worker, dim: info.dim, name: info.name } };
    }, [cases, worker]);
    assert.deepEqual(got.info, { worker, dim: 64, name: "stories260K.bin" });
    cases.forEach((c, i) => {
      assert.deepEqual(got.goldens[i].tokens, c.tokens, `tokens: ${c.prompt} t=${c.temperature} s=${c.seed}`);
      assert.equal(got.goldens[i].text, c.stdout);
    });
    assert.deepEqual(got.split, got.once, "continue() after 40 positions = one run of 100");
    assert.equal(got.first + got.rest, got.whole);
    assert.ok(got.rest.length > 0);
    assert.deepEqual(got.turns, got.engine, "the package's chat = the engine's chat mode");
    assert.ok(got.turns.every((t) => t.length > 0));
    assert.match(got.off, /the inspector is off: load with \{ inspect: true \}/);
    const { topk, attention, timings, earlier } = got.inspected;
    assert.equal(topk.candidates.length, 5);
    assert.ok(topk.candidates.every((c, i) => i === 0 || c.prob <= topk.candidates[i - 1].prob), "sorted");
    assert.equal(attention.length, topk.pos + 1);
    assert.ok(Math.abs(attention.reduce((a, b) => a + b, 0) - 1) < 1e-5, "attention sums to 1");
    assert.ok(timings.total > 0);
    assert.equal(earlier.pos, 4);
    assert.equal(earlier.candidates.length, 3);
  });

  test(`${mode}: an AbortSignal stops a generation within one step and a load within one chunk; bad arguments are clear errors`, async () => {
    const got = await page.evaluate(async ([worker, htmlUrl]) => {
      const { Llama2 } = await import("llama2-wasm");
      const settle = (p) => p.then(() => "resolved", (e) => `${e.name}: ${e.message}`);
      const llm = await Llama2.load({ checkpoint: "models/stories260K.bin", tokenizer: "models/tok512.bin", worker });
      // a generation aborted after its 5th piece
      const controller = new AbortController();
      let pieces = 0;
      let after = 0;
      let error = "";
      try {
        for await (const piece of llm.generate("Once upon a time", { temperature: 0, steps: 200, signal: controller.signal })) {
          if (controller.signal.aborted) after++;
          if (++pieces === 5) controller.abort();
          void piece;
        }
      } catch (e) {
        error = `${e.name}: ${e.message}`;
      }
      const tokensAtAbort = (await llm.tokens()).length;
      // a load aborted at its first chunk (a 15M-shaped checkpoint, 61 MB)
      const loadAbort = new AbortController();
      let chunks = 0;
      const load = await settle(Llama2.load({
        checkpoint: "models/random15M.bin", tokenizer: "models/tokenizer.bin", worker, signal: loadAbort.signal,
        onProgress: () => (chunks++, loadAbort.abort()),
      }));
      const bad = {};
      const tries = {
        noOptions: () => Llama2.load(),
        noTokenizer: () => Llama2.load({ checkpoint: "models/stories260K.bin" }),
        numberCheckpoint: () => Llama2.load({ checkpoint: 42, tokenizer: "models/tok512.bin", worker }),
        htmlUrl: () => Llama2.load({ checkpoint: htmlUrl, tokenizer: "models/tok512.bin", worker }),
        notFound: () => Llama2.load({ checkpoint: "models/nothing.bin", tokenizer: "models/tok512.bin", worker }),
        threads: () => Llama2.load({ checkpoint: "models/stories260K.bin", tokenizer: "models/tok512.bin", threads: 0.5 }),
        nanTemperature: () => llm.complete("x", { temperature: NaN }),
        negativeSteps: () => llm.complete("x", { steps: -1 }),
        numberPrompt: () => llm.complete(42),
        stringSeed: () => llm.complete("x", { seed: "7" }),
        badIds: () => llm.decode([1, "two"]),
        idsOutside: () => llm.decode([1, 99999]),
        continueIdle: async () => {
          const other = await Llama2.load({ checkpoint: "models/stories260K.bin", tokenizer: "models/tok512.bin", worker });
          try {
            return await other.continue().text();
          } finally {
            await other.dispose();
          }
        },
      };
      for (const [name, fn] of Object.entries(tries)) bad[name] = await settle(Promise.resolve().then(fn));
      // and the model still works
      const still = await llm.complete("Once upon a time", { temperature: 0, steps: 20 });
      await llm.dispose();
      const disposed = await settle(llm.complete("x"));
      return { pieces, after, error, tokensAtAbort, load, chunks, bad, still, disposed };
    }, [worker, `${html.url}/model.bin`]);
    assert.equal(got.error, "AbortError: the generation was aborted");
    assert.equal(got.after, 0, "no piece after the abort");
    // the Worker computes at most 4 pieces ahead of the caller (www/lib/worker.js AHEAD), then stops within a step
    const ahead = worker ? 4 : 0;
    assert.ok(got.tokensAtAbort <= got.pieces + ahead + 2, `${got.tokensAtAbort} tokens for ${got.pieces} pieces`);
    assert.equal(got.load, "AbortError: the load was aborted");
    assert.equal(got.chunks, 1, "no chunk read after the abort");
    const b = got.bad;
    assert.match(b.noOptions, /^TypeError: Llama2.load needs an options object, not undefined/);
    assert.match(b.noTokenizer, /^TypeError: Llama2.load: `tokenizer` is required/);
    assert.match(b.numberCheckpoint, /checkpoint must be a URL, a File or Blob, bytes .* not a number/);
    assert.match(b.htmlUrl, /model\.bin gave a web page \(HTML\), not a model file/);
    assert.match(b.notFound, /nothing\.bin was not found at .* \(HTTP 404\)/);
    assert.match(b.threads, /^TypeError: threads must be a whole number, not 0\.5/);
    assert.match(b.nanTemperature, /^TypeError: temperature must be a number, not number NaN/);
    assert.match(b.negativeSteps, /^TypeError: steps must be at least 0, not -1/);
    assert.match(b.numberPrompt, /^TypeError: prompt must be a string, not number 42/);
    assert.match(b.stringSeed, /^TypeError: seed must be a number, not a string/);
    assert.match(b.badIds, /tokens\[1\] must be a token id/);
    assert.match(b.idsOutside, /token 99999 \(at index 1\) is not in the vocabulary/);
    assert.match(b.continueIdle, /nothing to continue/);
    assert.ok(greedy.stdout.startsWith(got.still), "the model still generates after every refusal");
    assert.match(got.disposed, /this Llama2 was disposed/);
  });

  test(`${mode}: 20 load/dispose cycles of a 15M-shaped model leave the wasm memory flat; time to first token`, async () => {
    const got = await page.evaluate(async (worker) => {
      const { Llama2 } = await import("llama2-wasm");
      const memory = [];
      const firstToken = [];
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        const llm = await Llama2.load({ checkpoint: "models/random15M.bin", tokenizer: "models/tokenizer.bin", worker });
        const it = llm.generate("Once upon a time", { temperature: 0, steps: 8 })[Symbol.asyncIterator]();
        await it.next();
        firstToken.push(performance.now() - t0);
        await it.return();
        memory.push(await llm.memoryBytes());
        await llm.dispose();
      }
      return { memory, firstToken };
    }, worker);
    const mb = got.memory.map((b) => (b / 2 ** 20).toFixed(1));
    const ms = got.firstToken.map((t) => t.toFixed(0));
    console.log(`# ${mode}: wasm memory per cycle (MiB) ${mb.join(" ")}; load + first token (ms) ${ms.join(" ")}`);
    // memory may settle once (the allocator's layout); it must not grow with every cycle
    assert.equal(got.memory[19], got.memory[2], `memory: ${mb}`);
  });
}

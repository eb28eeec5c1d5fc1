// The model library, end to end (README, The model library): the menu's
// one click (download, verify, store, run), loading from storage on the next
// visit without the network, resuming a cut download with Range, Cancel,
// a damaged stored copy refused and fetched again, every download failure's
// message with the current model still working, Delete giving the space
// back, and dropped files kept on the device. The "Hugging Face" here is
// tests/e2e/model-server.mjs serving a random-weight checkpoint of the
// stories15M shape and the real tokenizer.bin under the same paths
// (`?models=` points the page at it).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve } from "../../serve.mjs";
import { checkpointPath, makeCheckpoint } from "../../bench/make-checkpoints.mjs";
import { CHROMIUM_OPTIONS } from "./harness.mjs";
import { serveModels } from "./model-server.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const out = path.join(here, "out");
const BASE = "/karpathy/tinyllamas/resolve/main/";
const CKPT = `${BASE}stories15M.bin`;
const TOK = `${BASE}tokenizer.bin`;

let site, models, refusing, context, page, profile, size;
const pageErrors = [];

before(async () => {
  fs.mkdirSync(out, { recursive: true });
  if (!fs.existsSync(checkpointPath("15M"))) makeCheckpoint("15M");
  size = fs.statSync(checkpointPath("15M")).size;
  models = await serveModels({
    [CKPT]: checkpointPath("15M"),
    [TOK]: path.join(root, "www/models/tokenizer.bin"),
    [`${BASE}other.bin`]: path.join(root, "www/models/stories260K.bin"), // for "From a URL…"
    // a GGUF file (8 MB), and stories15M cut short: refused by their first bytes
    [`${BASE}wrong.bin`]: Buffer.concat([Buffer.from("GGUF\x03\0\0\0"), Buffer.alloc(8 << 20)]),
    [`${BASE}short.bin`]: fs.readFileSync(checkpointPath("15M")).subarray(0, 30 << 20),
  });
  // a second origin that sends no CORS header: browsers refuse its files to pages of other sites
  refusing = await serveModels({ [CKPT]: checkpointPath("15M") }, { cors: false });
  site = await serve(path.join(root, "www"));
  profile = fs.mkdtempSync(path.join(os.tmpdir(), "llama2-library-"));
  context = await chromium.launchPersistentContext(profile, { ...CHROMIUM_OPTIONS, viewport: { width: 1200, height: 1000 } });
  page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => pageErrors.push(e));
  await open();
});

after(async () => {
  await context?.close();
  await site?.close();
  await models?.close();
  await refusing?.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
});

/** (Re)open the page pointed at the model server; resolves when a model is ready. */
async function open() {
  await page.goto(`${site.url}/?models=${encodeURIComponent(models.url + BASE)}`);
  await ready();
}

const ready = () => page.waitForFunction(() => !document.querySelector("#generate-button").disabled, null, { timeout: 60_000 });
const card = (field) => page.locator(`#card [data-field="${field}"]`).textContent();
const errorText = async () => ((await page.locator("#error").isHidden()) ? "" : page.locator("#error-text").textContent());
const stored = () => page.evaluate(() => window.llama2Debug.storedModels());
const modelBytes = () => models.bytesSent(CKPT);

async function waitForCard(name, timeout = 60_000) {
  await page.waitForFunction(
    (n) => document.querySelector('#card [data-field="name"]').textContent === n || !document.querySelector("#error").hidden,
    name, { timeout });
  assert.equal(await errorText(), "", "no error");
  assert.equal(await card("name"), name);
}

async function waitForError(re, timeout = 30_000) {
  const shown = () => page.locator("#error-text").textContent();
  await page.waitForFunction(
    ([src, flags]) => !document.querySelector("#error").hidden && new RegExp(src, flags).test(document.querySelector("#error-text").textContent),
    [re.source, re.flags], { timeout }).catch(async (e) => {
    throw new Error(`waited for ${re}, the page says: ${JSON.stringify(await shown())}`, { cause: e });
  });
  return shown();
}

/** A short greedy generation through the page: its text. */
async function generate(steps = 24) {
  await page.fill("#prompt", "Once upon a time");
  await page.fill("#temperature", "0");
  await page.fill("#steps", String(steps));
  await page.click("#generate-button");
  await page.waitForFunction(() => document.querySelector("#stop-button").disabled, null, { timeout: 60_000 });
  const text = await page.locator("#output").textContent();
  assert.ok(text.length > "Once upon a time".length, `generated: ${JSON.stringify(text)}`);
  return text;
}

async function clickMenu(id) {
  await page.click(`[data-model="${id}"]`);
}

/** Wait until the stored record of `id` is complete (a download that ends with a model already shown). */
async function waitForStored(id) {
  for (const t0 = Date.now(); Date.now() - t0 < 60_000; await page.waitForTimeout(100)) {
    if ((await stored()).find((r) => r.id === id)?.complete) return;
    assert.equal(await errorText(), "", "no error");
  }
  assert.fail(`${id} was not stored within 60 s`);
}

/** Load the built-in model (so that the card changes when a stored one loads next). */
async function runBuiltIn() {
  await clickMenu("stories260K");
  await waitForCard("stories260K.bin");
}

async function deleteStored(name) {
  const before = (await stored()).length;
  await page.click(`#stored li[data-id="${name}"] button:has-text("Delete")`);
  await page.waitForFunction((n) => document.querySelectorAll("#stored li").length < n || document.querySelector("#stored").hidden, before);
}

/** A port nothing listens on (one that was free a moment ago). */
async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function fromUrl(url) {
  await page.fill("#url-input", url);
  await page.click('#url-form button[type="submit"]');
}

test("one click downloads, verifies, stores and runs stories15M; the next visit loads it from storage with no request", async () => {
  assert.match(await page.locator('[data-model="stories15M"]').textContent(), /stories15M.*60\.8 MB.*download/);
  await page.screenshot({ path: path.join(out, "library-menu.png") });
  const t0 = Date.now();
  await clickMenu("stories15M");
  await waitForCard("stories15M.bin");
  const downloadMs = Date.now() - t0;
  assert.equal(await card("tokenizer"), "tokenizer.bin");
  const records = await stored();
  const ckpt = records.find((r) => r.id === "stories15M.bin");
  assert.equal(ckpt.complete, true);
  assert.equal(ckpt.size, size);
  assert.match(ckpt.sha256, /^[0-9a-f]{64}$/);
  assert.equal(ckpt.format, "legacy v0, fp32");
  assert.equal(records.find((r) => r.id === "tokenizer.bin").complete, true);
  assert.equal(modelBytes(), size, "downloaded once, whole");
  const first = await generate();
  assert.match(await page.locator("#stored").innerText(), /stories15M\.bin\s+60\.8 MB/);
  await page.screenshot({ path: path.join(out, "library-stored.png"), fullPage: true });

  // the next visit: the stored model loads by itself, no request for it or its tokenizer
  const requestsBefore = models.requests.length;
  const t1 = Date.now();
  await open();
  await waitForCard("stories15M.bin");
  const storageMs = Date.now() - t1;
  assert.equal(models.requests.length, requestsBefore, "no request to the model server");
  assert.equal(await generate(), first, "the same model, the same greedy text");
  // and a click on it in the menu runs it from storage too
  await clickMenu("stories260K");
  await waitForCard("stories260K.bin");
  await clickMenu("stories15M");
  await waitForCard("stories15M.bin");
  assert.equal(models.requests.length, requestsBefore, "still no request");
  console.log(`# stories15M shape (${size} bytes): download+store+load ${downloadMs} ms, reload from storage ${storageMs} ms`);
});

test("a download cut mid-file resumes with Range: less than 1.5x the file is fetched", async () => {
  await runBuiltIn();
  await deleteStored("stories15M.bin");
  const sentBefore = modelBytes();
  const requestsBefore = models.requests.length;
  models.set({ cutAfter: Math.floor(size * 0.6) });
  await clickMenu("stories15M");
  await waitForCard("stories15M.bin");
  const fetched = modelBytes() - sentBefore;
  const ranged = models.requests.slice(requestsBefore).filter((r) => r.path === CKPT && r.status === 206);
  assert.ok(ranged.length >= 1, `a Range request continued the download: ${JSON.stringify(models.requests.slice(requestsBefore))}`);
  assert.ok(fetched < 1.5 * size, `fetched ${fetched} bytes for a ${size}-byte file`);
  assert.equal((await stored()).find((r) => r.id === "stories15M.bin").complete, true);
  await generate();
});

test("Cancel stops the network within a second and leaves nothing marked complete", async () => {
  await deleteStored("stories15M.bin");
  models.set({ bytesPerSecond: 4 << 20 });
  try {
    await clickMenu("stories15M");
    const cancel = page.locator('#progress button:has-text("Cancel")');
    await cancel.waitFor({ timeout: 10_000 });
    await page.waitForFunction(() => document.querySelector("#progress progress")?.value > 1 << 20);
    await cancel.click();
    const clicked = modelBytes();
    await page.waitForTimeout(1000);
    const atOneSecond = modelBytes();
    await page.waitForTimeout(1000);
    assert.equal(modelBytes(), atOneSecond, "no byte sent after the first second");
    assert.ok(atOneSecond - clicked < 4 << 20, `${atOneSecond - clicked} bytes after Cancel`);
    assert.match(await waitForError(/cancelled/), /the download of stories15M\.bin was cancelled/);
    const record = (await stored()).find((r) => r.id === "stories15M.bin");
    assert.ok(!record || record.complete === false, "not marked complete");
    assert.equal(await card("name"), "stories15M.bin", "the model loaded before keeps working");
    await generate();
  } finally {
    models.set({ bytesPerSecond: null });
  }
  // the kept part resumes on the next click
  const sentBefore = modelBytes();
  await clickMenu("stories15M");
  await waitForStored("stories15M.bin");
  assert.ok(modelBytes() - sentBefore < size, "resumed, not downloaded again from the start");
});

test("a download cut by closing the page continues where it stopped on the next visit", async () => {
  await runBuiltIn();
  await deleteStored("stories15M.bin");
  const sentBefore = modelBytes();
  models.set({ bytesPerSecond: 8 << 20 });
  try {
    await clickMenu("stories15M");
    await page.waitForFunction(() => document.querySelector("#progress progress")?.value > 16 << 20, null, { timeout: 20_000 });
  } finally {
    models.set({ bytesPerSecond: null });
  }
  const requestsBefore = models.requests.length;
  await open(); // the page goes away mid-download and comes back
  const partial = (await stored()).find((r) => r.id === "stories15M.bin");
  assert.equal(partial.complete, false);
  assert.ok(partial.stored > 16 << 20, `${partial.stored} bytes kept`);
  assert.match(await page.locator('[data-model="stories15M"]').textContent(), /\d+% downloaded/);
  await clickMenu("stories15M");
  await waitForCard("stories15M.bin");
  const resumed = models.requests.slice(requestsBefore).find((r) => r.path === CKPT);
  assert.equal(resumed.status, 206);
  assert.match(resumed.range, /^bytes=\d+-$/);
  assert.ok(Number(/\d+/.exec(resumed.range)[0]) > 16 << 20, resumed.range);
  const fetched = modelBytes() - sentBefore;
  assert.ok(fetched < 1.5 * size, `fetched ${fetched} bytes for a ${size}-byte file`);
  await generate();
});

test("a stored copy whose bytes were altered is refused and downloaded again", async () => {
  await runBuiltIn();
  // flip one byte of the stored weights, as a damaged disk would
  await page.evaluate(async () => {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle("models");
    const handle = await dir.getFileHandle("stories15M.bin");
    const file = await handle.getFile();
    const at = 5_000_000;
    const byte = new Uint8Array(await file.slice(at, at + 1).arrayBuffer());
    const w = await handle.createWritable({ keepExistingData: true });
    await w.write({ type: "write", position: at, data: new Uint8Array([byte[0] ^ 0x40]) });
    await w.close();
  });
  const sentBefore = modelBytes();
  await clickMenu("stories15M");
  await waitForCard("stories15M.bin");
  assert.match(await page.locator("#notice").textContent(), /stored copy of stories15M\.bin is damaged.*downloaded again/);
  assert.equal(modelBytes() - sentBefore, size, "fetched again, whole");
  await generate();
});

test("HTML, 404, a CORS refusal, an unreachable host and offline each say so; the current model keeps working", async () => {
  await runBuiltIn();
  const closed = await closedPort();
  const cases = [
    [`${models.url}${BASE}missing.bin`, /missing\.bin was not found at .* \(HTTP 404\)/],
    [`${refusing.url}${CKPT}`, /127\.0\.0\.1:\d+ does not let other sites download stories15M\.bin/],
    [`http://127.0.0.1:${closed}/stories15M.bin`, new RegExp(`could not reach 127\\.0\\.0\\.1:${closed} to download stories15M\\.bin`)],
  ];
  for (const [url, re] of cases) {
    await fromUrl(url);
    await waitForError(re);
    assert.equal(await card("name"), "stories260K.bin");
  }
  models.set({ html: true });
  try {
    await fromUrl(`${models.url}${BASE}other.bin`);
    await waitForError(/gave a web page \(HTML\), not a model file/);
  } finally {
    models.set({ html: false });
  }
  await context.setOffline(true);
  try {
    await fromUrl(`${models.url}${BASE}other.bin`);
    await waitForError(/you are offline: other\.bin cannot be downloaded now/);
  } finally {
    await context.setOffline(false);
  }
  assert.equal(await card("name"), "stories260K.bin");
  await generate();
  // none of them left a file behind
  assert.deepEqual((await stored()).map((r) => r.id).sort(), ["stories15M.bin", "tokenizer.bin"]);
});

test("a wrong file or one too short for its header is refused by its first bytes, not after the download", async () => {
  models.set({ bytesPerSecond: 1 << 20 }); // 8 s for wrong.bin, 30 s for short.bin, if they were read whole
  try {
    for (const [file, re] of [["wrong.bin", /^wrong\.bin: .*GGUF/], ["short.bin", /^short\.bin: .*31,457,280 bytes but its header needs 60,816,028/]]) {
      const t0 = Date.now();
      await fromUrl(`${models.url}${BASE}${file}`);
      assert.match(await waitForError(/\S/), re);
      const ms = Date.now() - t0;
      assert.ok(models.bytesSent(`${BASE}${file}`) < 3 << 20, `${models.bytesSent(`${BASE}${file}`)} bytes of ${file} sent`);
      assert.ok(ms < 5000, `refused after ${ms} ms`);
      assert.equal((await stored()).find((r) => r.id === file), undefined, "nothing kept");
      await page.click("#error-close");
    }
  } finally {
    models.set({ bytesPerSecond: null });
  }
  assert.equal(await card("name"), "stories260K.bin");
});

test("a server that ignores Range: a cut download starts over and still completes", async () => {
  await deleteStored("stories15M.bin");
  const requestsBefore = models.requests.length;
  models.set({ ranges: false, cutAfter: Math.floor(size * 0.5) });
  try {
    await clickMenu("stories15M");
    await waitForCard("stories15M.bin");
  } finally {
    models.set({ ranges: true });
  }
  const asked = models.requests.slice(requestsBefore).filter((r) => r.path === CKPT);
  assert.deepEqual(asked.map((r) => r.status), [200, 200], "the whole file again after the cut");
  assert.ok(asked[1].range, "the second request asked for a range");
  const record = (await stored()).find((r) => r.id === "stories15M.bin");
  assert.equal(record.complete, true);
  assert.equal(record.size, size);
  await generate();
  await runBuiltIn();
});

test("Delete frees the space: storage.estimate() goes down", async () => {
  const usage = () => page.evaluate(async () => (await navigator.storage.estimate()).usage);
  const before = await usage();
  await deleteStored("stories15M.bin");
  const after = await usage();
  assert.ok(before - after > size * 0.9, `usage ${before} -> ${after}`);
  assert.match(await page.locator('[data-model="stories15M"]').textContent(), /download$/);
});

test("a download larger than the storage the browser allows is refused, with nothing left behind", async () => {
  await page.evaluate(async () => {
    const { usage } = await navigator.storage.estimate();
    window.llama2Debug.setStorageQuota(usage + 10e6);
  });
  try {
    await clickMenu("stories15M");
    const msg = await waitForError(/not enough storage/);
    assert.match(msg, /^not enough storage for stories15M\.bin \(60\.8 MB\): this browser lets the page store 10\.0+ MB more/);
    assert.equal((await stored()).find((r) => r.id === "stories15M.bin"), undefined);
    assert.equal(await card("name"), "stories260K.bin");
  } finally {
    await page.evaluate(() => window.llama2Debug.setStorageQuota(null));
  }
});

test("a dropped file is kept when the box is ticked, and runs from storage on the next visit", async () => {
  await page.check("#keep");
  await page.evaluate(async () => {
    const bytes = new Uint8Array(await (await fetch("models/stories260K.bin")).arrayBuffer());
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], "kept260K.bin"));
    document.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
  await waitForCard("kept260K.bin");
  await page.waitForFunction(() => document.querySelector('#stored li[data-id="kept260K.bin"]'));
  const record = (await stored()).find((r) => r.id === "kept260K.bin");
  assert.equal(record.complete, true);
  assert.equal(record.url, null);
  await open();
  await waitForCard("kept260K.bin");
  assert.equal(pageErrors.length, 0, pageErrors.map((e) => e.message).join("\n"));
});

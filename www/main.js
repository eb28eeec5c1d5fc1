// The demo page: load the default model, generate with a requestAnimationFrame
// loop, and swap in whatever checkpoint / tokenizer the user drops.
import { createEngines, headerShape, planFor, threadsUnavailable } from "./engine.js";
import { fileSource, formatBytes, readAll, readHead, urlSource } from "./loader.js";
import { createInspector } from "./inspector.js";

const DEFAULT_CHECKPOINT = "models/stories260K.bin";
// tokenizers served beside the default model, by vocabulary size
const TOKENIZERS = { 512: "models/tok512.bin", 32000: "models/tokenizer.bin" };
// Generation runs in short tasks (a MessageChannel loop), each stepping for
// about SLICE_MS, so the browser handles input between them; a
// requestAnimationFrame loop paints what they produced, at most every
// PAINT_EVERY_MS. Measured on the 2-core bench machine (15M shape, see
// README "Performance"): stepping inside rAF alone reached ~75% of a raw
// step() loop (a 9 ms token does not fit twice in a 16.7 ms frame, and
// overrunning costs a whole frame); tasks + painting every frame ~80%
// (producing each frame costs CPU and memory bandwidth there); tasks +
// painting every ~50 ms ~85%. Text still streams visibly at ~16 paints/s.
const SLICE_MS = 4;
const PAINT_EVERY_MS = 50;

const $ = (id) => document.getElementById(id);
const inspector = createInspector();

const state = {
  model: null, // the working Model; replaced only by one that loaded fine
  modelName: "",
  tokenizerName: "",
  tokenizers: new Map(), // vocab size -> { name, bytes }: reused when a checkpoint comes alone
  run: null, // the generation in progress: { frame, text, ... }
  queue: Promise.resolve(), // file loads, one after another
  reload: null, // loads the current checkpoint again (after the int8 box changes)
  engine: null, // the current model's engine (www/engine.js): { pkg, wasm, threads, note }
};

// ------------------------------------------------------------------ errors

function showError(err) {
  const msg = err instanceof Error ? err.message : String(err);
  $("error-text").textContent = msg;
  $("error").hidden = false;
  console.error(err);
}

function clearError() {
  $("error").hidden = true;
  $("error-text").textContent = "";
}

// ------------------------------------------------------------------ progress

/** A progress row for one file; returns (loaded, total) => void and a done(). */
function progressRow(name) {
  const li = document.createElement("li");
  const label = document.createElement("div");
  label.className = "label";
  const what = document.createElement("span");
  what.textContent = name;
  const amount = document.createElement("span");
  label.append(what, amount);
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = 0;
  bar.setAttribute("aria-label", `loading ${name}`);
  li.append(label, bar);
  $("progress").append(li);
  const update = (loaded, total) => {
    bar.max = total || 1;
    bar.value = loaded;
    amount.textContent = total ? `${formatBytes(loaded)} / ${formatBytes(total)}` : formatBytes(loaded);
  };
  update.done = () => li.remove();
  return update;
}

// ------------------------------------------------------------------ model

function showCard() {
  const c = state.model.config();
  const precision = c.group_size
    ? `Q8_0 (group ${c.group_size})${c.quantized_on_load ? ", quantized on load" : ""}`
    : "fp32";
  const fields = {
    name: state.modelName,
    format: (c.version === 0 ? "legacy v0" : `export v${c.version}`) + `, ${precision}` +
      (c.shared_classifier ? "" : ", separate classifier"),
    dim: c.dim,
    hidden_dim: c.hidden_dim,
    n_layers: c.n_layers,
    n_heads: c.n_heads,
    n_kv_heads: c.n_kv_heads,
    vocab_size: c.vocab_size.toLocaleString("en-US"),
    seq_len: c.seq_len,
    params: c.params.toLocaleString("en-US"),
    weights: formatBytes(c.weight_bytes),
    state: formatBytes(c.state_bytes),
    tokenizer: state.tokenizerName,
    // the build and threads chosen for this model, and why (www/engine.js planFor)
    kernels: `${c.kernels}, ${threadsText(state.engine.threads)}${state.engine.note ? ` (${state.engine.note})` : ""}`,
  };
  for (const [key, value] of Object.entries(fields)) {
    document.querySelector(`#card [data-field="${key}"]`).textContent = String(value);
  }
  $("steps").max = c.seq_len;
}

const threadsText = (n) => `${n} thread${n === 1 ? "" : "s"}`;

/** Swap in a new model; the old one is freed only after the new one works. */
function installModel({ model, engine }, name, tokenizerName) {
  stopGeneration();
  const old = state.model;
  state.model = model;
  state.engine = engine;
  state.modelName = name;
  state.tokenizerName = tokenizerName;
  if (old) old.free();
  inspector.attach(model);
  showCard();
  $("generate-button").disabled = false;
}

/** Tokenizer bytes for a vocabulary size: cached, or served beside the default model. */
async function tokenizerFor(vocabSize) {
  if (state.tokenizers.has(vocabSize)) return state.tokenizers.get(vocabSize);
  const url = TOKENIZERS[vocabSize];
  if (!url) {
    throw new Error(`this checkpoint has a vocabulary of ${vocabSize.toLocaleString("en-US")} tokens ` +
      "and no matching tokenizer is loaded: drop its tokenizer.bin together with it");
  }
  const source = await urlSource(url);
  const progress = progressRow(source.name);
  try {
    const entry = { name: source.name, bytes: await readAll(source, progress) };
    state.tokenizers.set(vocabSize, entry);
    return entry;
  } finally {
    progress.done();
  }
}

/**
 * Stream a checkpoint into wasm: the first 256 bytes pick the engine (one
 * thread or several, by the model's size: www/engine.js planFor) and open a
 * ModelLoader in it (header checked, weights allocated), then every chunk
 * goes straight in. Peak memory is the weights plus one chunk, not the file
 * twice. Resolves to { model, engine }.
 */
async function buildModel(source, tokenizer, quantize = $("quantize").checked) {
  const progress = progressRow(source.name);
  let loader = null;
  let engine = null;
  let head = new Uint8Array(0);
  let received = 0;
  const open = async (first) => {
    engine = await engineFor(headerShape(first));
    loader = new engine.pkg.ModelLoader(first, source.total, quantize);
    loader.push(head);
  };
  try {
    for (;;) {
      const { done, value } = await source.reader.read();
      if (done) break;
      received += value.length;
      progress(received, source.total);
      if (loader) {
        loader.push(value);
        continue;
      }
      const joined = new Uint8Array(head.length + value.length);
      joined.set(head);
      joined.set(value, head.length);
      head = joined;
      if (head.length >= 256) await open(head.subarray(0, 256));
    }
    if (!loader) await open(head);
    return { model: loader.finish(tokenizer.bytes), engine };
  } catch (e) {
    source.reader.cancel?.().catch(() => {});
    throw new Error(`${source.name}: ${e.message}`);
  } finally {
    loader?.free();
    progress.done();
  }
}

async function loadDefault() {
  const [source, tok] = await Promise.all([urlSource(DEFAULT_CHECKPOINT), tokenizerFor(512)]);
  installModel(await buildModel(source, tok), source.name, tok.name);
  state.reload = async () => installModel(await buildModel(await urlSource(DEFAULT_CHECKPOINT), tok), source.name, tok.name);
}

// ------------------------------------------------------------------ files

/** Sort dropped files into checkpoint / tokenizer by content, then load them. */
async function openFiles(files) {
  clearError();
  const checkpoints = [];
  const tokenizers = [];
  for (const file of files) {
    const info = fileInfo(await readHead(file), file.size);
    if (info.kind === "checkpoint") checkpoints.push({ file, info });
    else if (info.kind === "tokenizer") tokenizers.push(file);
    else throw new Error(`${file.name}: ${info.error}`);
  }
  if (checkpoints.length > 1) throw new Error("drop one checkpoint at a time (a tokenizer may come with it)");
  if (tokenizers.length > 1) throw new Error("drop one tokenizer at a time");
  // a bad header, a wrong size or too much memory: say so before reading the file
  const ckpt = checkpoints[0];
  if (ckpt?.info.error) throw new Error(`${ckpt.file.name}: ${ckpt.info.error}`);

  let tok = null;
  if (tokenizers.length) {
    const file = tokenizers[0];
    tok = { name: file.name, bytes: await readAll(fileSource(file)) };
  }
  if (!ckpt) {
    // a tokenizer alone: use it with the current weights
    if (!state.model) throw new Error("load a checkpoint before a tokenizer");
    stopGeneration();
    try {
      state.model.setTokenizer(tok.bytes);
      inspector.invalidate(); // the text on the page was the old tokenizer's
    } catch (e) {
      throw new Error(`${tok.name}: ${e.message}`);
    }
    state.tokenizerName = tok.name;
    state.tokenizers.set(state.model.config().vocab_size, tok);
    showCard();
    return;
  }
  tok ??= await tokenizerFor(ckpt.info.vocab_size);
  const built = await buildModel(fileSource(ckpt.file), tok);
  state.tokenizers.set(ckpt.info.vocab_size, tok);
  installModel(built, ckpt.file.name, tok.name);
  // the File is only a handle: keeping it holds no bytes
  state.reload = async () => installModel(await buildModel(fileSource(ckpt.file), tok), ckpt.file.name, tok.name);
}

function queueFiles(fileList) {
  const files = [...fileList]; // copy now: the input's list is cleared right after
  if (!files.length) return;
  state.queue = state.queue.then(() => openFiles(files)).catch(showError);
}

// ------------------------------------------------------------------ generation

function readNumber(id) {
  const el = $(id);
  const v = Number(el.value);
  if (el.value.trim() === "" || !Number.isFinite(v)) {
    throw new Error(`${el.labels[0].querySelector("span").firstChild.textContent.trim()} must be a number`);
  }
  return v;
}

const ticker = new MessageChannel();
ticker.port1.onmessage = tick;

/**
 * Start a generation with the form's settings. `manual`: the walkthrough
 * steps it one token per click instead of the task loop.
 */
function startGeneration(manual = false) {
  if (!state.model) return;
  stopGeneration();
  clearError();
  const model = state.model;
  try {
    model.start($("prompt").value, readNumber("temperature"), readNumber("topp"), readNumber("seed"), readNumber("steps"));
  } catch (e) {
    showError(e);
    return;
  }
  const output = $("output");
  output.replaceChildren();
  output.classList.add("running");
  $("stat-seed").textContent = String(model.seed);
  state.run = {
    model,
    manual,
    pending: [], // { pos, text } produced but not yet painted
    spans: [], // position -> the span of the token it produced
    last: null, // the newest span
    count: model.tokenCount,
    started: performance.now(),
    promptLength: model.promptLength,
    decodeStart: 0, // when the first sampled token arrived (run.c starts its timer there)
    decodeFrom: 0, // token count at that moment
    frame: manual ? 0 : requestAnimationFrame(paint),
  };
  inspector.newText(model, state.run.spans, model.promptLength, manual);
  $("generate-button").disabled = false;
  $("stop-button").disabled = false;
  updateStats();
  if (!manual) ticker.port2.postMessage(null);
}

/**
 * One step() of the run; false when the generation is over. Position p
 * produces token p + 1: its text becomes the span of position p.
 */
function stepOnce(run) {
  const piece = run.model.step();
  const count = run.model.tokenCount;
  if (piece === undefined) {
    // the text ended on BOS with nothing left to show: still a position to inspect
    if (count !== run.count) run.pending.push({ pos: count - 2, text: "", end: true });
    return false;
  }
  if (count !== run.count) {
    run.count = count;
    run.pending.push({ pos: count - 2, text: piece });
    if (!run.decodeStart && count > run.promptLength) {
      run.decodeStart = performance.now();
      run.decodeFrom = count;
    }
  } else if (piece) {
    run.pending.push({ pos: -1, text: piece }); // the end of a split character: same token
  }
  return true;
}

/** One task: step for about SLICE_MS (at least once), then yield to the page. */
function tick() {
  const run = state.run;
  if (!run || run.manual) return;
  const end = performance.now() + SLICE_MS;
  try {
    do {
      if (!stepOnce(run)) {
        finishGeneration();
        return;
      }
    } while (performance.now() < end);
  } catch (e) {
    showError(e);
    finishGeneration();
    return;
  }
  ticker.port2.postMessage(null);
}

/** The walkthrough's button: one token (starting a generation first if needed). */
inspector.onWalkStep = () => {
  clearError();
  if (!state.run?.manual || state.run.model !== state.model) startGeneration(true);
  const run = state.run;
  if (!run) return;
  let more = false;
  try {
    more = stepOnce(run);
  } catch (e) {
    showError(e);
  }
  flush(run, true);
  inspector.paint(true);
  const n = Math.max(0, run.count - 1);
  $("walk-status").textContent = more
    ? `${n} position${n === 1 ? "" : "s"} run${n <= run.promptLength - 1 ? " (prompt)" : ""}; click again for the next token.`
    : "The generation is over; the next click starts a new one.";
  if (!more) finishGeneration();
};

/** In an animation frame: append the new text and refresh the numbers. */
function paint() {
  const run = state.run;
  if (!run) return;
  flush(run);
  inspector.paint();
  run.timer = setTimeout(() => (run.frame = requestAnimationFrame(paint)), PAINT_EVERY_MS);
}

// the numbers are refreshed a few times a second: readable, and cheaper to paint
const STATS_EVERY_MS = 250;

function flush(run, force = false) {
  if (run.pending.length) {
    const frag = document.createDocumentFragment();
    for (const { pos, text, end } of run.pending) {
      if (pos < 0) {
        if (run.last) run.last.textContent += text;
        continue;
      }
      const span = document.createElement("span");
      span.className = (pos + 1 < run.promptLength ? "tok prompt" : "tok") + (end ? " end" : "");
      span.dataset.pos = pos;
      span.textContent = text;
      run.spans[pos] = span;
      run.last = span;
      frag.append(span);
    }
    $("output").append(frag);
    run.pending = [];
  }
  const now = performance.now();
  if (force || now - (run.statsAt ?? 0) >= STATS_EVERY_MS) {
    run.statsAt = now;
    updateStats();
  }
}

/** The loop ended by itself (steps done, BOS, or an error): paint the rest. */
function finishGeneration() {
  const run = state.run;
  if (!run) return;
  run.ended = performance.now();
  stopGeneration();
}

function updateStats() {
  const run = state.run;
  if (!run) return;
  const now = run.ended ?? performance.now();
  const count = run.model.tokenCount;
  const decoded = run.decodeStart ? count - run.decodeFrom : 0;
  const secs = (now - run.decodeStart) / 1000;
  $("stat-speed").textContent = decoded > 0 && secs > 0 ? (decoded / secs).toFixed(1) : "–";
  // the inspector's sparkline: the speed since the previous reading
  if (decoded > 0 && !run.manual) {
    const prev = run.sample ?? { t: run.decodeStart, count: run.decodeFrom };
    if (now > prev.t && count > prev.count) inspector.speed(((count - prev.count) / (now - prev.t)) * 1000);
    run.sample = { t: now, count };
  }
  $("stat-tokens").textContent = `${Math.max(0, count - run.promptLength)} / ${count}`;
  $("stat-elapsed").textContent = `${((now - run.started) / 1000).toFixed(2)} s`;
}

function stopGeneration() {
  const run = state.run;
  if (!run) return;
  clearTimeout(run.timer);
  cancelAnimationFrame(run.frame);
  run.ended ??= performance.now();
  flush(run, true);
  inspector.paint(true);
  state.run = null;
  $("output").classList.remove("running");
  $("stop-button").disabled = true;
}

// ------------------------------------------------------------------ wiring

function wire() {
  $("controls").addEventListener("submit", (e) => {
    e.preventDefault();
    startGeneration();
  });
  $("stop-button").addEventListener("click", () => ($("walk-status").textContent = "Stopped."));
  $("stop-button").addEventListener("click", stopGeneration);
  $("error-close").addEventListener("click", clearError);
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      startGeneration();
    }
  });
  // int8 on or off: load the current checkpoint again that way
  $("quantize").addEventListener("change", () => {
    if (!state.reload) return;
    clearError();
    state.queue = state.queue.then(() => state.reload()).catch(showError);
  });
  $("file-input").addEventListener("change", (e) => {
    queueFiles(e.target.files);
    e.target.value = "";
  });

  // drop files anywhere on the page
  const overlay = $("drop-overlay");
  let depth = 0;
  const hasFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes("Files");
  document.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth++;
    overlay.hidden = false;
  });
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) overlay.hidden = true;
  });
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    overlay.hidden = true;
    queueFiles(e.dataTransfer?.files ?? []);
  });
}

// the engines (www/engine.js createEngines) and the single-threaded build's
// fileInfo, set by main()
let engines, fileInfo;

/**
 * The engine a checkpoint runs in, from its header's shape: one thread or
 * several by its size (planFor), and the note the card shows.
 */
async function engineFor(shape) {
  const plan = planFor(shape, engines.request);
  const engine = await engines.get(plan.threads);
  // why not more threads: they cannot run here, else the plan's reason
  const unavailable = engines.request.threads > 1 ? threadsUnavailable() : "";
  return { ...engine, note: unavailable || engine.note || plan.note };
}

async function main() {
  wire();
  try {
    engines = await createEngines();
    ({ fileInfo } = engines.single.pkg);
    // for the benchmark (tests/bench/run.mjs): memory, and raw step() speed in this page
    // the debug hooks below drive the model directly: stop the page's run
    // first (its text will no longer match the KV cache)
    const takeModel = () => {
      stopGeneration();
      inspector.invalidate();
      return state.model;
    };
    window.llama2Debug = {
      // every loaded engine's memory (both builds once a model has run threaded)
      wasmMemoryBytes: () => engines.loaded.reduce((sum, e) => sum + e.wasm.memory.buffer.byteLength, 0),
      // the current model's engine: the threads sharing its matmuls
      threads: () => state.engine.pkg.threads(),
      // tests: split even small matrices between the threads (0) or not (65536)
      setMinParallel: (weights) => state.engine.pkg.setMinParallel(weights),
      helperParts: () => state.engine.pkg.helperParts(),
      // which build runs the current model
      threaded: () => state.engine.pkg.threadsSupported(),
      // tests: a hash of every logit (their bits) of a greedy run of `steps`
      logitsHash: (prompt, steps) => {
        const m = takeModel();
        m.inspect = true; // logits() needs the record; recording changes no number
        m.start(prompt, 0, 0.9, 1, steps);
        let h = 2166136261;
        let n = 0;
        while (m.step() !== undefined) {
          for (const bits of new Uint32Array(m.logits().buffer)) h = Math.imul(h ^ bits, 16777619) >>> 0;
          n++;
        }
        m.inspect = inspector.open;
        return { hash: h, steps: n };
      },
      // tests: one whole generation with the current model; its token ids
      generate: (prompt, temperature, topp, seed, steps) => {
        const m = takeModel();
        m.start(prompt, temperature, topp, seed, steps);
        while (m.step() !== undefined);
        return Array.from(m.tokens());
      },
      inspecting: () => state.model?.inspect,
      // inspect: with the engine recording every step, as when the inspector is open
      rawStepsPerSecond: (steps = 256, inspect = false) => {
        const m = takeModel();
        m.inspect = inspect;
        m.start("", 0, 0.9, 1, steps);
        m.step(); // timed from the first token on, as run.c and the page do
        let n = 0;
        const t = performance.now();
        while (m.step() !== undefined) n++;
        const speed = (n / (performance.now() - t)) * 1000;
        m.inspect = inspector.open;
        return speed;
      },
    };
  } catch (e) {
    showError(new Error("this browser could not start the WebAssembly module (it needs WebAssembly SIMD: " +
      `current Chrome, Firefox or Safari): ${e.message}`));
    return;
  }
  state.queue = state.queue.then(loadDefault).then(() => startGeneration()).catch(showError);
}

main();

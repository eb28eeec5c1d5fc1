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
  model: null, // the working Model (guarded); replaced only by one that loaded fine
  modelName: "",
  tokenizerName: "",
  tokenizers: new Map(), // vocab size -> { name, bytes }: reused when a checkpoint comes alone
  run: null, // the generation in progress: { frame, text, ... }
  queue: Promise.resolve(), // file loads, one after another
  // the last model that loaded fine, to load again (the int8 box, an engine
  // restart): { name, open() -> a fresh byte source, tok: { name, bytes } }
  current: null,
  engine: null, // the current model's engine (www/engine.js): { pkg, wasm, threads, note }
  restart: null, // the engine restart in progress (a Promise), after a crash
  crash: null, // what the page says about it: { lead, then, show() }
  freed: "", // the model unloaded to make room for the one loading now (its name)
};

// ------------------------------------------------------------------ errors

function showError(err) {
  // a dead engine is restarted, and the restart says so instead
  if (isEngineCrash(err)) {
    engineCrashed(err);
    // a load that died with it: name the file in the message
    if (err.cause && state.crash) {
      state.crash.lead = `${err.message}.`;
      state.crash.show();
    }
    return;
  }
  const msg = err instanceof Error ? err.message : String(err);
  $("error-text").textContent = msg;
  $("error").hidden = false;
  console.error(err);
}

function clearError() {
  $("error").hidden = true;
  $("error-text").textContent = "";
}

/** A line about what the page did with memory or the engine (not an error). */
function showNotice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

// ------------------------------------------------------------------ engine crashes
//
// A Rust panic inside wasm traps (a WebAssembly.RuntimeError, "unreachable")
// and leaves the instance unusable: an object that was borrowed when it
// trapped refuses every later call ("recursive use of an object detected",
// "attempted to take ownership of Rust value while it was borrowed"), and the
// allocator may be half-way through a change. The engine validates every
// argument so that no input should get there; if something does, the page
// says so, loads a new instance of the engines and the last good model.

/** Is this error (or its cause) the engine dying rather than refusing an input? */
function isEngineCrash(e) {
  for (let depth = 0; e && depth < 4; depth++, e = e.cause) {
    if (e instanceof WebAssembly.RuntimeError) return true;
    if (/recursive use of an object detected|attempted to take ownership of Rust value while it was borrowed/
      .test(String(e.message ?? e))) return true;
  }
  return false;
}

/** Pass an engine error on, restarting the engine first when it is a crash. */
function noticed(e) {
  if (isEngineCrash(e)) engineCrashed(e);
  return e;
}

/**
 * A Model or ModelLoader whose every call (methods, getters, setters) goes
 * through noticed(): wherever the page or the inspector touches the engine,
 * a crash is seen at once.
 */
function guard(obj) {
  const methods = new Map();
  return new Proxy(obj, {
    get(target, prop) {
      let value;
      try {
        value = Reflect.get(target, prop, target);
      } catch (e) {
        throw noticed(e);
      }
      if (typeof value !== "function" || prop === "constructor") return value;
      let method = methods.get(prop);
      if (!method) {
        method = (...args) => {
          try {
            return value.apply(target, args);
          } catch (e) {
            throw noticed(e);
          }
        };
        methods.set(prop, method);
      }
      return method;
    },
    set(target, prop, value) {
      try {
        return Reflect.set(target, prop, value, target);
      } catch (e) {
        throw noticed(e);
      }
    },
  });
}

/** The packages of engines that crashed: none of their objects is called again. */
const deadEngines = new WeakSet();
// ... nor freed by the garbage collector: wasm-bindgen's finalizers would
// run Rust code in the dead instance (it keeps its memory anyway)
const graveyard = [];

const crashText = (e) => (e instanceof WebAssembly.RuntimeError ? `RuntimeError: ${e.message}` : e.message);

/**
 * The engine crashed: drop every object of the dead instance (never call
 * them again: free() would throw), say so, load new instances of the
 * engines, then the last good model (or the default one).
 */
function engineCrashed(err) {
  if (state.restart) return state.restart;
  let root = err;
  while (root?.cause) root = root.cause;
  console.error("llama2-wasm: the engine crashed", err);
  const again = state.current?.name ?? DEFAULT_CHECKPOINT.split("/").pop();
  const run = state.run;
  state.run = null; // stopGeneration would read the dead model
  if (run) {
    clearTimeout(run.timer);
    cancelAnimationFrame(run.frame);
    $("output").classList.remove("running");
    $("stop-button").disabled = true;
  }
  if (state.model) graveyard.push(state.model);
  state.model = null;
  state.engine = null;
  inspector.detach();
  $("generate-button").disabled = true;
  // what the error box says: the crash (or the load it ended), then the restart
  const crash = {
    lead: `The engine crashed (${crashText(root)}).`,
    then: `The engine is being restarted: loading ${again} again…`,
    show() {
      $("error-text").textContent = `${crash.lead} ${crash.then}`;
      $("error").hidden = false;
    },
  };
  state.crash = crash;
  crash.show();
  const dead = engines;
  for (const e of dead.loaded) deadEngines.add(e.pkg);
  state.restart = (async () => {
    engines = await createEngines(dead.request, { fresh: true });
    ({ fileInfo, tokenizerInfo } = engines.single.pkg);
    dead.dispose();
  })();
  // after the load that was running (it fails: its engine is gone), before any other
  state.queue = state.queue
    .then(() => state.restart)
    .then(async () => {
      if (state.current) await reloadCurrent();
      else await loadDefault();
      crash.then = `The engine was restarted: ${state.modelName} is loaded again.`;
    })
    .catch((e) => (crash.then = `Restarting the engine failed (${e.message}): reload the page.`))
    .finally(() => {
      crash.show();
      state.restart = null;
      state.crash = null;
    });
  return state.restart;
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

/**
 * Swap in a new model; the old one is freed only after the new one works
 * (unless it was unloaded before to make room: makeRoom). `current`: how to
 * load it again ({ name, open, tok }).
 */
function installModel({ model, engine }, current) {
  stopGeneration();
  const old = state.model;
  state.model = model;
  state.engine = engine;
  state.modelName = current.name;
  state.tokenizerName = current.tok.name;
  state.current = current;
  state.freed = "";
  if (old) old.free();
  inspector.attach(model);
  showCard();
  $("generate-button").disabled = false;
}

/** Load the last model that worked again (the int8 box, an engine restart). */
async function reloadCurrent() {
  const current = state.current;
  installModel(await buildModel(await current.open(), current.tok), current);
}

/**
 * Before a checkpoint's weights are allocated in `engine`: when the model
 * there now and the new one cannot both fit in its memory (what each needs
 * for its whole life, against the engine's limit: 4 GiB less 256 MiB in
 * wasm32), unload the current one first and say so. Models in the other
 * build's engine live in another memory and stay.
 */
function makeRoom(engine, info, name) {
  const old = state.model;
  if (!old || state.engine?.pkg !== engine.pkg || info.error || !info.memory_bytes) return;
  const held = old.config().memory_bytes;
  const limit = engine.pkg.memoryLimit();
  if (info.memory_bytes + held <= limit) return;
  const oldName = state.modelName;
  stopGeneration();
  inspector.detach();
  state.model = null;
  old.free();
  state.freed = oldName;
  $("generate-button").disabled = true;
  showNotice(`${oldName} (${formatBytes(held)} in memory) was unloaded first: it and ${name} ` +
    `(${formatBytes(info.memory_bytes)}) do not both fit in the engine's ${formatBytes(limit)}.`);
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
    makeRoom(engine, engine.pkg.fileInfo(first, source.total), source.name);
    loader = guard(new engine.pkg.ModelLoader(first, source.total, quantize));
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
    return { model: guard(loader.finish(tokenizer.bytes)), engine };
  } catch (e) {
    source.reader.cancel?.().catch(() => {});
    const why = isEngineCrash(e) ? `the engine crashed while loading it (${crashText(e)})` : e.message;
    throw new Error(`${source.name}: ${why}`, { cause: e });
  } finally {
    progress.done();
    // the weights allocated so far are freed with the loader (a dead
    // engine's loader cannot be freed: the restart lets the whole instance go)
    if (loader && deadEngines.has(engine.pkg)) graveyard.push(loader);
    else if (loader) {
      try {
        loader.free();
      } catch (e) {
        console.warn("llama2-wasm: could not free the loader", e);
      }
    }
  }
}

async function loadDefault() {
  const [source, tok] = await Promise.all([urlSource(DEFAULT_CHECKPOINT), tokenizerFor(512)]);
  const current = { name: source.name, tok, open: () => urlSource(DEFAULT_CHECKPOINT) };
  installModel(await buildModel(source, tok), current);
}

// ------------------------------------------------------------------ files

/** Sort dropped files into checkpoint / tokenizer by content, then load them. */
async function openFiles(files) {
  clearError();
  showNotice("");
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
    // the engine's tokenizer parser, and with a checkpoint its vocabulary
    // from the header: a wrong pair is refused before the checkpoint is read
    try {
      tokenizerInfo(tok.bytes, ckpt?.info.vocab_size);
    } catch (e) {
      throw new Error(`${tok.name}: ${e.message}${ckpt ? ` (${ckpt.file.name})` : ""}`, { cause: e });
    }
  }
  if (!ckpt) {
    // a tokenizer alone: use it with the current weights
    if (!state.model) throw new Error("load a checkpoint before a tokenizer");
    stopGeneration();
    try {
      state.model.setTokenizer(tok.bytes);
      inspector.invalidate(); // the text on the page was the old tokenizer's
    } catch (e) {
      throw new Error(`${tok.name}: ${e.message}`, { cause: e });
    }
    state.tokenizerName = tok.name;
    state.tokenizers.set(state.model.config().vocab_size, tok);
    if (state.current) state.current = { ...state.current, tok }; // reloads keep it
    showCard();
    return;
  }
  tok ??= await tokenizerFor(ckpt.info.vocab_size);
  const built = await buildModel(fileSource(ckpt.file), tok);
  state.tokenizers.set(ckpt.info.vocab_size, tok);
  // the File is only a handle: keeping it holds no bytes
  installModel(built, { name: ckpt.file.name, tok, open: async () => fileSource(ckpt.file) });
}

/**
 * A load failed: say why. When the model before it was unloaded to make
 * room (makeRoom) there is none left: load the default model again.
 */
async function loadFailed(e) {
  showError(e);
  if (state.model || state.restart || !state.freed || isEngineCrash(e)) return;
  const freed = state.freed;
  state.freed = "";
  const msg = e instanceof Error ? e.message : String(e);
  $("error-text").textContent = `${msg}. ${freed} had been unloaded to make room for it: ` +
    `loading the default model (${DEFAULT_CHECKPOINT.split("/").pop()}) again.`;
  showNotice("");
  try {
    await loadDefault();
  } catch (e2) {
    $("error-text").textContent += ` That failed too: ${e2.message}`;
  }
}

function queueFiles(fileList) {
  const files = [...fileList]; // copy now: the input's list is cleared right after
  if (!files.length) return;
  state.queue = state.queue.then(() => openFiles(files)).catch(loadFailed);
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
    if (!state.current) return;
    clearError();
    showNotice("");
    state.queue = state.queue.then(() => reloadCurrent()).catch(loadFailed);
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
// fileInfo and tokenizerInfo, set by main() (and again by a restart)
let engines, fileInfo, tokenizerInfo;

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
    ({ fileInfo, tokenizerInfo } = engines.single.pkg);
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
      // TEST ONLY: make the current model's engine trap as a Rust panic would
      // ("now", or armed for the next "step" / "push"; src/wasm.rs __crashForTest)
      crash: (when) => {
        try {
          (state.engine ?? engines.single).pkg.__crashForTest(when);
        } catch (e) {
          throw noticed(e);
        }
      },
      // the restart after a crash (resolves when it is over), or null
      restarting: () => state.restart && state.queue,
      // TEST ONLY: lower the memory a model may take in every loaded engine (0: the default)
      setMemoryLimit: (bytes) => engines.loaded.forEach((e) => e.pkg.__setMemoryLimitForTest(bytes)),
      memoryLimit: () => (state.engine ?? engines.single).pkg.memoryLimit(),
      // what the current model holds in its engine's memory (config().memory_bytes)
      memoryBytes: () => state.model?.config().memory_bytes,
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

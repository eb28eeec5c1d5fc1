// The page's model: which one is loaded and in which engine, loading the
// next (one file load after another), making room in the engine's memory,
// and restarting the engines after a crash (www/engine-guard.js). Owns the
// int8 checkbox (#quantize) and fills the model card (www/card.js).
import { showCard } from "./card.js";
import { createEngines, headerShape, planFor, threadsUnavailable } from "./engine.js";
import { bury, crashText, crashWatch, isEngineCrash, markDead } from "./engine-guard.js";
import { fileSource, formatBytes, urlSource } from "./loader.js";
import { buildModel } from "./model-build.js";
import { progressRow } from "./progress.js";
import { createTokenizers } from "./tokenizers.js";

const DEFAULT_CHECKPOINT = "models/stories260K.bin";
const DEFAULT_NAME = DEFAULT_CHECKPOINT.split("/").pop();

/**
 * `messages`: www/messages.js; `generation`: www/generation.js (stopped
 * before its model changes); `inspector`: www/inspector/index.js;
 * `backend`: www/backend.js (chooses CPU or GPU for each model loaded).
 */
export function createModels({ messages, generation, inspector, backend }) {
  const quantize = document.getElementById("quantize");
  const state = {
    model: null, // the working Model (guarded); replaced only by one that loaded fine
    modelName: "",
    tokenizerName: "",
    queue: Promise.resolve(), // file loads, one after another
    // the last model that loaded fine, to load again (the int8 box, an engine
    // restart): { name, open() -> a fresh byte source, tok: { name, bytes } }
    current: null,
    engine: null, // the current model's engine (www/engine.js): { pkg, wasm, threads, note }
    restart: null, // the engine restart in progress (a Promise), after a crash
    crash: null, // what the page says about it: { lead, then, show() }
    freed: "", // the model unloaded to make room for the one loading now (its name)
  };
  const tokenizers = createTokenizers(); // reused when a checkpoint comes alone
  let engines = null; // www/engine.js createEngines, set by startEngines (and again by a restart)
  const { noticed, guard } = crashWatch((e) => crashed(e));

  /** Say what went wrong (a dead engine is restarted, and the restart says so instead). */
  function showError(err) {
    if (isEngineCrash(err)) {
      crashed(err);
      // a load that died with it: name the file in the message
      if (err.cause && state.crash) {
        state.crash.lead = `${err.message}.`;
        state.crash.show();
      }
      return;
    }
    messages.error(err instanceof Error ? err.message : String(err));
    console.error(err);
  }

  /**
   * The engine crashed: drop every object of the dead instance (never call
   * them again: free() would throw), say so, load new instances of the
   * engines, then the last good model (or the default one).
   */
  function crashed(err) {
    if (state.restart) return state.restart;
    let root = err;
    while (root?.cause) root = root.cause;
    console.error("llama2-wasm: the engine crashed", err);
    const again = state.current?.name ?? DEFAULT_NAME;
    generation.abandon(); // its run's model is dead
    if (state.model) bury(state.model);
    state.model = null;
    state.engine = null;
    inspector.detach();
    // what the error box says: the crash (or the load it ended), then the restart
    const crash = {
      lead: `The engine crashed (${crashText(root)}).`,
      then: `The engine is being restarted: loading ${again} again…`,
      show: () => messages.error(`${crash.lead} ${crash.then}`),
    };
    state.crash = crash;
    crash.show();
    const dead = engines;
    markDead(dead.loaded.map((e) => e.pkg));
    state.restart = (async () => {
      engines = await createEngines(dead.request, { fresh: true });
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

  /**
   * The engine a checkpoint runs in, from its first bytes' shape: one thread
   * or several by its size (planFor), and the note the card shows.
   */
  async function engineFor(head) {
    const plan = planFor(headerShape(head), engines.request);
    const engine = await engines.get(plan.threads);
    // why not more threads: they cannot run here, else the plan's reason
    const unavailable = engines.request.threads > 1 ? threadsUnavailable() : "";
    return { ...engine, note: unavailable || engine.note || plan.note };
  }

  /** The current model on the card; returns its config(). */
  function showModelCard() {
    const config = state.model.config();
    showCard({ config, engine: state.engine, name: state.modelName, tokenizer: state.tokenizerName });
    return config;
  }

  /**
   * Swap in a new model; the old one is freed only after the new one works
   * (unless it was unloaded before to make room: makeRoom). `current`: how to
   * load it again ({ name, open, tok }).
   */
  function install({ model, engine }, current) {
    generation.stop();
    const old = state.model;
    state.model = model;
    state.engine = engine;
    state.modelName = current.name;
    state.tokenizerName = current.tok.name;
    state.current = current;
    state.freed = "";
    if (old) old.free();
    inspector.attach(model, engine.pkg.timingPhases());
    generation.ready(showModelCard());
    api.onChange();
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
    generation.stop();
    inspector.detach();
    state.model = null;
    old.free();
    state.freed = oldName;
    generation.ready(null);
    messages.notice(`${oldName} (${formatBytes(held)} in memory) was unloaded first: it and ${name} ` +
      `(${formatBytes(info.memory_bytes)}) do not both fit in the engine's ${formatBytes(limit)}.`);
  }

  /** Stream a checkpoint in with `tok` (www/model-build.js), as the int8 box says. */
  const build = (source, tok) => buildModel(source, tok, {
    quantize: quantize.checked,
    engineFor,
    makeRoom: (engine, info) => makeRoom(engine, info, source.name),
    guard,
    progress: progressRow(source.name),
  });

  /**
   * A checkpoint from a byte source: `open()` gives a fresh source (again for
   * reloads), `tok` ({ name, bytes }) its tokenizer. `verify()` (optional,
   * e.g. a stored file's SHA-256) runs while it streams in; the model is used
   * only if it resolves, else it is freed and the current one stays.
   */
  async function loadSource({ name, open, tok, verify }) {
    const verifying = verify ? verify() : Promise.resolve();
    verifying.catch(() => {}); // (awaited below: an early failure is not "unhandled")
    let built = null;
    try {
      built = await build(await open(), tok);
      await verifying;
    } catch (e) {
      if (built) {
        try {
          built.model.free();
        } catch {
          // a dead engine: its restart lets the whole instance go
        }
      }
      throw e;
    }
    install(built, { name, tok, open });
    await backend.choose(state.model, state.engine.pkg);
  }

  /** Load the last model that worked again (the int8 box, an engine restart). */
  async function reloadCurrent() {
    const current = state.current;
    install(await build(await current.open(), current.tok), current);
    await backend.choose(state.model, state.engine.pkg);
  }

  async function loadDefault() {
    const [source, tok] = await Promise.all([urlSource(DEFAULT_CHECKPOINT), tokenizers.get(512)]);
    const current = { name: source.name, tok, open: () => urlSource(DEFAULT_CHECKPOINT) };
    install(await build(source, tok), current);
    await backend.choose(state.model, state.engine.pkg);
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
    messages.error(`${msg}. ${freed} had been unloaded to make room for it: ` +
      `loading the default model (${DEFAULT_NAME}) again.`);
    messages.notice("");
    try {
      await loadDefault();
    } catch (e2) {
      messages.append(` That failed too: ${e2.message}`);
    }
  }

  /** Run `task` after the loads before it; its error goes to `onError` (a failed load by default). */
  function enqueue(task, onError = loadFailed) {
    state.queue = state.queue.then(task).catch(onError);
  }

  // CPU, GPU or Automatic: choose again for the current model; a run going on continues on the new one
  // (unless Automatic had to time this model first, which replaces its generation)
  backend.select.addEventListener("change", () => {
    if (!state.current) return;
    messages.notice("");
    enqueue(async () => {
      if (!state.model) return;
      const running = generation.running;
      generation.stop();
      const { restarted } = await backend.choose(state.model, state.engine.pkg);
      if (restarted) {
        // Automatic timed the backends on the model: the text on the page is no longer its KV cache's
        generation.forget();
        inspector.invalidate();
      } else if (running) {
        generation.resume(false);
      }
    }, showError);
  });

  // int8 on or off: load the current checkpoint again that way
  quantize.addEventListener("change", () => {
    if (!state.current) return;
    messages.clear();
    messages.notice("");
    enqueue(() => reloadCurrent());
  });

  const api = {
    get model() {
      return state.model;
    },
    /** The current model's engine ({ pkg, wasm, threads, note }), or null. */
    get engine() {
      return state.engine;
    },
    /** The engines (www/engine.js createEngines). */
    get engines() {
      return engines;
    },
    /** Load the engines (the single-threaded one now, the threaded one when a model wants it). */
    async startEngines() {
      engines = await createEngines();
    },
    /** The engine's verdict on a file's first bytes (fileInfo of the single-threaded build). */
    fileInfo: (head, size) => engines.single.pkg.fileInfo(head, size),
    /** The engine's tokenizer parser (tokenizerInfo), checked against a vocabulary size if given. */
    tokenizerInfo: (bytes, vocabSize) => engines.single.pkg.tokenizerInfo(bytes, vocabSize),
    showError,
    noticed,
    enqueue,
    loadDefault,
    /** The restart after a crash (resolves when it is over), or null. */
    restarting: () => state.restart && state.queue,

    /** A tokenizer alone ({ name, bytes }): use it with the current weights. */
    useTokenizer(tok) {
      if (!state.model) throw new Error("load a checkpoint before a tokenizer");
      generation.stop();
      try {
        state.model.setTokenizer(tok.bytes);
        inspector.invalidate(); // the text on the page was the old tokenizer's
        generation.forget(); // and cannot go on with the new one
      } catch (e) {
        throw new Error(`${tok.name}: ${e.message}`, { cause: e });
      }
      state.tokenizerName = tok.name;
      tokenizers.set(state.model.config().vocab_size, tok);
      if (state.current) state.current = { ...state.current, tok }; // reloads keep it
      showModelCard();
    },

    /** A checkpoint File of `vocabSize` tokens, with `tok` (or the tokenizer held for that size). */
    async loadCheckpoint(file, vocabSize, tok) {
      tok ??= await tokenizers.get(vocabSize);
      // the File is only a handle: keeping it (to load again) holds no bytes
      await loadSource({ name: file.name, open: async () => fileSource(file), tok });
      tokenizers.set(vocabSize, tok);
    },

    loadSource,

    /** The tokenizer held (or served) for a vocabulary size: { name, bytes }. */
    tokenizerFor: (vocabSize) => tokenizers.get(vocabSize),
    /** Hold `tok` for checkpoints of `vocabSize` tokens that come alone. */
    holdTokenizer: (vocabSize, tok) => tokenizers.set(vocabSize, tok),
    /** The current model's name ("" when none), for the model menu. */
    get name() {
      return state.model ? state.modelName : "";
    },
    /** Called after each model change (www/library.js marks the menu). */
    onChange: () => {},
  };
  return api;
}

// The engine behind the package's `Llama2` (www/lib/llama2.js), on the
// thread that runs it (the caller's, or a dedicated Worker: www/lib/worker.js).
// It is the demo page's own loading code without the page: the engines of
// www/engine.js (the threaded build for models large enough to gain from
// threads, when the context is cross-origin isolated), a checkpoint streamed
// into a ModelLoader by www/model-build.js, and the low-level `Model` driven
// one step() at a time. Every call is synchronous or a Promise of plain
// data, so the Worker can pass it on as messages.
import { createEngines, headerShape, planFor, requestedThreads } from "../engine.js";
import { buildModel } from "../model-build.js";
import { openSource, readWhole } from "./sources.js";

/** run.c's defaults. */
export const DEFAULTS = Object.freeze({ temperature: 1.0, topp: 0.9, seed: 0, steps: 256 });

let shared = null; // the engines, shared by every core on this thread (one wasm memory per build)

/** An Error that says it was aborted (what `AbortSignal` users test for). */
export function abortError(what) {
  return Object.assign(new Error(`${what} was aborted`), { name: "AbortError" });
}

/** `reader` whose read() throws once `signal` aborts: a load stops within one chunk. */
function abortable(reader, signal, what) {
  if (!signal) return reader;
  return {
    async read() {
      if (signal.aborted) throw abortError(what);
      const r = await reader.read();
      if (signal.aborted) throw abortError(what);
      return r;
    },
    cancel: () => reader.cancel?.(),
  };
}

export function createCore() {
  let model = null;
  let engine = null;
  let info = null;
  let chatting = false; // the model's loop is a chat (chat() goes on with it)

  function need() {
    if (!model) throw new Error("no model is loaded (it was disposed, or load() failed)");
    return model;
  }

  return {
    /**
     * Load a checkpoint and its tokenizer: { checkpoint, tokenizer, int8,
     * threads, inspect }, progress(loaded, total, file), signal. Replaces
     * the model held before (freed once the new one works). Resolves to the
     * model's info.
     */
    async load({ checkpoint, tokenizer, int8 = false, threads = 0, inspect = false }, { progress = () => {}, signal } = {}) {
      if (signal?.aborted) throw abortError("the load");
      const request = threads ? { threads, forced: true, note: "" } : { ...requestedThreads(""), forced: false };
      // (the engines are made once per thread: a later `threads` cannot
      // change the threaded build's helpers; a Worker-mode Llama2 has a thread of its own)
      shared ??= await createEngines(request);
      const engines = shared;

      const tokSource = await openSource(tokenizer, "tokenizer", signal);
      tokSource.reader = abortable(tokSource.reader, signal, "the load");
      const tok = { name: tokSource.name, bytes: await readWhole(tokSource) };
      await tokSource.verify?.();

      let source = await openSource(checkpoint, "checkpoint", signal);
      if (!source.total) {
        // (a stream of unknown length: the header check needs the size, so read it first)
        const bytes = await readWhole({ ...source, reader: abortable(source.reader, signal, "the load") });
        source = { name: source.name, total: bytes.length, reader: { read: oneShot(bytes) }, verify: source.verify };
      }
      source.reader = abortable(source.reader, signal, "the load");
      const verifying = source.verify?.() ?? Promise.resolve();
      verifying.catch(() => {});
      const built = await buildModel(source, tok, {
        quantize: Boolean(int8),
        engineFor: async (head) => {
          const plan = planFor(headerShape(head), engines.request);
          return engines.get(plan.threads);
        },
        progress: (loaded, total) => progress(loaded, total, source.name),
      }).catch((e) => {
        throw signal?.aborted ? abortError("the load") : e;
      });
      try {
        await verifying;
        built.model.inspect = Boolean(inspect);
      } catch (e) {
        built.model.free();
        throw e;
      }
      if (model) model.free();
      model = built.model;
      engine = built.engine;
      chatting = false;
      const config = model.config();
      info = { ...config, name: source.name, tokenizer: tok.name, threads: engine.threads, threadsNote: engine.note ?? "" };
      return info;
    },

    /** The loaded model's facts (the demo page's model card), or null. */
    info: () => info,

    /**
     * Begin a run: ("generate", { prompt, temperature, topp, seed, steps }),
     * ("continue", { steps }), or ("chat", { message, system, temperature,
     * topp, seed, steps }) — a chat goes on in the same KV cache until a
     * generate() or `restart: true` begins another. Then step() until null.
     */
    begin(kind, o) {
      const m = need();
      const p = { ...DEFAULTS, ...o };
      if (kind === "generate") {
        m.start(p.prompt, p.temperature, p.topp, p.seed, p.steps);
        chatting = false;
      } else if (kind === "continue") {
        if (chatting) throw new Error("continue() goes on from a generate(); in a chat, send the next message with chat()");
        m.extend(o.steps ?? 0);
      } else if (kind === "chat") {
        if (!chatting || o.restart) {
          m.startChat(p.system ?? "", p.temperature, p.topp, p.seed, o.steps ?? 0);
          chatting = true;
        }
        m.chatUser(p.message);
      } else {
        throw new Error(`unknown run ${kind}`);
      }
      return { seed: m.seed };
    },

    /** The next piece of text ("" while a character is incomplete), or null at the end. */
    step() {
      const piece = need().step();
      return piece === undefined ? null : piece;
    },

    tokenize: (text) => Array.from(need().encode(text)),
    decode: (ids) => need().decode(ids),
    /** The token ids of the sequence so far (prompt included). */
    tokens: () => Array.from(need().tokens()),

    /** The inspector's data (load with inspect: true): topk / attention / timings, at `pos` or the newest position. */
    inspect(what, { pos, k = 10, layer = 0, head = 0 } = {}) {
      const m = need();
      if (!m.inspect) throw new Error("the inspector is off: load with { inspect: true }");
      if (pos !== undefined) m.inspectAt(pos);
      if (what === "topk") return m.topk(k);
      if (what === "attention") return Array.from(m.attention(layer, head));
      if (what === "timings") return m.timings(pos);
      throw new Error(`unknown inspector data ${what}`);
    },

    /** Bytes of wasm memory of the engine the model runs in (it grows, never shrinks, and is reused). */
    memoryBytes: () => (engine ?? shared?.single)?.wasm.memory.buffer.byteLength ?? 0,

    /** Free the model (its weights and KV cache); the engine's memory is reused by the next load. */
    dispose() {
      if (model) model.free();
      model = null;
      engine = null;
      info = null;
      chatting = false;
    },
  };
}

function oneShot(bytes) {
  let given = false;
  return async () => (given ? { done: true } : ((given = true), { done: false, value: bytes }));
}

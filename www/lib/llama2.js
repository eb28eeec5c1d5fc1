// The package's high-level API: `Llama2`. One class over two backends with
// the same calls: the engine core (www/lib/core.js) on the caller's thread,
// or in a dedicated Worker (www/lib/worker.js) so the caller's thread never
// blocks however large the model. Generation is an async iterator of text
// pieces; every run and load takes an AbortSignal.
import { createCore, DEFAULTS } from "./core.js";

const NODE = Boolean(globalThis.process?.versions?.node);

// ------------------------------------------------------------ arguments

function fail(message) {
  throw new TypeError(message);
}

function number(o, key, { min = -Infinity, max = Infinity, whole = false } = {}) {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== "number" || Number.isNaN(v)) fail(`${key} must be a number, not ${describe(v)}`);
  if (whole && !Number.isInteger(v)) fail(`${key} must be a whole number, not ${v}`);
  if (v < min || v > max) fail(`${key} must be ${max === Infinity ? `at least ${min}` : `from ${min} to ${max}`}, not ${v}`);
  return v;
}

function describe(v) {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an Array";
  if (typeof v === "object") return `a ${v.constructor?.name ?? "object"}`;
  return typeof v === "string" ? "a string" : `${typeof v} ${String(v)}`;
}

function signalOf(o) {
  const s = o.signal;
  if (s !== undefined && !(typeof AbortSignal !== "undefined" && s instanceof AbortSignal)) fail(`signal must be an AbortSignal, not ${describe(s)}`);
  return s;
}

/** Sampling options, checked: { temperature, topp, seed, steps }. */
function sampling(o, { steps = true } = {}) {
  if (o === null || typeof o !== "object") fail(`options must be an object, not ${describe(o)}`);
  const out = {
    temperature: number(o, "temperature", { min: 0 }),
    topp: number(o, "topp", { min: 0, max: 1 }),
    seed: number(o, "seed", { min: 0, max: Number.MAX_SAFE_INTEGER, whole: true }),
  };
  if (steps) out.steps = number(o, "steps", { min: 0, whole: true });
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}

function text(v, what) {
  if (typeof v !== "string") fail(`${what} must be a string, not ${describe(v)}`);
  return v;
}

// ------------------------------------------------------------ backends

/** The core on this thread, behind the same asynchronous calls as the Worker. */
function localBackend() {
  const core = createCore();
  return {
    worker: false,
    load: (args, { progress, signal }) => core.load(args, { progress, signal }),
    async *run(kind, options, signal) {
      const started = core.begin(kind, options);
      for (;;) {
        if (signal?.aborted) throw Object.assign(new Error("the generation was aborted"), { name: "AbortError" });
        const piece = core.step();
        if (piece === null) return started;
        if (piece) yield piece;
      }
    },
    call: async (op, args) => {
      if (op === "tokenize") return core.tokenize(args.text);
      if (op === "decode") return core.decode(args.ids);
      if (op === "tokens") return core.tokens();
      if (op === "inspect") return core.inspect(args.what, args.options);
      if (op === "memoryBytes") return core.memoryBytes();
      if (op === "dispose") return core.dispose();
      throw new Error(`unknown request ${op}`);
    },
    terminate() {},
  };
}

/** The core in a dedicated Worker (www/lib/worker.js). */
function workerBackend() {
  const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: "llama2-wasm" });
  let next = 0;
  const pending = new Map(); // id -> { resolve, reject, progress?, piece? }
  let dead = null;
  worker.onmessage = ({ data }) => {
    const p = pending.get(data.id);
    if (!p) return;
    if (data.progress) p.progress?.(...data.progress);
    else if (data.piece !== undefined) p.piece?.(data.piece);
    else {
      pending.delete(data.id);
      if (data.error) p.reject(Object.assign(new Error(data.error.message), { name: data.error.name }));
      else p.resolve(data.result);
    }
  };
  worker.onerror = (e) => {
    e.preventDefault?.();
    dead = new Error(`the llama2-wasm Worker failed: ${e.message || "it did not start"}`);
    for (const p of pending.values()) p.reject(dead);
    pending.clear();
  };
  function send(op, args, handlers = {}, signal) {
    if (dead) return Promise.reject(dead);
    const id = ++next;
    const promise = new Promise((resolve, reject) => pending.set(id, { resolve, reject, ...handlers }));
    const abort = () => worker.postMessage({ abort: id });
    signal?.addEventListener("abort", abort, { once: true });
    worker.postMessage({ id, op, args });
    const settled = promise.finally(() => signal?.removeEventListener("abort", abort));
    settled.id = id;
    return settled;
  }
  return {
    worker: true,
    load: (args, { progress, signal }) => send("load", args, { progress }, signal),
    async *run(kind, options, signal) {
      // pieces arrive as messages: queue them for the iterator
      const queue = [];
      let wake = null;
      let finished = null;
      const sent = send("run", { kind, options }, { piece: (p) => (queue.push(p), wake?.()) }, signal);
      const done = sent.then(
        (result) => (finished = { result }),
        (error) => (finished = { error }),
      ).finally(() => wake?.());
      try {
        for (;;) {
          if (signal?.aborted) throw Object.assign(new Error("the generation was aborted"), { name: "AbortError" });
          if (queue.length) {
            worker.postMessage({ took: sent.id });
            yield queue.shift();
            continue;
          }
          if (finished) {
            if (finished.error) throw finished.error;
            return finished.result;
          }
          await new Promise((resolve) => (wake = resolve));
          wake = null;
        }
      } finally {
        if (!finished) worker.postMessage({ abort: sent.id }); // the caller stopped iterating: stop the run too
        await done;
      }
    },
    call: (op, args) => send(op, args),
    terminate: () => worker.terminate(),
  };
}

// ------------------------------------------------------------ Llama2

/**
 * A loaded llama2.c model. `await Llama2.load({ checkpoint, tokenizer })`,
 * then `for await (const piece of llm.generate(prompt)) …`.
 */
export class Llama2 {
  #backend;
  #info;
  #running = null; // the run in progress (one at a time)

  constructor(backend, info) {
    this.#backend = backend;
    this.#info = info;
  }

  /**
   * Load a checkpoint and its tokenizer. Each is a URL, a File or Blob,
   * bytes, a ReadableStream, a file path (Node.js), or "stored:<name>" (a
   * model the demo page stored). Options: int8 (quantize fp32 weights to
   * Q8_0 on load), threads, inspect, worker, onProgress(loaded, total,
   * file), signal.
   */
  static async load(options) {
    if (options === null || typeof options !== "object") fail(`Llama2.load needs an options object, not ${describe(options)}`);
    const { checkpoint, tokenizer, int8 = false, inspect = false, onProgress } = options;
    if (checkpoint === undefined) fail("Llama2.load: `checkpoint` is required");
    if (tokenizer === undefined) fail("Llama2.load: `tokenizer` is required");
    if (typeof int8 !== "boolean") fail(`int8 must be true or false, not ${describe(int8)}`);
    if (typeof inspect !== "boolean") fail(`inspect must be true or false, not ${describe(inspect)}`);
    if (onProgress !== undefined && typeof onProgress !== "function") fail(`onProgress must be a function, not ${describe(onProgress)}`);
    const threads = number(options, "threads", { min: 1, max: 16, whole: true }) ?? 0;
    const signal = signalOf(options);
    const useWorker = options.worker ?? (!NODE && typeof Worker !== "undefined");
    if (typeof useWorker !== "boolean") fail(`worker must be true or false, not ${describe(useWorker)}`);
    if (useWorker && typeof Worker === "undefined") fail("worker: true needs Web Workers, which this environment does not have");
    const backend = useWorker ? workerBackend() : localBackend();
    // a relative URL means relative to the caller's page, not to the Worker's script
    const resolve = (v) => (typeof v === "string" && !v.startsWith("stored:") && globalThis.location && !NODE
      ? new URL(v, globalThis.location.href).href : v instanceof URL ? v.href : v);
    try {
      const info = await backend.load(
        { checkpoint: resolve(checkpoint), tokenizer: resolve(tokenizer), int8, threads, inspect },
        { progress: onProgress, signal },
      );
      return new Llama2(backend, { ...info, worker: backend.worker });
    } catch (e) {
      backend.terminate();
      throw e;
    }
  }

  /** The model's facts: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len, params, bytes, precision, threads, worker… */
  get info() {
    return this.#info;
  }

  /** Text pieces of run.c's generation from `prompt`, as they come. Options: temperature, topp, seed, steps, signal. */
  generate(prompt, options = {}) {
    return this.#run("generate", { prompt: text(prompt, "prompt"), ...sampling(options) }, signalOf(options));
  }

  /** The whole text of generate(prompt, options). */
  async complete(prompt, options = {}) {
    let out = "";
    for await (const piece of this.generate(prompt, options)) out += piece;
    return out;
  }

  /**
   * Go on from where the last generate() stopped (its steps, or an abort),
   * in the same KV cache: only the new tokens cost time. Options: steps
   * (more positions; 0 or none: up to seq_len), signal.
   */
  continue(options = {}) {
    const { steps } = sampling(options);
    return this.#run("continue", steps === undefined ? {} : { steps }, signalOf(options));
  }

  /**
   * The assistant's answer to `message` in run.c's chat template
   * ([INST] … [/INST]), going on with the conversation in the same KV
   * cache. Options: system (first turn), restart (a new conversation),
   * temperature, topp, seed, steps (the conversation's positions), signal.
   */
  chat(message, options = {}) {
    const o = { message: text(message, "message"), ...sampling(options) };
    if (options.system !== undefined) o.system = text(options.system, "system");
    if (options.restart !== undefined) o.restart = Boolean(options.restart);
    return this.#run("chat", o, signalOf(options));
  }

  /** run.c's encode(text, bos=1, eos=0): token ids. */
  tokenize(value) {
    return this.#call("tokenize", { text: text(value, "text") });
  }

  /** The text of token ids, as a generation prints them. */
  decode(ids) {
    if (!Array.isArray(ids) && !(ArrayBuffer.isView(ids) && !(ids instanceof DataView))) fail(`ids must be an Array of token ids, not ${describe(ids)}`);
    return this.#call("decode", { ids: Array.from(ids) });
  }

  /** Token ids of the sequence so far (prompt included). */
  tokens() {
    return this.#call("tokens", {});
  }

  /**
   * The inspector's data, when loaded with `inspect: true`: "topk" (the
   * next-token candidates: { k }), "attention" ({ layer, head }), "timings";
   * at `pos` (recomputed from the KV cache) or the newest position.
   */
  inspect(what, options = {}) {
    if (!["topk", "attention", "timings"].includes(what)) fail(`inspect takes "topk", "attention" or "timings", not ${describe(what)}`);
    return this.#call("inspect", { what, options });
  }

  /** Bytes of wasm memory of the engine this model runs in. */
  memoryBytes() {
    return this.#call("memoryBytes", {});
  }

  /** Free the model (and its Worker). The object cannot be used after. */
  async dispose() {
    if (!this.#backend) return;
    const backend = this.#backend;
    this.#backend = null;
    try {
      await backend.call("dispose", {});
    } finally {
      backend.terminate();
    }
  }

  #live() {
    if (!this.#backend) throw new Error("this Llama2 was disposed: load another");
    return this.#backend;
  }

  #call(op, args) {
    try {
      const backend = this.#live();
      if (this.#running) throw new Error("a generation is running: wait for it, or abort it with its signal");
      return backend.call(op, args);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** One run at a time; the iterator ends the run when it is left early. */
  #run(kind, options, signal) {
    const llm = this;
    return {
      async *[Symbol.asyncIterator]() {
        const backend = llm.#live();
        if (llm.#running) throw new Error("a generation is running: wait for it, or abort it with its signal");
        const run = backend.run(kind, options, signal);
        llm.#running = run;
        try {
          yield* run;
        } finally {
          llm.#running = null;
        }
      },
      /** The whole text. */
      async text() {
        let out = "";
        for await (const piece of this) out += piece;
        return out;
      },
    };
  }
}

export { DEFAULTS };

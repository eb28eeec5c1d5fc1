// The package's Worker (`Llama2.load({ worker: true })`): the engine core
// (www/lib/core.js) on a thread of its own, so generation never blocks the
// caller's thread. The threaded build's helper Workers hang off this one.
//
// Messages in: { id, op, args } (ops: load, run, tokenize, decode,
// tokens, inspect, memoryBytes, dispose), { abort: id } and { took: id }
// (the caller took a piece of run `id`). Out:
// { id, result } | { id, error: { name, message } } | { id, progress: [loaded,
// total, file] } | { id, piece }. A run steps the model and posts each piece,
// yielding to this Worker's message queue between steps so an abort is seen
// within one step.
import { abortError, createCore } from "./core.js";

const core = createCore();
const aborted = new Set(); // ids whose caller aborted them
const controllers = new Map(); // id -> AbortController of a load

// a fast yield (a setTimeout(0) would wait 4 ms once nested)
const channel = new MessageChannel();
const waiting = [];
channel.port1.onmessage = () => waiting.shift()?.();
const yieldToMessages = () => new Promise((resolve) => (waiting.push(resolve), channel.port2.postMessage(0)));

// A run computes at most AHEAD pieces the caller has not taken yet: enough
// to keep the engine busy while the caller handles one, few enough that an
// abort leaves little wasted work and a slow caller no growing queue.
const AHEAD = 4;
const credits = new Map(); // run id -> pieces it may still send before the caller takes one
let resume = null; // wakes a run waiting for credit

const ops = {
  load: async (id, args) => {
    const controller = new AbortController();
    controllers.set(id, controller);
    try {
      return await core.load(args, { signal: controller.signal, progress: (...p) => self.postMessage({ id, progress: p }) });
    } finally {
      controllers.delete(id);
    }
  },
  run: async (id, { kind, options }) => {
    const started = core.begin(kind, options);
    credits.set(id, AHEAD);
    try {
      for (;;) {
        await yieldToMessages();
        // (the caller has not taken the last AHEAD pieces: wait for it)
        while (credits.get(id) <= 0 && !aborted.has(id)) await new Promise((resolve) => (resume = resolve));
        if (aborted.has(id)) throw abortError("the generation");
        const piece = core.step();
        if (piece === null) return started;
        if (piece) {
          credits.set(id, credits.get(id) - 1);
          self.postMessage({ id, piece });
        }
      }
    } finally {
      credits.delete(id);
    }
  },
  tokenize: (id, { text }) => core.tokenize(text),
  decode: (id, { ids }) => core.decode(ids),
  tokens: () => core.tokens(),
  inspect: (id, { what, options }) => core.inspect(what, options),
  memoryBytes: () => core.memoryBytes(),
  dispose: () => core.dispose(),
};

self.onmessage = async ({ data }) => {
  if (data.abort !== undefined) {
    aborted.add(data.abort);
    controllers.get(data.abort)?.abort();
    resume?.();
    return;
  }
  if (data.took !== undefined) {
    // the caller took a piece: one more may be computed
    if (credits.has(data.took)) credits.set(data.took, credits.get(data.took) + 1);
    resume?.();
    return;
  }
  const { id, op, args } = data;
  try {
    if (!Object.hasOwn(ops, op)) throw new Error(`unknown request ${op}`);
    self.postMessage({ id, result: await ops[op](id, args ?? {}) });
  } catch (e) {
    self.postMessage({ id, error: { name: e?.name ?? "Error", message: e?.message ?? String(e) } });
  } finally {
    aborted.delete(id);
  }
};

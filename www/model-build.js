// Building a Model from bytes: a checkpoint streamed into the engine's
// ModelLoader. No DOM: the page (www/models.js) and the npm package
// (www/lib/) both build their models with it.
import { bury, crashText, isDead, isEngineCrash } from "./engine-guard.js";

/**
 * Stream a checkpoint into wasm: the first 256 bytes pick the engine
 * (`engineFor(head)`: one thread or several, by the model's size,
 * www/engine.js planFor), `makeRoom(engine, fileInfo)` may unload the
 * current model, then a ModelLoader opens in that engine (header checked,
 * weights allocated) and every chunk goes straight in. Peak memory is the
 * weights plus one chunk, not the file twice. `guard`: wraps the engine's
 * objects (www/engine-guard.js); `progress(loaded, total)` is told of each
 * chunk, and `progress.done()` (if any) at the end. Resolves to { model, engine }.
 */
export async function buildModel(source, tokenizer, { quantize, engineFor, makeRoom = () => {}, guard = (o) => o, progress = () => {} }) {
  let loader = null;
  let engine = null;
  let head = new Uint8Array(0);
  let received = 0;
  const open = async (first) => {
    engine = await engineFor(first);
    makeRoom(engine, engine.pkg.fileInfo(first, source.total));
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
    progress.done?.();
    // the weights allocated so far are freed with the loader (a dead
    // engine's loader cannot be freed: the restart lets the whole instance go)
    if (loader && isDead(engine.pkg)) bury(loader);
    else if (loader) {
      try {
        loader.free();
      } catch (e) {
        console.warn("llama2-wasm: could not free the loader", e);
      }
    }
  }
}

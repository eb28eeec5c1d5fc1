// A helper Worker of the threaded build: instantiate the page's wasm module
// on the page's shared memory, then take part `index` of every large matmul
// (threadHelper returns only on an error; the Worker sleeps inside it
// between tokens).
import init, { threadHelper, threadHelperFailed } from "./pkg-threads/llama2_wasm.js";

self.onmessage = async ({ data: { module, memory, index } }) => {
  try {
    await init({ module_or_path: module, memory });
  } catch (e) {
    self.postMessage({ error: `helper ${index}: ${e.message}` });
    return;
  }
  self.postMessage({ ready: true });
  try {
    threadHelper(index);
  } catch (e) {
    // a refused index, or a trap inside a matmul part: tell the pool, whose
    // caller then computes this helper's parts itself instead of waiting
    threadHelperFailed(index);
    console.error(`llama2-wasm helper ${index} stopped: ${e.message}`);
    self.postMessage({ error: `helper ${index} stopped: ${e.message}` });
  }
};

// @ts-check
// The package's browser example (examples/index.html): load stories260K
// from this page's folder, then print a story as it is written. The engine
// runs in a Worker, so the page stays responsive.
import { Llama2 } from "llama2-wasm";

const story = /** @type {HTMLElement} */ (document.getElementById("story"));
const llm = await Llama2.load({
  checkpoint: "models/stories260K.bin",
  tokenizer: "models/tok512.bin",
  onProgress: (loaded, total) => (story.textContent = `loading ${Math.round((100 * loaded) / total)}%`),
});
story.textContent = "";
for await (const piece of llm.generate("Once upon a time", { temperature: 0, steps: 120 })) {
  story.textContent += piece;
}
story.dataset.done = "true";
await llm.dispose();

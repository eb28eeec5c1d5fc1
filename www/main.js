// The demo page: load the default model, generate, and swap in whatever
// checkpoint / tokenizer the user drops. This module only wires the parts
// together; each owns its part of the page:
//   messages.js      the error box and the notice line
//   generation.js    the form, the generation loop, the text (stats.js: the numbers)
//   choose.js        choosing the next token yourself (generation.js's choose mode)
//   inspector/       the inspector panel (index.js; records.js and one module per view)
//   backend.js       CPU or GPU (WebGPU) for each model: timed, switchable, falls back to the CPU
//   models.js        the loaded model and its engine, loads, crashes and restarts
//                    (model-build.js streams a checkpoint in; card.js the model card;
//                    progress.js the progress rows; engine-guard.js sees crashes)
//   library.js       the model menu, downloads and the models stored on this device
//                    (catalog.js, download.js, storage.js + storage-worker.js)
//   files.js         the file picker and dropping files
//   compare.js       comparing two settings side by side (drives the model itself)
//   debug.js         window.llama2Debug, for the tests and the benchmark
import { createBackend } from "./backend.js";
import { createChooser } from "./choose.js";
import { createCompare } from "./compare.js";
import { installDebugHooks } from "./debug.js";
import { wireFiles } from "./files.js";
import { createGeneration } from "./generation.js";
import { createInspector } from "./inspector/index.js";
import { createLibrary } from "./library.js";
import { createMessages } from "./messages.js";
import { createModels } from "./models.js";
import { startServiceWorker } from "./offline.js";

const messages = createMessages();
// (the three are created in turn; their callbacks reach the ones after them)
const generation = createGeneration({
  model: () => models.model,
  clearError: messages.clear,
  showError: (e) => models.showError(e),
  onText: (model, spans, promptLength, manual) => {
    compare.stop("generate"); // the model is generation's now
    inspector.newText(model, spans, promptLength, manual);
  },
  onPaint: (force) => inspector.paint(force),
  onSpeed: (tokPerSec) => inspector.speed(tokPerSec),
  onStopClick: () => inspector.stopped(),
  onTakeBack: (pos) => inspector.takeBack(pos),
  onChooseEnd: () => chooser.ended(),
  onGpuFailure: (model, e) => backend.failed(model, e),
});
const inspector = createInspector({ output: generation.output, onWalkStep: (report) => generation.walkStep(report) });
const chooser = createChooser({
  generation,
  model: () => models.model,
  inspecting: () => inspector.open,
  clearError: messages.clear,
  showError: (e) => models.showError(e),
});
// while the backend is chosen the model is not to be used: no Generate meanwhile
const backend = createBackend({
  messages,
  onBusy: (busy) => generation.hold(busy),
});
const models = createModels({ messages, generation, inspector, backend });
const compare = createCompare({
  model: () => models.model,
  // its runs replace the KV cache: the page's text can no longer be inspected or continued
  takeModel: () => {
    generation.stop();
    generation.forget();
    inspector.invalidate();
  },
  inspecting: () => inspector.open,
});
const library = createLibrary({ models, messages });
wireFiles({ models, messages, library });

async function main() {
  if (!(await startServiceWorker())) return; // dist only (offline.js): registers sw.js, may reload once
  try {
    await models.startEngines();
    installDebugHooks({ models, generation, inspector, library, compare, backend });
  } catch (e) {
    models.showError(new Error("this browser could not start the WebAssembly module (it needs WebAssembly SIMD: " +
      `current Chrome, Firefox or Safari): ${e.message}`));
    return;
  }
  models.enqueue(async () => {
    await library.loadStart(); // the stored model last run, else the default one
    generation.start();
  }, models.showError);
}

main();

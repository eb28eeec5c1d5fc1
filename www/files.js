// Opening files: the file picker (#file-input) and dropping files anywhere
// on the page (#drop-overlay while dragging). Each batch is sorted into
// checkpoint / tokenizer by content, checked by the engine before anything
// is read whole, and loaded after the loads before it (www/models.js).
import { fileSource, readAll, readHead } from "./loader.js";

const $ = (id) => document.getElementById(id);

/** `models`: www/models.js; `messages`: www/messages.js; `library`: www/library.js (keeps files). */
export function wireFiles({ models, messages, library }) {
  /** Sort dropped files into checkpoint / tokenizer by content, then load them. */
  async function openFiles(files) {
    messages.clear();
    messages.notice("");
    const checkpoints = [];
    const tokenizers = [];
    for (const file of files) {
      const info = models.fileInfo(await readHead(file), file.size);
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
        models.tokenizerInfo(tok.bytes, ckpt?.info.vocab_size);
      } catch (e) {
        throw new Error(`${tok.name}: ${e.message}${ckpt ? ` (${ckpt.file.name})` : ""}`, { cause: e });
      }
    }
    if (ckpt) await models.loadCheckpoint(ckpt.file, ckpt.info.vocab_size, tok);
    else models.useTokenizer(tok);
    // loaded fine (header and size verified): keep them if the box says so
    if (tokenizers.length) await library.keep(tokenizers[0], { kind: "tokenizer" });
    if (ckpt) await library.keep(ckpt.file, ckpt.info);
  }

  function queueFiles(fileList) {
    const files = [...fileList]; // copy now: the input's list is cleared right after
    if (!files.length) return;
    models.enqueue(() => openFiles(files));
  }

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

// The tokenizers the page holds, by vocabulary size: the two served beside
// the default model, and any the person dropped or downloaded.
import { readAll, urlSource } from "./loader.js";
import { progressRow } from "./progress.js";

// tokenizers served beside the default model, by vocabulary size
const TOKENIZERS = { 512: "models/tok512.bin", 32000: "models/tokenizer.bin" };

/**
 * The tokenizers the page holds, by vocabulary size: `get(vocabSize)`
 * resolves to `{ name, bytes }` (cached, or served beside the default
 * model); `set(vocabSize, tok)` keeps one for checkpoints that come alone.
 */
export function createTokenizers() {
  const byVocab = new Map();
  return {
    set: (vocabSize, tok) => byVocab.set(vocabSize, tok),
    async get(vocabSize) {
      if (byVocab.has(vocabSize)) return byVocab.get(vocabSize);
      const url = TOKENIZERS[vocabSize];
      if (!url) {
        throw new Error(`this checkpoint has a vocabulary of ${vocabSize.toLocaleString("en-US")} tokens ` +
          "and no matching tokenizer is loaded: drop its tokenizer.bin together with it");
      }
      const source = await urlSource(url);
      const progress = progressRow(source.name);
      try {
        const entry = { name: source.name, bytes: await readAll(source, progress) };
        byVocab.set(vocabSize, entry);
        return entry;
      } finally {
        progress.done();
      }
    },
  };
}


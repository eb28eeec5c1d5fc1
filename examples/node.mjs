// @ts-check
// The package in Node.js: `node node.mjs stories260K.bin tok512.bin ["prompt"]`
// prints a story as it is written, then goes on with it (the same KV cache).
import { Llama2 } from "llama2-wasm";

const [checkpoint = "models/stories260K.bin", tokenizer = "models/tok512.bin", prompt = "Once upon a time"] =
  globalThis.process.argv.slice(2);
const llm = await Llama2.load({ checkpoint, tokenizer });
console.log(`${llm.info.name}: dim ${llm.info.dim}, ${llm.info.n_layers} layers, ${llm.info.threads} thread`);
let text = "";
for await (const piece of llm.generate(prompt, { temperature: 0, steps: 60 })) text += piece;
for await (const piece of llm.continue({ steps: 60 })) text += piece;
console.log(text);
await llm.dispose();

// The model card (#card): what the loaded model is, and how it runs.
import { formatBytes } from "./loader.js";

const threadsText = (n) => `${n} thread${n === 1 ? "" : "s"}`;

/**
 * Fill the card. `config`: the model's config(); `engine`: the engine it runs
 * in ({ threads, note }, www/engine.js), `name` / `tokenizer`: file names.
 */
export function showCard({ config: c, engine, name, tokenizer }) {
  const precision = c.group_size
    ? `Q8_0 (group ${c.group_size})${c.quantized_on_load ? ", quantized on load" : ""}`
    : "fp32";
  const fields = {
    name,
    format: (c.version === 0 ? "legacy v0" : `export v${c.version}`) + `, ${precision}` +
      (c.shared_classifier ? "" : ", separate classifier"),
    dim: c.dim,
    hidden_dim: c.hidden_dim,
    n_layers: c.n_layers,
    n_heads: c.n_heads,
    n_kv_heads: c.n_kv_heads,
    vocab_size: c.vocab_size.toLocaleString("en-US"),
    seq_len: c.seq_len,
    params: c.params.toLocaleString("en-US"),
    weights: formatBytes(c.weight_bytes),
    state: formatBytes(c.state_bytes),
    tokenizer,
    // the build and threads chosen for this model, and why (www/engine.js planFor)
    kernels: `${c.kernels}, ${threadsText(engine.threads)}${engine.note ? ` (${engine.note})` : ""}`,
  };
  for (const [key, value] of Object.entries(fields)) {
    document.querySelector(`#card [data-field="${key}"]`).textContent = String(value);
  }
}

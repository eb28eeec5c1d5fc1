// Which lines of our Rust made each vector of the walkthrough.
//
// A stage (the ids of Model.trace()'s `id`, plus "next": the sampler) lists
// snippets: a file, the function the lines live in, and the lines to
// highlight, from the first line containing `from` up to (not including)
// the first line after it containing `until` (no `from`: the whole
// function). `names` are what the highlighted lines must contain: the
// variables and calls the walkthrough's sentence talks about.
//
// The lines themselves are never copied here: `./build.sh` runs
// code-extract.mjs, which reads the source, finds each range and writes
// www/inspector/code.json (the page reads it when the walkthrough opens). A
// range that no longer exists, or lost one of its names, stops the build,
// and tests/e2e/code.test.js checks the JSON against the source line by
// line: the code shown cannot drift from the code that runs.

const FORWARD = { file: "src/transformer.rs", fn: "forward_recorded" };
const HEAD = { file: "src/transformer.rs", fn: "final_head" };
const KERNEL = (fn, names) => ({ file: "src/kernels/scalar.rs", fn, names, kernel: true });
const QKV = { ...FORWARD, from: "// qkv matmuls for this position", until: "rec.mark(Phase::Projections, Some(l), &[]);" };
const ROPE = { ...FORWARD, from: "// RoPE relative positional encoding", until: "let (key, value) =" };

export const CODE_MAP = {
  embedding: [
    { ...FORWARD, from: "// copy the token embedding into x", until: "// RoPE: the rotation angle",
      names: ["token_embedding_table", "s.x"] },
  ],
  attNorm: [
    { ...FORWARD, from: "// attention rmsnorm", until: "// key and value point", names: ["k.rmsnorm", "rms_att_weight"] },
    KERNEL("rmsnorm", ["ss += xi * xi", "1e-5"]),
  ],
  query: [
    { ...QKV, names: ["w.wq", "s.q"] },
    { ...ROPE, names: ["s.q[i] = v0 * fcr - v1 * fci"] },
    { ...FORWARD, from: "// RoPE: the rotation angle", until: "rec.mark(Phase::Other", names: ["rope_rotation"] },
    KERNEL("matmul", ["val += wi * xi"]),
  ],
  key: [
    { ...QKV, names: ["w.wk", "key_cache"] },
    { ...ROPE, names: ["key[i] = v0 * fcr - v1 * fci"] },
    KERNEL("matmul", ["val += wi * xi"]),
  ],
  value: [
    { ...QKV, names: ["w.wv", "value_cache"] },
    KERNEL("matmul", ["val += wi * xi"]),
  ],
  attWeights: [
    { ...FORWARD, from: "// multihead attention: iterate over all heads", until: "rec.attention(l, h, att);",
      names: ["attention_scores", "k.softmax(att)"] },
    KERNEL("attention_scores", ["dot(q, &keys"]),
    KERNEL("softmax", ["max_val", "sum"]),
  ],
  attOutput: [
    { ...FORWARD, from: "// weighted sum of the values, into xb", until: "rec.mark(Phase::Attention", names: ["attention_mix"] },
    KERNEL("attention_mix", ["axpy(out, a"]),
  ],
  attResidual: [
    { ...FORWARD, from: "// final matmul to get the output of the attention", until: "rec.mark(Phase::Projections, Some(l), &[(Stage::AttResidual",
      names: ["w.wo", "*x += d"] },
    KERNEL("matmul", ["val += wi * xi"]),
  ],
  ffnNorm: [
    { ...FORWARD, from: "// ffn rmsnorm", until: "// PyTorch: self.w2", names: ["rms_ffn_weight"] },
    KERNEL("rmsnorm", ["ss += xi * xi", "1e-5"]),
  ],
  hidden: [
    { ...FORWARD, from: "// PyTorch: self.w2", until: "rec.vectors(Some(l), &[(Stage::FfnNorm", names: ["w.w1", "w.w3", "k.swiglu"] },
    KERNEL("swiglu", ["(-val).exp()"]),
  ],
  ffnResidual: [
    { ...FORWARD, from: "// final matmul to get the output of the ffn", until: "rec.mark(Phase::Ffn", names: ["w.w2", "*x += d"] },
  ],
  finalNorm: [
    { ...FORWARD, from: "// final rmsnorm and classifier into logits", until: "rec.mark(Phase::Classifier", names: ["final_head"] },
    { ...HEAD, from: "// final rmsnorm", until: "// classifier into logits", names: ["rms_final_weight"] },
  ],
  logits: [
    { ...HEAD, from: "// classifier into logits", names: ["w.wcls()", "logits"] },
    KERNEL("matmul", ["val += wi * xi"]),
  ],
  next: [
    { file: "src/sampler.rs", fn: "sample", names: ["sample_argmax", "random_f32", "sample_topp"] },
    { file: "src/sampler.rs", fn: "probabilities", names: ["temperature"] },
    { file: "src/sampler.rs", fn: "sample_topp", names: ["cdf += pi.prob"] },
  ],
};

/** The walkthrough's extra last stage: the sampler picking the next token. */
export const NEXT_STAGE = {
  id: "next",
  name: "next",
  shape: "(1,)",
  explain: "the sampler: argmax at temperature 0, else softmax(logits / temperature), top-p, and one coin",
};

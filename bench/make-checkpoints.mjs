// Random-weight checkpoints of the stories15M / 42M / 110M shapes (legacy v0,
// fp32, shared classifier, 32000-token vocabulary): they cost the same per
// token as the real ones, which cannot be downloaded here. Deterministic
// (xorshift32 from a fixed seed); written once into bench/models/ and
// reused while their size is right. Each also gets a Q8_0 copy in llama2.c's
// export version 2 (export.py's `version2_export`, the file runq.c reads):
// random-<shape>_q80.bin, the same weights quantized.
//
//   node make-checkpoints.mjs [15M] [42M] [110M]
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const SHAPES = {
  // dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len (../shared/README.md)
  "15M": [288, 768, 6, 6, 6, 32000, 256],
  "42M": [512, 1376, 8, 8, 8, 32000, 1024],
  "110M": [768, 2048, 12, 12, 12, 32000, 1024],
};

const here = path.dirname(fileURLToPath(import.meta.url));
export const modelsDir = path.join(here, "models");

/** Floats after the 28-byte header: weights plus the legacy freq_cis block. */
function floatCount([dim, hidden, layers, heads, , vocab, seqLen]) {
  const headSize = dim / heads;
  return vocab * dim + layers * (2 * dim + 4 * dim * dim + 3 * dim * hidden) + dim + seqLen * headSize;
}

export function checkpointPath(shape) {
  return path.join(modelsDir, `random-${shape}.bin`);
}

/** Write (or reuse) the checkpoint of one shape; returns its path. */
export function makeCheckpoint(shape) {
  const fields = SHAPES[shape];
  const file = checkpointPath(shape);
  const size = 28 + 4 * floatCount(fields);
  if (fs.existsSync(file) && fs.statSync(file).size === size) return file;
  fs.mkdirSync(modelsDir, { recursive: true });
  const fd = fs.openSync(file + ".part", "w");
  fs.writeSync(fd, new Uint8Array(new Int32Array(fields).buffer));
  const dim = fields[0];
  const chunk = new Float32Array(1 << 20);
  let state = 0x9e3779b9 >>> 0;
  let left = floatCount(fields);
  let written = 0;
  while (left > 0) {
    const n = Math.min(left, chunk.length);
    for (let i = 0; i < n; i++) {
      state ^= state << 13;
      state >>>= 0;
      state ^= state >>> 17;
      state ^= state << 5;
      state >>>= 0;
      chunk[i] = (state / 4294967296 - 0.5) * 0.1; // uniform in [-0.05, 0.05)
    }
    // token 1 (BOS) gets a zero embedding, so as the shared classifier's row
    // its logit is 0 and greedy decoding never stops early on it
    for (let i = Math.max(written, dim); i < Math.min(written + n, 2 * dim); i++) chunk[i - written] = 0;
    fs.writeSync(fd, new Uint8Array(chunk.buffer, 0, n * 4));
    written += n;
    left -= n;
  }
  fs.closeSync(fd);
  fs.renameSync(file + ".part", file);
  return file;
}

/**
 * The Q8_0 group size: export.py's (64, halved until it divides dim) also
 * halved until it divides hidden_dim, as runq.c needs (its matmul walks each
 * row in whole groups) and our loader checks. That is the group size our
 * quantize-on-load picks (checkpoint::default_group_size), so this file holds
 * the weights `llama2 -q 1` makes from the fp32 file: 32 for the 15M and 42M
 * shapes (export.py alone would pick 64 for 42M: groups straddling the
 * 1376-wide w2 rows, which runq.c's matmul does not handle), 64 for 110M.
 */
export function groupSize(shape) {
  const [dim, hidden] = SHAPES[shape];
  let gs = 64;
  while (dim % gs || hidden % gs) gs /= 2;
  return gs;
}

export function q80Path(shape) {
  return path.join(modelsDir, `random-${shape}_q80.bin`);
}

/** round(x), ties to even (torch.round, Rust's round_ties_even). */
function roundTiesEven(x) {
  const r = Math.round(x); // ties toward +infinity
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * export.py's quantize_q80 on one matrix, into q (int8) and s (one fp32 scale
 * per group): scale = max|w| / 127, q = round(w / scale), all in f32 as our
 * loader computes it (an all-zero group divides 0 by 0: NaN, stored as 0).
 */
function quantizeQ80(w, gs, q, s) {
  for (let g = 0; g < w.length / gs; g++) {
    let wmax = 0;
    for (let i = g * gs; i < (g + 1) * gs; i++) wmax = Math.max(wmax, Math.abs(w[i]));
    const scale = Math.fround(wmax / 127);
    s[g] = scale;
    for (let i = g * gs; i < (g + 1) * gs; i++) q[i] = roundTiesEven(Math.fround(w[i] / scale));
  }
}

/** Write (or reuse) the Q8_0 copy of one shape's checkpoint; returns its path. */
export function makeQ80Checkpoint(shape) {
  const src = makeCheckpoint(shape);
  const file = q80Path(shape);
  const [fields, gs] = [SHAPES[shape], groupSize(shape)];
  if (!fs.existsSync(file) || fs.statSync(file).size !== exportQ80(src, fields, gs, null)) exportQ80(src, fields, gs, file);
  return file;
}

/**
 * Quantize a legacy fp32 checkpoint `src` (header `fields`, shared classifier)
 * into `file` with group size `gs`, tensor by tensor; returns the Q8_0 file's
 * size (and writes nothing when `file` is null). Layout (export.py's
 * version2_export; runq.c's read_checkpoint and memory_map_weights): a
 * 256-byte header (u32 magic "ak42", i32 version 2, the 7 i32 config fields,
 * u8 shared_classifier, i32 group size, zeros); the rmsnorm weights in fp32
 * (attention for every layer, ffn for every layer, final); then each matrix as
 * int8 values followed by its fp32 scales: the token embeddings, then wq, wk,
 * wv, wo, w1, w2, w3 layer by layer (the classifier is shared: none follows).
 */
export function exportQ80(src, fields, gs, file) {
  const [dim, hidden, layers, heads, kvHeads, vocab] = fields;
  const kvDim = (dim * kvHeads) / heads;
  // the fp32 file's tensors, in run.c's legacy order: [name, floats per layer, layers]
  const legacy = [["emb", vocab * dim, 1], ["rmsAtt", dim, layers], ["wq", dim * dim, layers], ["wk", dim * kvDim, layers],
    ["wv", dim * kvDim, layers], ["wo", dim * dim, layers], ["rmsFfn", dim, layers], ["w1", hidden * dim, layers],
    ["w2", dim * hidden, layers], ["w3", hidden * dim, layers], ["rmsFinal", dim, 1]];
  const at = {};
  let offset = 28;
  for (const [name, n, count] of legacy) {
    at[name] = { offset, n, count };
    offset += 4 * n * count;
  }
  const matrices = ["emb", "wq", "wk", "wv", "wo", "w1", "w2", "w3"];
  const size = 256 + 4 * (2 * layers * dim + dim) +
    matrices.reduce((sum, m) => sum + at[m].count * (at[m].n + (4 * at[m].n) / gs), 0);
  if (!file) return size;

  const header = new DataView(new ArrayBuffer(256));
  header.setUint32(0, 0x616b3432, true);
  header.setInt32(4, 2, true);
  fields.forEach((f, i) => header.setInt32(8 + 4 * i, f, true));
  header.setUint8(36, 1); // shared classifier
  header.setInt32(37, gs, true);
  const input = fs.openSync(src, "r");
  const fd = fs.openSync(file + ".part", "w");
  const read = (name, layer) => {
    const { offset, n } = at[name];
    const w = new Float32Array(n);
    fs.readSync(input, new Uint8Array(w.buffer), 0, 4 * n, offset + 4 * n * layer);
    return w;
  };
  const write = (a) => fs.writeSync(fd, new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  write(new Uint8Array(header.buffer));
  for (const name of ["rmsAtt", "rmsFfn", "rmsFinal"]) {
    for (let l = 0; l < at[name].count; l++) write(read(name, l));
  }
  for (const name of matrices) {
    for (let l = 0; l < at[name].count; l++) {
      const w = read(name, l);
      const q = new Int8Array(w.length);
      const s = new Float32Array(w.length / gs);
      quantizeQ80(w, gs, q, s);
      write(q);
      write(s);
    }
  }
  fs.closeSync(input);
  fs.closeSync(fd);
  fs.renameSync(file + ".part", file);
  return size;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const shape of process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(SHAPES)) {
    for (const make of [makeCheckpoint, makeQ80Checkpoint]) {
      const t = performance.now();
      const file = make(shape);
      console.log(`${file}: ${fs.statSync(file).size} bytes (${((performance.now() - t) / 1000).toFixed(1)} s)`);
    }
  }
}

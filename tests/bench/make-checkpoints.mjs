// Random-weight checkpoints of the stories15M / 42M / 110M shapes (legacy v0,
// fp32, shared classifier, 32000-token vocabulary): they cost the same per
// token as the real ones, which cannot be downloaded here. Deterministic
// (xorshift32 from a fixed seed); written once into tests/bench/models/ and
// reused while their size is right.
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

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const shape of process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(SHAPES)) {
    const t = performance.now();
    const file = makeCheckpoint(shape);
    console.log(`${file}: ${fs.statSync(file).size} bytes (${((performance.now() - t) / 1000).toFixed(1)} s)`);
  }
}

// The models the page offers in one click: llama2.c's story models from
// their public addresses (karpathy/tinyllamas on Hugging Face), with the
// 32000-token Llama 2 tokenizer they share. `?models=<base URL>` takes the
// checkpoints and tokenizer.bin from another place with the same file names
// (a mirror, or the tests' local server).

const TINYLLAMAS = "https://huggingface.co/karpathy/tinyllamas/resolve/main/";

/**
 * A checkpoint's bytes from its shape, as export.py writes the legacy
 * format: a 28-byte header, then every weight as f32 (the classifier shared
 * with the embedding) and RoPE's cos/sin tables (seq_len x head_size).
 */
function checkpointBytes({ dim, hidden, layers, heads, vocab, seqLen }) {
  const perLayer = 2 * dim + 4 * dim * dim + 3 * dim * hidden; // 2 norms, wq wk wv wo, w1 w2 w3
  return 28 + 4 * (vocab * dim + layers * perLayer + dim + seqLen * (dim / heads));
}

const STORIES = [
  { id: "stories15M", about: "6 layers, dim 288", shape: { dim: 288, hidden: 768, layers: 6, heads: 6, vocab: 32000, seqLen: 256 } },
  { id: "stories42M", about: "8 layers, dim 512", shape: { dim: 512, hidden: 1376, layers: 8, heads: 8, vocab: 32000, seqLen: 1024 } },
  { id: "stories110M", about: "12 layers, dim 768", shape: { dim: 768, hidden: 2048, layers: 12, heads: 12, vocab: 32000, seqLen: 1024 } },
];

/**
 * The menu: [{ id, label, about, builtIn?, checkpoint?, tokenizer? }], each
 * file { name, url, size } (size: what the file should be, shown before
 * downloading; the server's Content-Length is what is checked).
 */
export function catalog(search = globalThis.location?.search ?? "") {
  const mirror = new URLSearchParams(search).get("models");
  const base = mirror ? new URL(mirror, globalThis.location?.href).href.replace(/\/?$/, "/") : TINYLLAMAS;
  // tokenizer.bin is not on Hugging Face: served beside the page (build.sh copies llama2.c's)
  const tokenizer = { name: "tokenizer.bin", url: mirror ? base + "tokenizer.bin" : "models/tokenizer.bin", size: 433869 };
  return [
    { id: "stories260K", label: "stories260K", about: "the built-in model, 5 layers, dim 64", builtIn: true, size: 1056540 + 6227 },
    ...STORIES.map(({ id, about, shape }) => ({
      id,
      label: id,
      about,
      checkpoint: { name: `${id}.bin`, url: `${base}${id}.bin`, size: checkpointBytes(shape) },
      tokenizer,
    })),
  ];
}

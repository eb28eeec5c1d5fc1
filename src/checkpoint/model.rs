//! The types: the config, the header, the weights.

use super::size::Size;
use crate::error::Result;

/// The hyperparameters, as in run.c's `Config` (all validated positive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub dim: usize,        // transformer dimension
    pub hidden_dim: usize, // for ffn layers
    pub n_layers: usize,   // number of layers
    pub n_heads: usize,    // number of query heads
    pub n_kv_heads: usize, // number of key/value heads (can be < query heads because of multiquery)
    pub vocab_size: usize, // vocabulary size, usually 256 (byte-level)
    pub seq_len: usize,    // max sequence length
}

/// One f32 buffer of run.c's `RunState`: what it holds (as "too large"
/// errors name it) and its length in values.
pub type StateBuffer = (&'static str, u64);

impl Config {
    pub fn head_size(&self) -> usize {
        self.dim / self.n_heads
    }
    /// Width of the key/value vectors: smaller than `dim` with grouped-query attention.
    pub fn kv_dim(&self) -> usize {
        self.dim * self.n_kv_heads / self.n_heads
    }
    /// How many query heads share one key/value head.
    pub fn kv_mul(&self) -> usize {
        self.n_heads / self.n_kv_heads
    }

    /// run.c's `RunState` f32 buffers in `RunState`'s order, written once:
    /// the memory pre-flight ([`run_state_bytes`](super::run_state_bytes)) adds them up and
    /// `RunState::new` allocates them. Lengths are checked u64s (a header
    /// can claim anything). Not listed: a Q8_0 model's `xq`, the int8 copy
    /// of one matmul input.
    pub fn run_state_buffers(&self) -> Result<[StateBuffer; 12]> {
        let (dim, hidden_dim, vocab_size) = (self.dim as u64, self.hidden_dim as u64, self.vocab_size as u64);
        let att = (Size::of(self.n_heads) * self.seq_len).get()?;
        let kv = (Size::of(self.n_layers) * self.seq_len * self.kv_dim()).get()?;
        let rope = self.head_size() as u64 / 2;
        Ok([
            ("activations", dim),        // x (dim,) activation at current time stamp
            ("activations", dim),        // xb (dim,) same, but inside a residual branch
            ("activations", dim),        // xb2 (dim,)
            ("activations", hidden_dim), // hb (hidden_dim,) in the ffn
            ("activations", hidden_dim), // hb2 (hidden_dim,)
            ("activations", dim),        // q (dim,) query
            ("attention scores", att),   // att (n_heads, seq_len)
            ("logits", vocab_size),      // logits (vocab_size,)
            ("the KV cache", kv),        // key_cache (layer, seq_len, kv_dim)
            ("the KV cache", kv),        // value_cache (layer, seq_len, kv_dim)
            ("activations", rope),       // rope_cos (head_size / 2,)
            ("activations", rope),       // rope_sin (head_size / 2,)
        ])
    }
}

/// What the header says about the file, besides the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub config: Config,
    /// 0 for the legacy format, else the export format's version.
    pub version: u32,
    /// The classifier reuses the token embedding table (no `wcls` in the file).
    pub shared_classifier: bool,
    /// Q8_0 group size of an export version 2 file (`None` for fp32 files).
    pub group_size: Option<usize>,
}

/// One weight matrix (all layers, concatenated), fp32 or Q8_0.
#[derive(Debug, Clone, PartialEq)]
pub enum Matrix {
    F32(Vec<f32>),
    /// int8 values, and one fp32 scale per group of `group_size` values (a
    /// group never straddles a row): w[i] = q[i] * s[i / group_size].
    Q8 { q: Vec<i8>, s: Vec<f32>, group_size: usize },
}

impl Matrix {
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        match self {
            Matrix::F32(v) => v.len() * 4,
            Matrix::Q8 { q, s, .. } => q.len() + s.len() * 4,
        }
    }
}

/// The weights, one buffer per tensor as in run.c's `TransformerWeights`.
/// Matrices are row-major in PyTorch's (out, in) layout: `W (d, n)` maps an
/// `n`-vector to a `d`-vector, so each output is one contiguous row.
#[derive(Debug, Clone)]
pub struct Weights {
    pub token_embedding_table: Matrix, // (vocab_size, dim)
    pub rms_att_weight: Vec<f32>,      // (layer, dim) rmsnorm weights
    pub rms_ffn_weight: Vec<f32>,      // (layer, dim)
    pub wq: Matrix,                    // (layer, n_heads * head_size, dim)
    pub wk: Matrix,                    // (layer, kv_dim, dim)
    pub wv: Matrix,                    // (layer, kv_dim, dim)
    pub wo: Matrix,                    // (layer, dim, n_heads * head_size)
    pub w1: Matrix,                    // (layer, hidden_dim, dim)
    pub w2: Matrix,                    // (layer, dim, hidden_dim)
    pub w3: Matrix,                    // (layer, hidden_dim, dim)
    pub rms_final_weight: Vec<f32>,    // (dim,)
    /// (vocab_size, dim) classifier; `None` when shared with the embedding table.
    pub wcls: Option<Matrix>,
}

impl Weights {
    /// Q8_0 group size when the matrices are quantized (every matrix of a
    /// model shares it), `None` for fp32 weights.
    pub fn group_size(&self) -> Option<usize> {
        match self.token_embedding_table {
            Matrix::Q8 { group_size, .. } => Some(group_size),
            Matrix::F32(_) => None,
        }
    }

    /// The classifier matrix, wherever it lives.
    pub fn wcls(&self) -> &Matrix {
        self.wcls.as_ref().unwrap_or(&self.token_embedding_table)
    }

    pub(super) fn matrices_mut(&mut self) -> impl Iterator<Item = &mut Matrix> {
        [&mut self.token_embedding_table, &mut self.wq, &mut self.wk, &mut self.wv, &mut self.wo, &mut self.w1, &mut self.w2, &mut self.w3]
            .into_iter()
            .chain(self.wcls.as_mut())
    }

    /// Bytes held by all the weights.
    pub fn bytes(&self) -> usize {
        let m = [&self.token_embedding_table, &self.wq, &self.wk, &self.wv, &self.wo, &self.w1, &self.w2, &self.w3];
        m.iter().map(|m| m.bytes()).sum::<usize>()
            + self.wcls.as_ref().map_or(0, |m| m.bytes())
            + 4 * (self.rms_att_weight.len() + self.rms_ffn_weight.len() + self.rms_final_weight.len())
    }
}

/// A loaded checkpoint: header plus weights.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub header: Header,
    pub weights: Weights,
}

impl Checkpoint {
    pub fn config(&self) -> &Config {
        &self.header.config
    }
}

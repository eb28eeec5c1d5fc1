//! Where each tensor lies in the file and how big it is, in checked u64
//! arithmetic: a header can claim anything, and these sizes are compared
//! with the file's length and the memory limit before any allocation.

use super::model::{Checkpoint, Config, Header};
use super::size::Size;
use crate::error::Result;

/// Number of f32 values of each tensor.
pub(super) struct Sizes {
    token_embedding_table: u64,
    rms: u64, // rms_att_weight and rms_ffn_weight each
    wq: u64,  // and wo
    wk: u64,  // and wv
    w1: u64,  // and w2, w3
    rms_final: u64,
    freq_cis: u64, // legacy only: freq_cis_real + freq_cis_imag
    wcls: u64,
}

/// The tensors of a file, in the order of `Weights`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Tensor {
    Embedding,
    RmsAtt,
    RmsFfn,
    Wq,
    Wk,
    Wv,
    Wo,
    W1,
    W2,
    W3,
    RmsFinal,
    FreqCis, // legacy only: the old RoPE tables, skipped
    Wcls,    // only when the classifier is not shared
}
pub(super) const TENSORS: usize = 13;
/// Each tensor's name as run.c's `TransformerWeights` calls it, by `Tensor as usize`.
pub(super) const TENSOR_NAMES: [&str; TENSORS] = [
    "token_embedding_table", "rms_att_weight", "rms_ffn_weight", "wq", "wk", "wv", "wo", "w1", "w2", "w3",
    "rms_final_weight", "freq_cis", "wcls",
];

/// run.c's `memory_map_weights` order.
const LEGACY_ORDER: &[Tensor] = {
    use Tensor::*;
    &[Embedding, RmsAtt, Wq, Wk, Wv, Wo, RmsFfn, W1, W2, W3, RmsFinal, FreqCis, Wcls]
};
/// export.py's `version1_export` and `version2_export` order: the norms
/// first, then the matrices (in version 2 each layer's int8 values followed
/// by its scales).
const EXPORT_ORDER: &[Tensor] = {
    use Tensor::*;
    &[RmsAtt, RmsFfn, RmsFinal, Embedding, Wq, Wk, Wv, Wo, W1, W2, W3, Wcls]
};

impl Tensor {
    /// The tensors in the order a file with this header stores them.
    pub(super) fn file_order(h: &Header) -> &'static [Tensor] {
        if h.version == 0 { LEGACY_ORDER } else { EXPORT_ORDER }
    }

    /// Matrices are quantized in Q8_0 files; the rmsnorm vectors never are.
    pub(super) fn is_matrix(self) -> bool {
        !matches!(self, Tensor::RmsAtt | Tensor::RmsFfn | Tensor::RmsFinal | Tensor::FreqCis)
    }

    /// How many per-layer pieces a Q8_0 file stores this matrix in.
    pub(super) fn pieces(self, c: &Config) -> u64 {
        match self {
            Tensor::Wq | Tensor::Wk | Tensor::Wv | Tensor::Wo | Tensor::W1 | Tensor::W2 | Tensor::W3 => c.n_layers as u64,
            _ => 1,
        }
    }
}

impl Sizes {
    pub(super) fn of(h: &Header) -> Result<Sizes> {
        let c = &h.config;
        let (l, dim) = (c.n_layers, c.dim);
        Ok(Sizes {
            token_embedding_table: (Size::of(c.vocab_size) * dim).get()?,
            rms: (Size::of(l) * dim).get()?,
            wq: (Size::of(l) * dim * c.n_heads * c.head_size()).get()?,
            wk: (Size::of(l) * dim * c.n_kv_heads * c.head_size()).get()?,
            w1: (Size::of(l) * dim * c.hidden_dim).get()?,
            rms_final: dim as u64,
            freq_cis: if h.version == 0 { (Size::of(c.seq_len) * c.head_size()).get()? } else { 0 },
            wcls: if h.shared_classifier { 0 } else { (Size::of(c.vocab_size) * dim).get()? },
        })
    }

    /// Floats of one tensor in the file.
    pub(super) fn tensor(&self, t: Tensor, shared_classifier: bool) -> u64 {
        match t {
            Tensor::Embedding => self.token_embedding_table,
            Tensor::RmsAtt | Tensor::RmsFfn => self.rms,
            Tensor::Wq | Tensor::Wo => self.wq,
            Tensor::Wk | Tensor::Wv => self.wk,
            Tensor::W1 | Tensor::W2 | Tensor::W3 => self.w1,
            Tensor::RmsFinal => self.rms_final,
            Tensor::FreqCis => self.freq_cis,
            Tensor::Wcls if shared_classifier => 0,
            Tensor::Wcls => self.wcls,
        }
    }

    /// Bytes the kept weights take in this header's format (matrices as int8
    /// plus a 4-byte scale per group in Q8_0, else 4 bytes per value).
    fn kept_bytes(&self, h: &Header) -> Result<u64> {
        let order = Tensor::file_order(h).iter().filter(|t| !matches!(t, Tensor::FreqCis));
        let bytes = order.map(|&t| {
            let n = self.tensor(t, h.shared_classifier);
            match h.group_size {
                Some(gs) if t.is_matrix() => Size::of(n) + Size::of(n / gs as u64) * 4,
                _ => Size::of(n) * 4,
            }
        });
        bytes.sum::<Size>().get()
    }

    /// Weights we keep, in values (everything but the legacy freq_cis block).
    fn kept_floats(&self) -> Result<u64> {
        // each size, and how many tensors have it (wq and wo, w1, w2 and w3, ...)
        let (s, tensors) = (self, [1, 2, 2, 2, 3, 1, 1]);
        let values = [s.token_embedding_table, s.rms, s.wq, s.wk, s.w1, s.rms_final, s.wcls];
        values.into_iter().zip(tensors).map(|(n, tensors)| Size::of(n) * tensors).sum::<Size>().get()
    }
}

/// How many bytes a file with this header must have.
pub fn expected_file_size(h: &Header) -> Result<u64> {
    let s = Sizes::of(h)?;
    (Size::of(s.kept_bytes(h)?) + Size::of(s.freq_cis) * 4 + Size::of(h.bytes_in_file())).get()
}

/// Bytes the weights occupy once loaded (freq_cis dropped).
pub fn weight_bytes(h: &Header) -> Result<u64> {
    Sizes::of(h)?.kept_bytes(h)
}

/// Number of parameters a header describes (0 if it overflows, which a
/// loaded checkpoint's header never does).
pub fn param_count(h: &Header) -> u64 {
    Sizes::of(h).and_then(|s| s.kept_floats()).unwrap_or(0)
}

impl Checkpoint {
    /// Number of parameters held (the classifier counted once when shared).
    pub fn param_count(&self) -> u64 {
        param_count(&self.header)
    }
}

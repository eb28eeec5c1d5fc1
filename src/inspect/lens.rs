//! The logit lens: what the model would say next if it stopped after each
//! layer.
//!
//! The residual stream x after layer l goes through the model's head, the
//! final RMSNorm and the classifier (`Transformer::head`: the very function
//! the forward pass ends with), and the softmax of those logits is the
//! layer's prediction. The last layer's x is what the forward pass itself
//! sends through the head, so its lens *is* the model's output, bit for bit;
//! the layers before it show where the final answer appears.
//!
//! Computed only when asked, by replaying one position of the KV cache (as
//! `Llama::inspect_at` does: positions 0..pos are unchanged, so the replay
//! computes exactly what the live step did, and rewrites position pos of the
//! cache with the same values). One call costs that forward pass plus
//! n_layers heads: n_layers classifier matmuls (vocab_size x dim), softmaxes
//! and top-k scans over the vocabulary. For the stories110M shape that is
//! 12 more 32000 x 768 matmuls (1.2 GB of fp32 weights read): measured
//! natively on the 2-core CI VM, 81 ms a call against a 23 ms step (3.5
//! steps); as Q8_0, 27 ms against 8; the 15M shape, 14 ms against 3
//! (tests/lens.rs, `cost_of_a_lens_call`). Nothing is kept between calls.

use super::distribution::{rank, top_k};
use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::transformer::Transformer;

/// One of a prediction's most likely next tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LensCandidate {
    pub token: u32,
    /// Softmax of the logits at temperature 1.
    pub prob: f32,
    pub logit: f32,
}

/// A distribution over the next token at temperature 1 (the softmax of the
/// logits, with the model's kernels): what the model computes, before the
/// sampler's temperature and top-p.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The `k` most likely tokens, most likely first (ties: lower id first).
    pub candidates: Vec<LensCandidate>,
    /// The token that came next: its probability and 1-based rank here,
    /// also when it is not among the candidates.
    pub next: Option<(f32, usize)>,
}

/// The logit lens of one position.
#[derive(Debug, Clone, PartialEq)]
pub struct Lens {
    pub pos: usize,
    /// The token that went in at `pos`.
    pub token: u32,
    /// The token that came after it.
    pub next: Option<u32>,
    /// (n_layers,) the prediction of x after each layer, layer 0 first.
    pub layers: Vec<Prediction>,
    /// The forward pass's own logits (what the sampler saw); equal to the
    /// last layer's prediction.
    pub output: Prediction,
}

/// Replay position `pos` (where `token` went in, `next` came after) of
/// `t`'s KV cache, and look through each layer: the `k` most likely tokens
/// of each (more than the vocabulary: all of it). `pos` must be a position
/// the cache holds, computed with `t`'s current kernels (`Llama::lens`
/// checks that).
pub fn lens(t: &mut Transformer, token: u32, pos: usize, next: Option<u32>, k: usize) -> Result<Lens> {
    let c = *t.config();
    let kernels = t.kernels();
    let mut residuals = zeros(c.n_layers * c.dim, "the logit lens's residual streams")?; // (n_layers, dim)
    let mut probs = zeros(c.vocab_size, "the logit lens's probabilities")?; // (vocab_size,)
    let logits = t.forward_residuals(token, pos, &mut residuals)?;
    let output = predict(kernels, logits, &mut probs, k, next);
    let mut layers = Vec::with_capacity(c.n_layers);
    for x in residuals.chunks_exact(c.dim) {
        let logits = t.head(x)?;
        layers.push(predict(kernels, logits, &mut probs, k, next));
    }
    Ok(Lens { pos, token, next, layers, output })
}

/// softmax(logits) into `probs`, and its top `k` and `next`'s rank.
fn predict(kernels: Kernels, logits: &[f32], probs: &mut [f32], k: usize, next: Option<u32>) -> Prediction {
    probs.copy_from_slice(logits);
    kernels.softmax(probs);
    let candidates = top_k(probs, k)
        .into_iter()
        .map(|(prob, token)| LensCandidate { token, prob, logit: logits[token as usize] })
        .collect();
    Prediction { candidates, next: next.and_then(|t| rank(probs, t)) }
}

/// A zeroed buffer, or an error instead of an allocation abort.
fn zeros(n: usize, what: &'static str) -> Result<Vec<f32>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::TooLarge { what, bytes: n as u64 * 4 })?;
    v.resize(n, 0.0);
    Ok(v)
}

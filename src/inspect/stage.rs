//! The walkthrough: run.c's intermediate vectors, named, shaped and explained.

/// The vectors of run.c's forward pass, in its order, for the walkthrough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Embedding,
    AttNorm,
    Query,
    Key,
    Value,
    AttWeights,
    AttOutput,
    AttResidual,
    FfnNorm,
    Hidden,
    FfnResidual,
    FinalNorm,
    Logits,
}

impl Stage {
    /// The variable's name in run.c.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Embedding => "x",
            Stage::AttNorm => "xb",
            Stage::Query => "q",
            Stage::Key => "k",
            Stage::Value => "v",
            Stage::AttWeights => "att",
            Stage::AttOutput => "xb",
            Stage::AttResidual => "x",
            Stage::FfnNorm => "xb",
            Stage::Hidden => "hb",
            Stage::FfnResidual => "x",
            Stage::FinalNorm => "x",
            Stage::Logits => "logits",
        }
    }

    /// The shape in the config's terms.
    pub fn shape(self) -> &'static str {
        match self {
            Stage::Embedding | Stage::AttNorm | Stage::Query | Stage::AttOutput => "(dim,)",
            Stage::AttResidual | Stage::FfnNorm | Stage::FfnResidual | Stage::FinalNorm => "(dim,)",
            Stage::Key | Stage::Value => "(kv_dim,)",
            Stage::AttWeights => "(pos + 1,)",
            Stage::Hidden => "(hidden_dim,)",
            Stage::Logits => "(vocab_size,)",
        }
    }

    /// One line on what happened, as the comments of run.c's `forward` say it.
    pub fn explain(self) -> &'static str {
        match self {
            Stage::Embedding => "copy the token's row of the embedding table into x",
            Stage::AttNorm => "attention rmsnorm: x scaled to unit RMS, times this layer's rms_att_weight",
            Stage::Query => "q = wq @ xb, then RoPE rotates each pair by an angle set by pos",
            Stage::Key => "k = wk @ xb, RoPE-rotated, stored in the KV cache at pos",
            Stage::Value => "v = wv @ xb, stored in the KV cache at pos",
            Stage::AttWeights => "head 0: softmax over positions 0..pos of q·k / sqrt(head_size)",
            Stage::AttOutput => "each head's attention-weighted sum of the cached v vectors",
            Stage::AttResidual => "x += wo @ xb: the attention block's output joins the residual stream",
            Stage::FfnNorm => "ffn rmsnorm of x, times rms_ffn_weight",
            Stage::Hidden => "hb = silu(w1 @ xb) * (w3 @ xb): the SwiGLU hidden layer",
            Stage::FfnResidual => "x += w2 @ hb: the feed-forward block's output joins the residual stream",
            Stage::FinalNorm => "final rmsnorm of x, times rms_final_weight",
            Stage::Logits => "logits = wcls @ x: one score per vocabulary token",
        }
    }
}

/// How many leading values a walkthrough snapshot keeps.
pub const SNAPSHOT_VALUES: usize = 8;

/// One vector of the walkthrough: where it was, its first values and its size.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub stage: Stage,
    /// The layer, or `None` before the first and after the last.
    pub layer: Option<usize>,
    /// Its length.
    pub len: usize,
    /// Its first [`SNAPSHOT_VALUES`] values.
    pub values: Vec<f32>,
    /// Root mean square of all its values.
    pub rms: f32,
}


impl Snapshot {
    /// The first values, length and RMS of `v`.
    pub fn of(stage: Stage, layer: Option<usize>, v: &[f32]) -> Snapshot {
        let sum_sq: f64 = v.iter().map(|&x| x as f64 * x as f64).sum();
        Snapshot {
            stage,
            layer,
            len: v.len(),
            values: v[..v.len().min(SNAPSHOT_VALUES)].to_vec(),
            rms: (sum_sq / v.len().max(1) as f64).sqrt() as f32,
        }
    }
}

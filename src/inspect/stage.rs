//! The walkthrough: run.c's intermediate vectors, named, shaped and explained.

use crate::checkpoint::Config;
use crate::error::{Error, Result};

/// The vectors of run.c's forward pass, in its order, for the walkthrough.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// Every stage, in the forward pass's order.
    pub const ALL: [Stage; 13] = [
        Stage::Embedding,
        Stage::AttNorm,
        Stage::Query,
        Stage::Key,
        Stage::Value,
        Stage::AttWeights,
        Stage::AttOutput,
        Stage::AttResidual,
        Stage::FfnNorm,
        Stage::Hidden,
        Stage::FfnResidual,
        Stage::FinalNorm,
        Stage::Logits,
    ];

    /// A stable name for programs (the page, `Model.follow`): unique, where
    /// run.c's names repeat (three stages are `xb`).
    pub fn id(self) -> &'static str {
        match self {
            Stage::Embedding => "embedding",
            Stage::AttNorm => "attNorm",
            Stage::Query => "query",
            Stage::Key => "key",
            Stage::Value => "value",
            Stage::AttWeights => "attWeights",
            Stage::AttOutput => "attOutput",
            Stage::AttResidual => "attResidual",
            Stage::FfnNorm => "ffnNorm",
            Stage::Hidden => "hidden",
            Stage::FfnResidual => "ffnResidual",
            Stage::FinalNorm => "finalNorm",
            Stage::Logits => "logits",
        }
    }

    /// The stage of an [`id`](Stage::id).
    pub fn from_id(id: &str) -> Result<Stage> {
        Stage::ALL.into_iter().find(|s| s.id() == id).ok_or_else(|| {
            let ids: Vec<&str> = Stage::ALL.iter().map(|s| s.id()).collect();
            Error::Argument(format!("no stage {id:?}: the stages are {}", ids.join(", ")))
        })
    }

    /// Is it computed inside each layer (so it needs a layer to be named)?
    /// Only the embedding, the final RMSNorm and the logits are not.
    pub fn in_layer(self) -> bool {
        !matches!(self, Stage::Embedding | Stage::FinalNorm | Stage::Logits)
    }

    /// Its length for a model of config `c` at position `pos` (what
    /// [`shape`](Stage::shape) says in words).
    pub fn len(self, c: &Config, pos: usize) -> usize {
        match self {
            Stage::Embedding | Stage::AttNorm | Stage::Query | Stage::AttOutput => c.dim,
            Stage::AttResidual | Stage::FfnNorm | Stage::FfnResidual | Stage::FinalNorm => c.dim,
            Stage::Key | Stage::Value => c.kv_dim(),
            Stage::AttWeights => pos.saturating_add(1),
            Stage::Hidden => c.hidden_dim,
            Stage::Logits => c.vocab_size,
        }
    }

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

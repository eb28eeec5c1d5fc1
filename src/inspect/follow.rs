//! Follow one number: which inputs one element of one walkthrough vector
//! came from, and the arithmetic that made it.
//!
//! A replay of one position (as the logit lens replays one: positions
//! 0..pos of the KV cache are unchanged, so it computes exactly what the
//! live step did) copies the whole vectors of the chosen layer, or of the
//! embedding and the head, into a [`Capture`]: the walkthrough's vectors,
//! and the few in between that it does not show (q and k before RoPE, the
//! outputs of wo, w1, w3 and w2 before the residual additions and SwiGLU).
//! The explanation is then computed from those vectors and the weights:
//!
//! - `value` is always the element as the forward pass computed it, bit
//!   for bit (the walkthrough's value, `logits()[i]` for a logit);
//! - the recomputations next to it (a dot product summed in order, run.c's
//!   RMSNorm formula, SwiGLU, softmax) use run.c's scalar arithmetic. With
//!   the scalar kernels they equal `value` bit for bit; with the SIMD
//!   kernels (the default) they can differ from it by rounding: the SIMD
//!   dot products sum in another order (several 4-lane accumulators), and
//!   SIMD `exp` is a polynomial about 1 ulp from libm's. Q8_0 matmuls and
//!   the attention's weighted sum are exact with either set (see
//!   [`Matmul`], [`AttOutput`]).
//!
//! One call costs one forward pass of the position plus a few copies of
//! dim- and hidden_dim-long vectors and one weight row (two for the
//! hidden layer): for the stories110M shape, measured natively on the
//! 2-core CI VM, 23-24 ms a call against a 25 ms step; as Q8_0, 8 against
//! 8.6 (tests/follow.rs, `cost_of_a_follow_call`). Nothing is kept between
//! calls. Without a capture the forward pass pays one `Option` test per
//! copy point (measured: no change in tokens/s).

use super::Stage;
use crate::checkpoint::{Config, Matrix};
use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::transformer::Transformer;

/// run.c's `1e-5f` inside RMSNorm's square root.
pub const RMS_EPS: f32 = 1e-5;

/// How one element of one stage's vector was computed.
#[derive(Debug, Clone, PartialEq)]
pub struct Follow {
    pub pos: usize,
    /// The token that went in at `pos`.
    pub token: u32,
    pub stage: Stage,
    /// `None` for the stages outside the layers (embedding, final norm, logits).
    pub layer: Option<usize>,
    /// The element's index in the stage's vector.
    pub index: usize,
    /// The element as the forward pass computed it.
    pub value: f32,
    /// The inputs and the arithmetic.
    pub kind: Kind,
}

/// The operation that made the element, with its inputs.
// (one per call, never in a collection: Swiglu's two matmuls inline are fine)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Embedding: the token's row of the embedding table.
    Embedding(Embedding),
    /// AttNorm, FfnNorm, FinalNorm.
    Rmsnorm(Rmsnorm),
    /// Query and Key (then RoPE), Value, AttResidual (wo, then the
    /// residual addition), FfnResidual (w2, then the addition), Logits (wcls).
    Matmul(Matmul),
    /// Hidden: silu(w1 @ xb) * (w3 @ xb).
    Swiglu(Swiglu),
    /// AttWeights: one of head 0's attention weights (as the walkthrough shows).
    Attention(Attention),
    /// AttOutput: the attention-weighted sum of the cached values.
    AttOutput(AttOutput),
}

impl Kind {
    /// "embedding", "rmsnorm", "matmul", "swiglu", "attention" or "attOutput".
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Embedding(_) => "embedding",
            Kind::Rmsnorm(_) => "rmsnorm",
            Kind::Matmul(_) => "matmul",
            Kind::Swiglu(_) => "swiglu",
            Kind::Attention(_) => "attention",
            Kind::AttOutput(_) => "attOutput",
        }
    }
}

/// x = token_embedding_table[token]: the element is `row[index]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    pub token: u32,
    /// (dim,) the token's row of the table (dequantized for Q8_0: q * scale).
    pub row: Vec<f32>,
    /// Q8_0: the element's int8 value and its group's scale (value = q * scale).
    pub quantized: Option<(i8, f32)>,
}

/// o[i] = weight[i] * (x[i] / rms), rms = sqrt(Σ x² / dim + 1e-5), as run.c
/// computes it: `ss` summed in order, then o = weight * (ss * x) with ss = 1 / rms.
#[derive(Debug, Clone, PartialEq)]
pub struct Rmsnorm {
    /// "rms_att_weight", "rms_ffn_weight" or "rms_final_weight".
    pub weight_name: &'static str,
    /// (dim,) the x normalized: all of it sets the scale.
    pub input: Vec<f32>,
    /// input[index]
    pub x: f32,
    /// The weight's element `index`.
    pub weight: f32,
    /// Σ x², summed in order in f32 (run.c's `ss`; the SIMD kernel sums in 4 lanes).
    pub sum_squares: f32,
    /// sum_squares / dim
    pub mean_square: f32,
    /// 1e-5, added to the mean square (no division by zero).
    pub eps: f32,
    /// sqrt(mean_square + eps)
    pub rms: f32,
    /// 1 / rms: run.c's `ss = 1.0f / sqrtf(ss)`.
    pub inv_rms: f32,
    /// weight * (inv_rms * x): run.c's formula with these numbers (equal to
    /// the value with the scalar kernels; within rounding with SIMD).
    pub recomputed: f32,
}

/// out[row] = W[row] · input: one row of a matrix times the matmul's input.
///
/// fp32 weights: `products[j] = weights[j] * input[j]` and `partial_sums` is
/// their running sum in order, in f32, as run.c's loop sums it (with the
/// scalar kernels the last one is `dot` bit for bit). The SIMD kernel sums
/// in another order (several 4-lane accumulators), so `dot`, the forward
/// pass's number, can differ from `sum` by rounding (a few ulps of the
/// largest partial sums).
///
/// Q8_0 weights: the forward pass quantizes the input too (runq.c's
/// `quantize`, in groups of `group_size`), and the kernel sums exact integer
/// products per group, then adds each group's `ival * w_scale * x_scale` to
/// a float total. `quantized` has those int8 values and scales;
/// `products[j] = (wq[j] * xq[j]) * w_scale * x_scale` is each term, and
/// `partial_sums[j]` is the kernel's own running total: the total before
/// the group plus the group's integer sum so far, scaled. At the end of each
/// group it is the kernel's total exactly, so `sum` equals `dot` bit for bit
/// (both kernel sets). `weights` is the row dequantized (q * scale) and
/// `input` the unquantized f32 input, for display.
#[derive(Debug, Clone, PartialEq)]
pub struct Matmul {
    /// run.c's name of the matrix: "wq", "wk", "wv", "wo", "w1", "w3", "w2" or "wcls".
    pub matrix: &'static str,
    /// The row taken (the element's index in the matmul's output).
    pub row: usize,
    /// (n,) that row of the layer's matrix (dequantized for Q8_0).
    pub weights: Vec<f32>,
    /// (n,) the matmul's input as the forward pass held it: the normed xb
    /// for wq, wk, wv, w1, w3; the attention output xb for wo; hb for w2;
    /// the final-normed x for wcls.
    pub input: Vec<f32>,
    /// Q8_0: the int8 values and scales the kernel multiplied.
    pub quantized: Option<Quantized>,
    /// (n,) each term of the dot product.
    pub products: Vec<f32>,
    /// (n,) the running sum of the terms, in order.
    pub partial_sums: Vec<f32>,
    /// The last partial sum: the dot product summed in order.
    pub sum: f32,
    /// The dot product as the forward pass computed it (its kernels' order).
    pub dot: f32,
    /// AttResidual and FfnResidual: x before the residual addition
    /// (value = x_before + dot, exactly).
    pub x_before: Option<f32>,
    /// Query and Key: the RoPE rotation that turned `dot` into the value.
    pub rope: Option<Rope>,
}

/// A Q8_0 matmul's integers: W ≈ weights_q * weight_scales, input ≈
/// input_q * input_scales, one scale per group of `group_size`.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    pub group_size: usize,
    /// (n,) the row's int8 values, and (n / group_size,) their scales.
    pub weights_q: Vec<i8>,
    pub weight_scales: Vec<f32>,
    /// (n,) the input quantized as the forward pass quantized it, and its scales.
    pub input_q: Vec<i8>,
    pub input_scales: Vec<f32>,
    /// (n / group_size,) each group's integer dot product (exact).
    pub group_dots: Vec<i32>,
}

/// RoPE on the pair (index & !1, index | 1) of a head: the pair is rotated by
/// the angle pos * freq, freq = 1 / 10000^(2 * pair / head_size):
/// even = v0 cos - v1 sin, odd = v0 sin + v1 cos.
#[derive(Debug, Clone, PartialEq)]
pub struct Rope {
    /// The pair's index within the head.
    pub pair: usize,
    pub freq: f32,
    pub cos: f32,
    pub sin: f32,
    /// The element before RoPE (the matmul's `dot`).
    pub own: f32,
    /// Its partner's index (index ^ 1) and value before RoPE.
    pub partner_index: usize,
    pub partner: f32,
    /// After RoPE (with the forward pass's arithmetic: equal to the value).
    pub rotated: f32,
}

/// hb[i] = silu(w1[i] · xb) * (w3[i] · xb), silu(h) = h * σ(h), σ(h) = 1 / (1 + e^-h).
#[derive(Debug, Clone, PartialEq)]
pub struct Swiglu {
    /// The gate, w1 @ xb (`dot` is run.c's hb[i] before SwiGLU).
    pub w1: Matmul,
    /// w3 @ xb (run.c's hb2[i]).
    pub w3: Matmul,
    /// σ(w1.dot), with libm's exp (the SIMD kernel's is a polynomial: ~1 ulp).
    pub sigmoid: f32,
    /// w1.dot * sigmoid
    pub silu: f32,
    /// silu * w3.dot: run.c's formula (the value with the scalar kernels).
    pub recomputed: f32,
}

/// att[t] for head 0: score_t = q · k_t / sqrt(head_size), then the softmax
/// over positions 0..=pos: e^(score_t - max) / Σ_u e^(score_u - max).
#[derive(Debug, Clone, PartialEq)]
pub struct Attention {
    /// The head (0: the walkthrough shows head 0) and the key/value head it reads.
    pub head: usize,
    pub kv_head: usize,
    /// (head_size,) the head's query (after RoPE) and position t's cached key.
    pub query: Vec<f32>,
    pub key: Vec<f32>,
    /// (head_size,) q[j] * k[j], and their running sum in order.
    pub products: Vec<f32>,
    pub partial_sums: Vec<f32>,
    /// sqrt(head_size)
    pub scale: f32,
    /// (pos + 1,) every position's score as the forward pass computed it
    /// (its kernels); `scores[index]` is this one's.
    pub scores: Vec<f32>,
    /// (pos + 1,) the head's weights: the stage's vector.
    pub weights: Vec<f32>,
    /// The largest score (subtracted before exp, for stability).
    pub max: f32,
    /// e^(scores[index] - max), with libm's exp.
    pub exp: f32,
    /// Σ_u e^(scores[u] - max), in order.
    pub sum_exp: f32,
    /// exp / sum_exp (the value with the scalar kernels; SIMD's exp is a
    /// polynomial ~1 ulp from libm's).
    pub recomputed: f32,
}

/// xb[i] = Σ_t att_h[t] * v_t[i % head_size] over positions 0..=pos, for the
/// head h = i / head_size (its values from key/value head h / kv_mul). Both
/// kernel sets add the terms in this order, so the last partial sum is the
/// value bit for bit.
#[derive(Debug, Clone, PartialEq)]
pub struct AttOutput {
    pub head: usize,
    pub kv_head: usize,
    /// i % head_size: the element of each cached value vector.
    pub offset: usize,
    /// (pos + 1,) the head's attention weights.
    pub weights: Vec<f32>,
    /// (pos + 1,) element `offset` of each position's cached value.
    pub values: Vec<f32>,
    /// (pos + 1,) weights[t] * values[t], and their running sum in order.
    pub products: Vec<f32>,
    pub partial_sums: Vec<f32>,
}

/// Can element `index` of `stage` (at `layer`) be followed at `pos`? The
/// stages inside layers need a layer below n_layers, the others none; the
/// index must be inside the stage's vector.
pub fn check(c: &Config, pos: usize, stage: Stage, layer: Option<usize>, index: usize) -> Result<()> {
    let last = c.n_layers - 1;
    match (stage.in_layer(), layer) {
        (true, None) => {
            return Err(Error::Argument(format!("stage {} is inside each layer: give a layer, 0 to {last}", stage.id())))
        }
        (false, Some(_)) => {
            return Err(Error::Argument(format!("stage {} is outside the layers: give no layer", stage.id())))
        }
        (true, Some(l)) if l >= c.n_layers => return Err(layer_error(c, l)),
        _ => {}
    }
    let len = stage.len(c, pos);
    if index >= len {
        return Err(index_error(stage, len, index));
    }
    Ok(())
}

/// The refusal of a layer the model does not have (`layer` as the caller wrote it).
pub fn layer_error(c: &Config, layer: impl std::fmt::Display) -> Error {
    Error::Argument(format!("no layer {layer}: this model has layers 0 to {}", c.n_layers - 1))
}

/// The refusal of an index beyond the stage's `len` values (`index` as the
/// caller wrote it).
pub fn index_error(stage: Stage, len: usize, index: impl std::fmt::Display) -> Error {
    Error::Argument(format!(
        "index {index} is outside {} ({}, {} values {}): indices are 0 to {}",
        stage.id(),
        stage.name(),
        len,
        stage.shape(),
        len.saturating_sub(1)
    ))
}

/// Replay position `pos` (where `token` went in) of `t`'s KV cache and
/// explain element `index` of `stage` at `layer`. `pos` must be a position
/// the cache holds, computed with `t`'s current kernels (`Llama::follow`
/// checks that); the rest is checked here ([`check`]).
pub fn follow(t: &mut Transformer, token: u32, pos: usize, stage: Stage, layer: Option<usize>, index: usize) -> Result<Follow> {
    let c = *t.config();
    check(&c, pos, stage, layer, index)?;
    let mut cap = Capture::new(&c, layer, pos)?;
    t.forward_captured(token, pos, &mut cap)?;
    let value = cap.stage(stage)[index];
    let kind = explain(t, &cap, token, stage, layer.unwrap_or(0), index)?;
    Ok(Follow { pos, token, stage, layer, index, value, kind })
}

/// The explanation, from the captured vectors of the replay and the weights.
fn explain(t: &Transformer, cap: &Capture, token: u32, stage: Stage, l: usize, i: usize) -> Result<Kind> {
    let c = *t.config();
    let (w, k) = (&t.weights, t.kernels());
    let (dim, kv_dim, hidden_dim) = (c.dim, c.kv_dim(), c.hidden_dim);
    // a matmul of the layer's matrix `m` (d, n) with output row i; its input
    // is the stage vector `input`, its result the captured vector `out`
    let matmul = |name, m: &Matrix, layer, d, input: Stage, out: &[f32]| {
        row_matmul(k, name, m, layer, d, i, cap.stage(input), out[i])
    };
    Ok(match stage {
        Stage::Embedding => {
            let (row, quantized) = matrix_row(&w.token_embedding_table, 0, c.vocab_size, dim, token as usize);
            let quantized = quantized.map(|(q, s, gs)| (q[i], s[i / gs]));
            Kind::Embedding(Embedding { token, row, quantized })
        }
        Stage::AttNorm => rmsnorm("rms_att_weight", cap.kept(Kept::Input), &w.rms_att_weight[l * dim..][..dim], i),
        Stage::FfnNorm => rmsnorm("rms_ffn_weight", cap.stage(Stage::AttResidual), &w.rms_ffn_weight[l * dim..][..dim], i),
        Stage::FinalNorm => rmsnorm("rms_final_weight", cap.kept(Kept::Input), &w.rms_final_weight, i),
        Stage::Query | Stage::Key => {
            let (name, m, d, raw) = match stage {
                Stage::Query => ("wq", &w.wq, dim, cap.kept(Kept::QueryRaw)),
                _ => ("wk", &w.wk, kv_dim, cap.kept(Kept::KeyRaw)),
            };
            let mut mm = matmul(name, m, l, d, Stage::AttNorm, raw)?;
            mm.rope = Some(rope(t, raw, i));
            Kind::Matmul(mm)
        }
        Stage::Value => Kind::Matmul(matmul("wv", &w.wv, l, kv_dim, Stage::AttNorm, cap.stage(Stage::Value))?),
        Stage::AttResidual => {
            let mut mm = matmul("wo", &w.wo, l, dim, Stage::AttOutput, cap.kept(Kept::AttProjection))?;
            mm.x_before = Some(cap.kept(Kept::Input)[i]);
            Kind::Matmul(mm)
        }
        Stage::FfnResidual => {
            let mut mm = matmul("w2", &w.w2, l, dim, Stage::Hidden, cap.kept(Kept::FfnProjection))?;
            mm.x_before = Some(cap.stage(Stage::AttResidual)[i]);
            Kind::Matmul(mm)
        }
        Stage::Logits => Kind::Matmul(matmul("wcls", w.wcls(), 0, c.vocab_size, Stage::FinalNorm, cap.stage(Stage::Logits))?),
        Stage::Hidden => {
            let w1 = matmul("w1", &w.w1, l, hidden_dim, Stage::FfnNorm, cap.kept(Kept::Gate))?;
            let w3 = matmul("w3", &w.w3, l, hidden_dim, Stage::FfnNorm, cap.kept(Kept::Up))?;
            // run.c: val *= (1.0f / (1.0f + expf(-val))); val *= s->hb2[i];
            let sigmoid = 1.0 / (1.0 + (-w1.dot).exp());
            let silu = w1.dot * sigmoid;
            let recomputed = silu * w3.dot;
            Kind::Swiglu(Swiglu { w1, w3, sigmoid, silu, recomputed })
        }
        Stage::AttWeights => Kind::Attention(attention(t, cap, l, i)),
        Stage::AttOutput => Kind::AttOutput(att_output(t, cap, l, i)),
    })
}

/// run.c's rmsnorm of `x` (dim,) with `weight` (dim,), element `i`.
fn rmsnorm(weight_name: &'static str, x: &[f32], weight: &[f32], i: usize) -> Kind {
    let mut sum_squares = 0.0f32;
    for xj in x {
        sum_squares += xj * xj;
    }
    let mean_square = sum_squares / x.len() as f32;
    let rms = (mean_square + RMS_EPS).sqrt();
    let inv_rms = 1.0 / rms;
    Kind::Rmsnorm(Rmsnorm {
        weight_name,
        input: x.to_vec(),
        x: x[i],
        weight: weight[i],
        sum_squares,
        mean_square,
        eps: RMS_EPS,
        rms,
        inv_rms,
        recomputed: weight[i] * (inv_rms * x[i]),
    })
}

/// Row `r` of layer `layer` of `m` (d, n): as f32 (dequantized for Q8_0),
/// and for Q8_0 its int8 values, scales and group size.
#[allow(clippy::type_complexity)]
fn matrix_row(m: &Matrix, layer: usize, d: usize, n: usize, r: usize) -> (Vec<f32>, Option<(Vec<i8>, Vec<f32>, usize)>) {
    let at = (layer * d + r) * n;
    match m {
        Matrix::F32(w) => (w[at..][..n].to_vec(), None),
        &Matrix::Q8 { ref q, ref s, group_size: gs } => {
            // a group never straddles a row (n is a multiple of gs)
            let (q, s) = (&q[at..][..n], &s[at / gs..][..n / gs]);
            let row = q.iter().enumerate().map(|(j, &v)| v as f32 * s[j / gs]).collect();
            (row, Some((q.to_vec(), s.to_vec(), gs)))
        }
    }
}

/// Row `r` of layer `layer` of `m` (d, n) times `input` (n,), explained;
/// `dot` is what the forward pass computed for it.
#[allow(clippy::too_many_arguments)]
fn row_matmul(k: Kernels, matrix: &'static str, m: &Matrix, layer: usize, d: usize, r: usize, input: &[f32], dot: f32) -> Result<Matmul> {
    let n = input.len();
    let (weights, q8) = matrix_row(m, layer, d, n, r);
    let (mut products, mut partial_sums) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let quantized = match q8 {
        None => {
            // run.c: val += w[i * n + j] * x[j];
            let mut val = 0.0f32;
            for (wj, xj) in weights.iter().zip(input) {
                let p = wj * xj;
                val += p;
                products.push(p);
                partial_sums.push(val);
            }
            None
        }
        Some((weights_q, weight_scales, gs)) => {
            // the input as `prepare` quantizes it before the matmul (same function, same bits)
            let (mut input_q, mut input_scales) = (vec![0i8; n], vec![0f32; n / gs]);
            k.quantize(&mut input_q, &mut input_scales, input, gs);
            // runq.c: ival += x->q[j] * w->q[j] per group (exact), then
            // val += ((float) ival) * w->s[..] * x->s[..]
            let mut group_dots = Vec::with_capacity(n / gs);
            let mut val = 0.0f32;
            for (g, ((wg, xg), (&ws, &xs))) in
                weights_q.chunks_exact(gs).zip(input_q.chunks_exact(gs)).zip(weight_scales.iter().zip(&input_scales)).enumerate()
            {
                let mut ival = 0i32;
                for (&wv, &xv) in wg.iter().zip(xg) {
                    let term = wv as i32 * xv as i32;
                    ival += term;
                    products.push(term as f32 * ws * xs);
                    partial_sums.push(val + ival as f32 * ws * xs);
                }
                val += ival as f32 * ws * xs;
                debug_assert_eq!(partial_sums[(g + 1) * gs - 1].to_bits(), val.to_bits());
                group_dots.push(ival);
            }
            Some(Quantized { group_size: gs, weights_q, weight_scales, input_q, input_scales, group_dots })
        }
    };
    if partial_sums.is_empty() {
        return Err(Error::State("a matmul of an empty vector: nothing to follow"));
    }
    let sum = partial_sums[n - 1];
    let input = input.to_vec();
    Ok(Matmul { matrix, row: r, weights, input, quantized, products, partial_sums, sum, dot, x_before: None, rope: None })
}

/// RoPE of element `i` from the vector before RoPE `raw`, with the
/// rotation of the position just run.
fn rope(t: &Transformer, raw: &[f32], i: usize) -> Rope {
    let head_size = t.config().head_size();
    let pair = (i % head_size) / 2;
    let (cos, sin, freq) = t.last_rope_pair(pair);
    let (v0, v1) = (raw[i & !1], raw[i | 1]);
    // the forward pass's arithmetic, exactly
    let rotated = if i % 2 == 0 { v0 * cos - v1 * sin } else { v0 * sin + v1 * cos };
    Rope { pair, freq, cos, sin, own: raw[i], partner_index: i ^ 1, partner: raw[i ^ 1], rotated }
}

/// Head 0's attention weight of position `t` at layer `l`.
fn attention(tr: &Transformer, cap: &Capture, l: usize, t: usize) -> Attention {
    let c = *tr.config();
    let (head_size, kv_dim, head) = (c.head_size(), c.kv_dim(), 0);
    let kv_head = head / c.kv_mul();
    let query = cap.stage(Stage::Query)[head * head_size..][..head_size].to_vec();
    // the layer's key cache (seq_len, kv_dim); position pos was rewritten by the replay
    let keys = &tr.state.key_cache[l * c.seq_len * kv_dim..][..c.seq_len * kv_dim];
    let key = keys[t * kv_dim + kv_head * head_size..][..head_size].to_vec();
    let (mut products, mut partial_sums, mut dot) = (Vec::new(), Vec::new(), 0.0f32);
    for (qj, kj) in query.iter().zip(&key) {
        products.push(qj * kj);
        dot += qj * kj;
        partial_sums.push(dot);
    }
    let scale = (head_size as f32).sqrt();
    // the scores as the forward pass computed them: the same kernel on the
    // same inputs (its weights, softmaxed, are the stage's vector)
    let weights = cap.stage(Stage::AttWeights).to_vec();
    let mut scores = vec![0.0f32; weights.len()];
    tr.kernels().attention_scores(&mut scores, &query, &keys[kv_head * head_size..], kv_dim, scale);
    // run.c's softmax: max, then exp and sum in order
    let max = scores.iter().fold(scores[0], |m, &v| if v > m { v } else { m });
    let sum_exp = scores.iter().fold(0.0f32, |s, &v| s + (v - max).exp());
    let exp = (scores[t] - max).exp();
    let recomputed = exp / sum_exp;
    Attention { head, kv_head, query, key, products, partial_sums, scale, scores, weights, max, exp, sum_exp, recomputed }
}

/// Element `i` of the attention output at layer `l`.
fn att_output(tr: &Transformer, cap: &Capture, l: usize, i: usize) -> AttOutput {
    let c = *tr.config();
    let (head_size, kv_dim) = (c.head_size(), c.kv_dim());
    let (head, offset) = (i / head_size, i % head_size);
    let kv_head = head / c.kv_mul();
    let weights = cap.attention(head).to_vec();
    let cache = &tr.state.value_cache[l * c.seq_len * kv_dim..];
    let values: Vec<f32> = (0..weights.len()).map(|t| cache[t * kv_dim + kv_head * head_size + offset]).collect();
    let (mut products, mut partial_sums, mut sum) = (Vec::new(), Vec::new(), 0.0f32);
    for (a, v) in weights.iter().zip(&values) {
        // run.c: xb[i] += a * v[i]
        products.push(a * v);
        sum += a * v;
        partial_sums.push(sum);
    }
    AttOutput { head, kv_head, offset, weights, values, products, partial_sums }
}

/// Vectors of the forward pass that the walkthrough does not show, kept
/// for following one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// x entering the layer (before its attention block), or the head (after the last layer).
    Input,
    /// q = wq @ xb before RoPE (dim,)
    QueryRaw,
    /// k = wk @ xb before RoPE (kv_dim,)
    KeyRaw,
    /// xb2 = wo @ xb, before the residual addition (dim,)
    AttProjection,
    /// hb = w1 @ xb, before SwiGLU (hidden_dim,)
    Gate,
    /// hb2 = w3 @ xb (hidden_dim,)
    Up,
    /// xb = w2 @ hb, before the residual addition (dim,)
    FfnProjection,
}

impl Kept {
    const ALL: [Kept; 7] = [Kept::Input, Kept::QueryRaw, Kept::KeyRaw, Kept::AttProjection, Kept::Gate, Kept::Up, Kept::FfnProjection];

    fn len(self, c: &Config) -> usize {
        match self {
            Kept::Input | Kept::QueryRaw | Kept::AttProjection | Kept::FfnProjection => c.dim,
            Kept::KeyRaw => c.kv_dim(),
            Kept::Gate | Kept::Up => c.hidden_dim,
        }
    }

    /// Is it kept outside the layers too (the head's input)?
    fn outside_layers(self) -> bool {
        self == Kept::Input
    }
}

/// The whole vectors of one layer of one forward pass (or, for `layer`
/// `None`, of the embedding and the head), copied as the pass makes them
/// (`Recorder::capture`). Every buffer is reserved up front (fallibly), so
/// the copies during the pass never allocate.
#[derive(Debug, Clone)]
pub struct Capture {
    layer: Option<usize>,
    pos: usize,
    /// By `Stage as usize`: the walkthrough's vectors of `layer`.
    stages: [Vec<f32>; 13],
    /// By `Kept as usize`.
    kept: [Vec<f32>; 7],
    /// (n_heads, pos + 1) the attention weights of every head of `layer`.
    attention: Vec<f32>,
}

impl Capture {
    /// Room for the vectors of `layer` of a pass at `pos` of a model of config `c`.
    pub(crate) fn new(c: &Config, layer: Option<usize>, pos: usize) -> Result<Capture> {
        let mut cap = Capture {
            layer,
            pos,
            stages: Default::default(),
            kept: Default::default(),
            attention: Vec::new(),
        };
        // (head 0's weights, the walkthrough's att, are the first row of `attention`)
        let copied = |s: &Stage| s.in_layer() == layer.is_some() && *s != Stage::AttWeights;
        for stage in Stage::ALL.into_iter().filter(copied) {
            reserve(&mut cap.stages[stage as usize], stage.len(c, pos))?;
        }
        for kept in Kept::ALL.into_iter().filter(|k| layer.is_some() || k.outside_layers()) {
            reserve(&mut cap.kept[kept as usize], kept.len(c))?;
        }
        if layer.is_some() {
            let too_large = Error::TooLarge { what: CAPTURE, bytes: c.n_heads as u64 * (pos as u64 + 1) * 4 };
            let n = c.n_heads.checked_mul(pos + 1).ok_or(too_large)?;
            reserve(&mut cap.attention, n)?;
            cap.attention.resize(n, 0.0);
        }
        Ok(cap)
    }

    /// A walkthrough vector of `layer`: kept when it is the captured layer.
    #[inline]
    pub(crate) fn stage_vector(&mut self, stage: Stage, layer: Option<usize>, v: &[f32]) {
        if layer == self.layer {
            copy(&mut self.stages[stage as usize], v);
        }
    }

    /// An in-between vector of `layer`.
    #[inline]
    pub(crate) fn kept_vector(&mut self, kept: Kept, layer: Option<usize>, v: &[f32]) {
        if layer == self.layer {
            copy(&mut self.kept[kept as usize], v);
        }
    }

    /// One head's attention weights at `layer` (pos + 1,).
    #[inline]
    pub(crate) fn attention_row(&mut self, layer: usize, head: usize, weights: &[f32]) {
        if Some(layer) == self.layer {
            let t = weights.len();
            if let Some(row) = self.attention.get_mut(head * t..(head + 1) * t) {
                row.copy_from_slice(weights);
            }
        }
    }

    fn stage(&self, stage: Stage) -> &[f32] {
        match stage {
            // head 0's row, as the walkthrough shows it
            Stage::AttWeights => self.attention(0),
            _ => &self.stages[stage as usize],
        }
    }

    fn kept(&self, kept: Kept) -> &[f32] {
        &self.kept[kept as usize]
    }

    /// (pos + 1,) head `h`'s attention weights.
    fn attention(&self, h: usize) -> &[f32] {
        let t = self.pos + 1;
        &self.attention[h * t..][..t]
    }
}

const CAPTURE: &str = "following one number (a copy of one layer's vectors)";

fn reserve(v: &mut Vec<f32>, n: usize) -> Result<()> {
    v.try_reserve_exact(n).map_err(|_| Error::TooLarge { what: CAPTURE, bytes: n as u64 * 4 })
}

/// `dst` = `v`, within the room reserved for it.
#[inline]
fn copy(dst: &mut Vec<f32>, v: &[f32]) {
    dst.clear();
    dst.extend_from_slice(v);
}

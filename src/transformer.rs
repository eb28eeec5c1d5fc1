//! The Transformer: weights + run state, and the forward pass of run.c.

use std::rc::Rc;
use crate::checkpoint::{check_memory, run_state_bytes, Checkpoint, Config, Header, Matrix, StateBuffer, Weights};
use crate::error::{Error, Result};
use crate::inspect::{Capture, Inspector, Kept, Phase, Recorder, Stage};
use crate::parallel;
use crate::kernels::Kernels;

/// An activation vector quantized for Q8_0 matmuls (runq.c's `QuantizedTensor`).
#[derive(Debug, Clone, Default)]
pub struct QuantizedInput {
    q: Vec<i8>,  // (n,) int8 values
    s: Vec<f32>, // (n / group_size,) scales
}

/// Ready the matmul input `x`: with Q8_0 weights, quantize it (runq.c does
/// this before every matmul); with fp32 weights there is nothing to do.
fn prepare(k: Kernels, xq: &mut QuantizedInput, x: &[f32], group_size: Option<usize>) {
    if let Some(gs) = group_size {
        let n = x.len();
        k.quantize(&mut xq.q[..n], &mut xq.s[..n / gs], x, gs);
    }
}

/// xout (d,) = W[layer] (d, n) @ x (n,): fp32 weights use `x`, Q8_0 weights
/// the quantized `xq` that `prepare` made from it (same group size: every
/// matrix of a model shares it). Large matrices are split by rows over the
/// threads of [`parallel`] (each row is the same kernel call either way).
fn mm(k: Kernels, xout: &mut [f32], x: &[f32], xq: &QuantizedInput, w: &Matrix, layer: usize) {
    let (d, n) = (xout.len(), x.len());
    match w {
        Matrix::F32(w) => {
            let w = &w[layer * d * n..][..d * n]; // (d, n)
            // the kernel is chosen by the whole matrix's size, so every split gives the same bits
            parallel::for_rows(xout, d * n, &|rows, out| k.matmul_rows(out, x, &w[rows.start * n..rows.end * n], d * n));
        }
        &Matrix::Q8 { ref q, ref s, group_size: gs } => {
            let (wq, ws) = (&q[layer * d * n..][..d * n], &s[layer * d * n / gs..][..d * n / gs]);
            let (xq, xs) = (&xq.q[..n], &xq.s[..n / gs]);
            parallel::for_rows(xout, d * n, &|rows, out| {
                let (r0, r1) = (rows.start * n, rows.end * n);
                k.matmul_q8(out, xq, xs, &wq[r0..r1], &ws[r0 / gs..r1 / gs], gs)
            });
        }
    }
}

/// run.c's last lines of `forward`, the model's head: the final RMSNorm of
/// x (dim,) into xb, then the classifier into logits (vocab_size,). The
/// forward pass ends with it, and the logit lens runs it on each layer's x
/// (`Transformer::head`): one function, so the lens of the last layer is
/// the forward pass's own arithmetic, bit for bit.
fn final_head(k: Kernels, w: &Weights, x: &[f32], xb: &mut [f32], xq: &mut QuantizedInput, logits: &mut [f32]) {
    // final rmsnorm (into xb: Rust does not let o alias x; same numbers)
    k.rmsnorm(xb, x, &w.rms_final_weight);
    // classifier into logits
    prepare(k, xq, xb, w.group_size());
    mm(k, logits, xb, xq, w.wcls(), 0);
}

/// Activations of the current position, and the KV cache of all positions.
#[derive(Debug, Clone)]
pub struct RunState {
    pub x: Vec<f32>,           // (dim,) activation at current time stamp
    pub xb: Vec<f32>,          // (dim,) same, but inside a residual branch
    pub xb2: Vec<f32>,         // (dim,) an additional buffer just for convenience
    pub hb: Vec<f32>,          // (hidden_dim,) buffer for hidden dimension in the ffn
    pub hb2: Vec<f32>,         // (hidden_dim,)
    pub q: Vec<f32>,           // (dim,) query
    pub att: Vec<f32>,         // (n_heads, seq_len) attention scores/weights
    pub logits: Vec<f32>,      // (vocab_size,) output logits
    pub key_cache: Vec<f32>,   // (layer, seq_len, kv_dim)
    pub value_cache: Vec<f32>, // (layer, seq_len, kv_dim)
    rope_cos: Vec<f32>,        // (head_size / 2,) RoPE rotation of the current position
    rope_sin: Vec<f32>,        // (head_size / 2,)
    xq: QuantizedInput,        // (max(dim, hidden_dim),) matmul input, Q8_0 models only
}

/// A zeroed buffer of `Config::run_state_buffers`, or an error instead of an allocation abort.
fn zeros((what, n): StateBuffer) -> Result<Vec<f32>> {
    let too_large = || Error::TooLarge { what, bytes: n.saturating_mul(4) };
    let n = usize::try_from(n).map_err(|_| too_large())?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| too_large())?;
    v.resize(n, 0.0);
    Ok(v)
}

impl RunState {
    pub fn new(c: &Config, group_size: Option<usize>) -> Result<RunState> {
        check_memory("the KV cache and activations", run_state_bytes(c)?)?;
        // the buffers the pre-flight just counted, in Config::run_state_buffers' order
        let [x, xb, xb2, hb, hb2, q, att, logits, key_cache, value_cache, rope_cos, rope_sin] = c.run_state_buffers()?;
        Ok(RunState {
            x: zeros(x)?,
            xb: zeros(xb)?,
            xb2: zeros(xb2)?,
            hb: zeros(hb)?,
            hb2: zeros(hb2)?,
            q: zeros(q)?,
            att: zeros(att)?,
            logits: zeros(logits)?,
            key_cache: zeros(key_cache)?,
            value_cache: zeros(value_cache)?,
            rope_cos: zeros(rope_cos)?,
            rope_sin: zeros(rope_sin)?,
            xq: match group_size {
                Some(gs) => {
                    let n = c.dim.max(c.hidden_dim);
                    QuantizedInput { q: vec![0; n], s: vec![0.0; n / gs] }
                }
                None => QuantizedInput::default(),
            },
        })
    }
}

#[derive(Debug, Clone)]
pub struct Transformer {
    /// The checkpoint's header: its `config` gives every shape below.
    pub header: Header,
    /// Shared (never changed after loading): a GPU backend being set up
    /// uploads from them while the model goes on being used.
    pub weights: Rc<Weights>,
    pub state: RunState,
    /// Which kernels run the forward pass (SIMD by default; scalar = run.c's loops).
    kernels: Kernels,
    /// (head_size / 2,) RoPE frequency of each pair: 1 / 10000^(2i / head_size)
    rope_freq: Vec<f32>,
}

impl Transformer {
    pub fn new(checkpoint: Checkpoint) -> Result<Transformer> {
        let config = checkpoint.header.config;
        let state = RunState::new(&config, checkpoint.weights.group_size())?;
        let kernels = Kernels::default();
        let rope_freq = kernels.rope_frequencies(config.head_size());
        Ok(Transformer { header: checkpoint.header, weights: Rc::new(checkpoint.weights), state, kernels, rope_freq })
    }

    /// The model's shapes.
    pub fn config(&self) -> &Config {
        &self.header.config
    }

    /// The kernels the forward pass runs.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// Run with other kernels from the next `forward` on (the KV cache
    /// already written stays as the old kernels computed it).
    pub fn set_kernels(&mut self, kernels: Kernels) {
        self.kernels = kernels;
        self.rope_freq = kernels.rope_frequencies(self.config().head_size());
    }

    /// RoPE's rotation of position `pos`: cos and sin (head_size / 2,) of
    /// each pair's angle, as `forward` computes them (the GPU backend takes
    /// them from here, so both backends rotate by the same numbers).
    pub fn rope_rotation(&self, pos: usize, cos: &mut [f32], sin: &mut [f32]) {
        self.kernels.rope_rotation(pos, &self.rope_freq, cos, sin);
    }

    /// Number of parameters held (the classifier counted once when shared).
    pub fn param_count(&self) -> u64 {
        crate::checkpoint::param_count(&self.header)
    }

    /// Run one token at one position; returns the logits for the next token.
    /// Fills position `pos` of the KV cache, and reads positions 0..=pos.
    pub fn forward(&mut self, token: u32, pos: usize) -> Result<&mut [f32]> {
        self.forward_with(token, pos, None)
    }

    /// `forward`, telling an open inspector what happened.
    pub fn forward_with(&mut self, token: u32, pos: usize, inspector: Option<&mut Inspector>) -> Result<&mut [f32]> {
        self.forward_recorded(token, pos, Recorder::new(inspector))
    }

    /// `forward`, keeping the residual stream x after each layer in
    /// `residuals` (n_layers, dim): the logit lens's replay of a position.
    pub fn forward_residuals(&mut self, token: u32, pos: usize, residuals: &mut [f32]) -> Result<&mut [f32]> {
        let c = self.config();
        if residuals.len() != c.n_layers * c.dim {
            return Err(Error::Argument(format!(
                "the residual buffer holds {} floats; n_layers x dim is {}",
                residuals.len(),
                c.n_layers * c.dim
            )));
        }
        self.forward_recorded(token, pos, Recorder::residuals(residuals))
    }

    /// `forward`, copying the whole vectors of one layer (or of the
    /// embedding and the head) into `capture`: the replay behind following
    /// one number (`inspect::follow`).
    pub(crate) fn forward_captured(&mut self, token: u32, pos: usize, capture: &mut Capture) -> Result<&mut [f32]> {
        self.forward_recorded(token, pos, Recorder::capture(capture))
    }

    /// RoPE's rotation of pair `pair` of a head at the position run last:
    /// (cos, sin, frequency), as the forward pass applied them.
    pub(crate) fn last_rope_pair(&self, pair: usize) -> (f32, f32, f32) {
        (self.state.rope_cos[pair], self.state.rope_sin[pair], self.rope_freq[pair])
    }

    /// The model's head on any residual stream `x` (dim,): the final RMSNorm
    /// and the classifier, exactly as `forward` ends (same function, same
    /// kernels, the run state's buffers). Returns the logits (vocab_size,).
    pub fn head(&mut self, x: &[f32]) -> Result<&[f32]> {
        if x.len() != self.config().dim {
            return Err(Error::Argument(format!("x holds {} floats; dim is {}", x.len(), self.config().dim)));
        }
        let s = &mut self.state;
        final_head(self.kernels, &self.weights, x, &mut s.xb, &mut s.xq, &mut s.logits);
        Ok(&s.logits)
    }

    /// The forward pass, telling `rec` what happened: each `rec` line marks
    /// where a phase of the step ends and which vectors it made.
    fn forward_recorded(&mut self, token: u32, pos: usize, mut rec: Recorder) -> Result<&mut [f32]> {
        let p = &self.header.config;
        if token as usize >= p.vocab_size {
            return Err(Error::Argument(format!("token {token} is outside the vocabulary ({})", p.vocab_size)));
        }
        if pos >= p.seq_len {
            return Err(Error::Argument(format!("position {pos} is beyond seq_len {}", p.seq_len)));
        }
        let w = &self.weights;
        let s = &mut self.state;
        rec.begin(token, pos, p.n_layers, p.n_heads)?;
        let dim = p.dim;
        let kv_dim = p.kv_dim();
        let kv_mul = p.kv_mul(); // integer multiplier of the kv sharing in multiquery
        let head_size = p.head_size();
        let seq_len = p.seq_len;
        let gs = w.group_size(); // Some(group size) for Q8_0 weights
        let k = self.kernels;

        // copy the token embedding into x (dequantized, for Q8_0: x = q * scale)
        let row = token as usize * dim;
        match &w.token_embedding_table {
            Matrix::F32(table) => s.x.copy_from_slice(&table[row..][..dim]),
            &Matrix::Q8 { ref q, s: ref scales, group_size } => {
                for (i, x) in s.x.iter_mut().enumerate() {
                    *x = q[row + i] as f32 * scales[(row + i) / group_size];
                }
            }
        }

        // RoPE: the rotation angle depends only on (pos, pair index within a
        // head), so compute cos/sin once per position instead of per layer
        k.rope_rotation(pos, &self.rope_freq, &mut s.rope_cos, &mut s.rope_sin);
        rec.mark(Phase::Other, None, &[(Stage::Embedding, &s.x)]);

        // forward all the layers
        for l in 0..p.n_layers {
            // attention rmsnorm
            k.rmsnorm(&mut s.xb, &s.x, &w.rms_att_weight[l * dim..][..dim]);

            // key and value point to the kv cache at this position
            let loff = l * seq_len * kv_dim; // kv cache layer offset for convenience
            let kv_at = loff + pos * kv_dim;
            // qkv matmuls for this position
            prepare(k, &mut s.xq, &s.xb, gs);
            mm(k, &mut s.q, &s.xb, &s.xq, &w.wq, l);
            mm(k, &mut s.key_cache[kv_at..][..kv_dim], &s.xb, &s.xq, &w.wk, l);
            mm(k, &mut s.value_cache[kv_at..][..kv_dim], &s.xb, &s.xq, &w.wv, l);
            rec.mark(Phase::Projections, Some(l), &[]);
            rec.keep(Some(l), &[(Kept::QueryRaw, &s.q), (Kept::KeyRaw, &s.key_cache[kv_at..][..kv_dim])]);

            // RoPE relative positional encoding: complex-valued rotate q and k in each head
            // (run.c loops over i in 0..dim and takes i % head_size; by head
            // and pair is the same arithmetic without a division per pair)
            let key = &mut s.key_cache[kv_at..][..kv_dim];
            for head in 0..p.n_heads {
                for pair in 0..head_size / 2 {
                    let i = head * head_size + 2 * pair;
                    let (fcr, fci) = (s.rope_cos[pair], s.rope_sin[pair]);
                    let (v0, v1) = (s.q[i], s.q[i + 1]);
                    s.q[i] = v0 * fcr - v1 * fci;
                    s.q[i + 1] = v0 * fci + v1 * fcr;
                    if i < kv_dim {
                        let (v0, v1) = (key[i], key[i + 1]);
                        key[i] = v0 * fcr - v1 * fci;
                        key[i + 1] = v0 * fci + v1 * fcr;
                    }
                }
            }
            let (key, value) = (&s.key_cache[kv_at..][..kv_dim], &s.value_cache[kv_at..][..kv_dim]);
            rec.vectors(Some(l), &[(Stage::AttNorm, &s.xb), (Stage::Query, &s.q), (Stage::Key, key), (Stage::Value, value)]);

            // multihead attention: iterate over all heads
            let scale = (head_size as f32).sqrt();
            let keys = &s.key_cache[loff..][..seq_len * kv_dim];
            let values = &s.value_cache[loff..][..seq_len * kv_dim];
            for h in 0..p.n_heads {
                // the query vector for this head
                let q = &s.q[h * head_size..][..head_size];
                // attention scores for this head, timesteps 0..=pos
                let att = &mut s.att[h * seq_len..][..pos + 1];
                // which kv head this query head reads (grouped-query attention)
                let kv_head = (h / kv_mul) * head_size;
                // score_t = q . k_t / sqrt(head_size)
                k.attention_scores(att, q, &keys[kv_head..], kv_dim, scale);
                // softmax the scores to get attention weights, from 0..pos inclusively
                k.softmax(att);
                rec.attention(l, h, att);
                // weighted sum of the values, into xb
                let xb = &mut s.xb[h * head_size..][..head_size];
                k.attention_mix(xb, att, &values[kv_head..], kv_dim);
            }
            rec.mark(Phase::Attention, Some(l), &[(Stage::AttOutput, &s.xb)]);

            // final matmul to get the output of the attention
            prepare(k, &mut s.xq, &s.xb, gs);
            mm(k, &mut s.xb2, &s.xb, &s.xq, &w.wo, l);
            rec.keep(Some(l), &[(Kept::Input, &s.x), (Kept::AttProjection, &s.xb2)]);
            // residual connection back into x
            for (x, d) in s.x.iter_mut().zip(&s.xb2) {
                *x += d;
            }
            rec.mark(Phase::Projections, Some(l), &[(Stage::AttResidual, &s.x)]);

            // ffn rmsnorm
            k.rmsnorm(&mut s.xb, &s.x, &w.rms_ffn_weight[l * dim..][..dim]);

            // PyTorch: self.w2(F.silu(self.w1(x)) * self.w3(x))
            prepare(k, &mut s.xq, &s.xb, gs);
            mm(k, &mut s.hb, &s.xb, &s.xq, &w.w1, l);
            mm(k, &mut s.hb2, &s.xb, &s.xq, &w.w3, l);
            rec.keep(Some(l), &[(Kept::Gate, &s.hb), (Kept::Up, &s.hb2)]);
            // SwiGLU non-linearity: silu(x) = x * σ(x), times the w3 gate
            k.swiglu(&mut s.hb, &s.hb2);
            rec.vectors(Some(l), &[(Stage::FfnNorm, &s.xb), (Stage::Hidden, &s.hb)]);
            // final matmul to get the output of the ffn
            prepare(k, &mut s.xq, &s.hb, gs);
            mm(k, &mut s.xb, &s.hb, &s.xq, &w.w2, l);
            rec.keep(Some(l), &[(Kept::FfnProjection, &s.xb)]);
            // residual connection
            for (x, d) in s.x.iter_mut().zip(&s.xb) {
                *x += d;
            }
            rec.mark(Phase::Ffn, Some(l), &[(Stage::FfnResidual, &s.x)]);
            rec.residual(l, &s.x);
        }

        // final rmsnorm and classifier into logits
        rec.keep(None, &[(Kept::Input, &s.x)]);
        final_head(k, w, &s.x, &mut s.xb, &mut s.xq, &mut s.logits);
        rec.mark(Phase::Classifier, None, &[(Stage::FinalNorm, &s.xb), (Stage::Logits, &s.logits)]);
        rec.end(&s.logits);
        Ok(&mut s.logits)
    }
}
